//! The other nodes' sockets, when an operator's page connects: as socket.io's Redis adapter
//! fetches sockets, one question on the path's channel, heard by every node, and one answer
//! from each on the asking node's own channel. Each node answers with its own sockets,
//! described as the page lists them, and starts telling the operators what changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rooms::cluster::RedisLink;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::Instrument;

/// How long the asking node waits for the others' answers (a node that does not answer in
/// time, dead or cut off, is left out).
const ANSWER_WAIT: Duration = Duration::from_secs(1);

#[derive(Serialize, Deserialize)]
struct Question {
    from: String,
    id: u64,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    id: u64,
    sockets: Vec<Value>,
}

pub struct Nodes {
    link: Arc<RedisLink>,
    questions: String,
    asked: AtomicU64,
    waiting: Mutex<HashMap<u64, mpsc::UnboundedSender<Vec<Value>>>>,
}

fn answers_channel(questions: &str, node: &str) -> String {
    format!("{questions}:{node}")
}

impl Nodes {
    /// Listen for questions about `path`'s sockets (answered by `instrument`) and for the
    /// answers to this node's own.
    pub async fn start(
        link: Arc<RedisLink>,
        path: &str,
        instrument: Weak<Instrument>,
    ) -> anyhow::Result<Arc<Self>> {
        let questions = format!("palaver:admin{path}");
        let asked = link.subscribe(&questions, 64).await?;
        let answered = link
            .subscribe(&answers_channel(&questions, link.node()), 64)
            .await?;
        let nodes = Arc::new(Self {
            link,
            questions,
            asked: AtomicU64::new(0),
            waiting: Mutex::default(),
        });
        tokio::spawn(listen(Arc::downgrade(&nodes), instrument, asked, answered));
        Ok(nodes)
    }

    /// Every other node's sockets, as far as they answer within `ANSWER_WAIT`.
    pub async fn sockets(&self) -> Vec<Value> {
        let others = match self.link.subscribers(&self.questions).await {
            Ok(listening) => usize::from(listening).saturating_sub(1),
            Err(e) => {
                tracing::warn!("operators see this node's sockets only: {e}");
                return Vec::new();
            }
        };
        if others == 0 {
            return Vec::new();
        }
        let id = self.asked.fetch_add(1, Ordering::Relaxed);
        let (answers, mut answered) = mpsc::unbounded_channel();
        self.waiting.lock().unwrap().insert(id, answers);
        let question = Question {
            from: self.link.node().to_owned(),
            id,
        };
        let question = serde_json::to_vec(&question).unwrap_or_default();
        self.link.publish(&self.questions, &question).await;
        let mut sockets = Vec::new();
        let mut heard = 0;
        let _ = tokio::time::timeout(ANSWER_WAIT, async {
            while heard < others {
                let Some(theirs) = answered.recv().await else {
                    return;
                };
                sockets.extend(theirs);
                heard += 1;
            }
        })
        .await;
        self.waiting.lock().unwrap().remove(&id);
        if heard < others {
            tracing::warn!(
                heard,
                others,
                "some nodes did not say what sockets they hold"
            );
        }
        sockets
    }
}

async fn listen(
    nodes: Weak<Nodes>,
    instrument: Weak<Instrument>,
    mut asked: mpsc::Receiver<rooms::cluster::Message>,
    mut answered: mpsc::Receiver<rooms::cluster::Message>,
) {
    loop {
        tokio::select! {
            Some((_, question)) = asked.recv() => {
                let (Some(nodes), Some(instrument)) = (nodes.upgrade(), instrument.upgrade()) else {
                    return;
                };
                let Ok(question) = serde_json::from_slice::<Question>(&question) else {
                    continue;
                };
                if question.from == nodes.link.node() {
                    continue;
                }
                let answer = Answer { id: question.id, sockets: instrument.watch_from_now() };
                let answer = serde_json::to_vec(&answer).unwrap_or_default();
                let channel = answers_channel(&nodes.questions, &question.from);
                nodes.link.publish(&channel, &answer).await;
            }
            Some((_, answer)) = answered.recv() => {
                let Some(nodes) = nodes.upgrade() else { return };
                let Ok(answer) = serde_json::from_slice::<Answer>(&answer) else {
                    continue;
                };
                if let Some(waiting) = nodes.waiting.lock().unwrap().get(&answer.id) {
                    let _ = waiting.send(answer.sockets);
                }
            }
            else => return,
        }
    }
}
