//! Presence that counts every node's connections: each node writes, in one sorted set per
//! user, until when it holds them; a node that dies stops counting within `PRESENCE_TTL`.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, watch};

use super::RedisLink;
use crate::Present;
use crate::presence::{LocalPresence, Presence};

/// How long a node's word that a user is online lasts unless renewed: a node that dies stops
/// counting within this time.
pub const PRESENCE_TTL: Duration = Duration::from_secs(15);
/// How often each node renews its users' presence.
const PRESENCE_RENEW: Duration = Duration::from_secs(5);
/// The longest a new connection waits for its presence to be written.
const CONNECT_WAIT: Duration = Duration::from_millis(500);
/// Commands per pipeline when renewing many users at once.
const PIPELINE: usize = 500;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

enum PresenceWrite {
    Online(Present, oneshot::Sender<()>),
    Offline(Present),
}

/// Presence across nodes. Each user has a sorted set in Redis of the nodes where they are
/// connected, each scored with when that node's word expires; a user is online while any score
/// is in the future. One task per node writes, in order, so a quick disconnect and reconnect
/// cannot be applied backwards.
pub struct RedisPresence {
    local: LocalPresence,
    link: Arc<RedisLink>,
    writes: mpsc::UnboundedSender<PresenceWrite>,
}

impl RedisPresence {
    pub fn start(link: Arc<RedisLink>) -> Arc<Self> {
        let (writes, queue) = mpsc::unbounded_channel();
        let presence = Arc::new(Self {
            local: LocalPresence::default(),
            link,
            writes,
        });
        let returns = presence.link.returns();
        tokio::spawn(write_presence(Arc::downgrade(&presence), queue, returns));
        presence
    }

    fn presence_key(&self, present: &Present) -> String {
        self.link.key(format_args!("presence:{present}"))
    }

    /// Say in one pipeline that these are present here, for another `PRESENCE_TTL`.
    fn online_commands(&self, pipe: &mut redis::Pipeline, present: &[Present]) {
        let expires = now_ms() + PRESENCE_TTL.as_millis() as u64;
        for one in present {
            let key = self.presence_key(one);
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(expires)
                .arg(self.link.node())
                .ignore();
            pipe.cmd("PEXPIRE")
                .arg(&key)
                .arg(PRESENCE_TTL.as_millis() as u64)
                .ignore();
        }
    }

    /// Run the pipeline even when Redis is thought down: the writer is the only one waiting,
    /// and a write that gets through is one fewer wrong answer elsewhere.
    async fn run(&self, pipe: &redis::Pipeline) {
        let mut connection = self.link.connection();
        self.link.answered(pipe.exec_async(&mut connection)).await;
    }

    /// Apply queued changes in order, in one pipeline.
    async fn write(&self, batch: Vec<PresenceWrite>) {
        let mut pipe = redis::pipe();
        let mut done = Vec::new();
        for write in batch {
            match write {
                PresenceWrite::Online(user, notify) => {
                    self.online_commands(&mut pipe, std::slice::from_ref(&user));
                    done.push(notify);
                }
                // Connected again meanwhile: the user stays.
                PresenceWrite::Offline(user) if !self.local.is_present(&user) => {
                    pipe.cmd("ZREM")
                        .arg(self.presence_key(&user))
                        .arg(self.link.node())
                        .ignore();
                }
                PresenceWrite::Offline(_) => {}
            }
        }
        self.run(&pipe).await;
        for notify in done {
            let _ = notify.send(());
        }
    }

    /// Renew every user connected here (which also restores them after Redis restarted).
    async fn renew(&self) {
        for chunk in self.local.all().chunks(PIPELINE) {
            let mut pipe = redis::pipe();
            self.online_commands(&mut pipe, chunk);
            self.run(&pipe).await;
        }
    }
}

async fn write_presence(
    presence: Weak<RedisPresence>,
    mut queue: mpsc::UnboundedReceiver<PresenceWrite>,
    mut returns: watch::Receiver<u64>,
) {
    let mut renew = tokio::time::interval(PRESENCE_RENEW);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = returns.changed() => {
                if changed.is_err() { return }
                let Some(presence) = presence.upgrade() else { return };
                presence.renew().await;
            }
            write = queue.recv() => {
                let Some(write) = write else { return };
                let mut batch = vec![write];
                while batch.len() < PIPELINE {
                    match queue.try_recv() {
                        Ok(write) => batch.push(write),
                        Err(_) => break,
                    }
                }
                let Some(presence) = presence.upgrade() else { return };
                presence.write(batch).await;
            }
            _ = renew.tick() => {
                let Some(presence) = presence.upgrade() else { return };
                presence.renew().await;
            }
        }
    }
}

impl Presence for RedisPresence {
    /// Waits for the write, so that every node sees the user online once this is done; but
    /// not for long when Redis is unwell: the connection is served either way.
    fn connected<'a>(&'a self, present: &'a Present) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.local.add(present);
            let (notify, written) = oneshot::channel();
            let write = PresenceWrite::Online(present.clone(), notify);
            if self.writes.send(write).is_ok() {
                let _ = tokio::time::timeout(CONNECT_WAIT, written).await;
            }
        })
    }

    fn disconnected(&self, present: &Present) {
        if self.local.remove(present) {
            let _ = self.writes.send(PresenceWrite::Offline(present.clone()));
        }
    }

    fn present_among<'a>(&'a self, wanted: &'a [Present]) -> BoxFuture<'a, HashSet<Present>> {
        Box::pin(async move {
            let mut online = self.local.among(wanted);
            let elsewhere: Vec<&Present> = wanted.iter().filter(|p| !online.contains(*p)).collect();
            if elsewhere.is_empty() || !self.link.is_up() {
                return online;
            }
            let now = now_ms();
            let mut pipe = redis::pipe();
            for user in &elsewhere {
                pipe.cmd("ZCOUNT")
                    .arg(self.presence_key(user))
                    .arg(now)
                    .arg("+inf");
            }
            let mut connection = self.link.connection();
            let counted = pipe.query_async::<Vec<i64>>(&mut connection);
            // Unknown elsewhere (no answer): such users count as offline (at worst, an extra
            // push).
            if let Some(counts) = self.link.answered(counted).await {
                for (user, count) in elsewhere.into_iter().zip(counts) {
                    if count > 0 {
                        online.insert((*user).clone());
                    }
                }
            }
            online
        })
    }
}
