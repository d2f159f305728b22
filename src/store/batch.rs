//! Writes gathered across concurrent writers. A database pays for each write command (a
//! round trip, a journal commit) far more than for each document in it: while one batch is on
//! its way, the writes that arrive meanwhile wait and then go together as one command. A lone
//! write goes at once, alone; a writer that waits hears about its own write only after the
//! database has answered for it.

use std::collections::HashMap;
use std::future::Future;

use bson::{Bson, DateTime, doc, oid::ObjectId};
use mongodb::error::{Error as DbError, ErrorKind};
use mongodb::options::WriteConcern;
use mongodb::{Collection, Database};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::error::{DUPLICATE_KEY, Error, Result};

/// Writes in one command at most.
const MAX_BATCH: usize = 256;
/// Writes waiting for a batch before writers wait to queue theirs.
const QUEUE: usize = 4 * MAX_BATCH;

/// What waits in a queue: a write and who to answer, or someone waiting for every write
/// queued before them to be written.
enum Entry<T, R> {
    Write(T, Option<oneshot::Sender<R>>),
    Settle(oneshot::Sender<()>),
}

/// A queue of writes of `T`, each answered with an `R`, written a batch at a time.
#[derive(Debug)]
pub struct Batches<T, R> {
    queue: mpsc::Sender<Entry<T, R>>,
}

impl<T: Send + 'static, R: Send + 'static> Batches<T, R> {
    /// Start a writer that writes each batch with `write`, which answers for every write of
    /// the batch in order. Must be called inside a Tokio runtime; the writer stops when this
    /// is dropped.
    fn new<W, F>(write: W) -> Self
    where
        W: Fn(Vec<T>) -> F + Send + 'static,
        F: Future<Output = Vec<R>> + Send,
    {
        let (queue, mut waiting) = mpsc::channel::<Entry<T, R>>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (mut items, mut answers, mut settled) = (Vec::new(), Vec::new(), Vec::new());
                for entry in batch.drain(..) {
                    match entry {
                        Entry::Write(item, answer) => {
                            items.push(item);
                            answers.push(answer);
                        }
                        Entry::Settle(waiter) => settled.push(waiter),
                    }
                }
                if !items.is_empty() {
                    for (answer, outcome) in answers.into_iter().zip(write(items).await) {
                        // A writer that gave up waiting, or never waited, has nobody to tell.
                        if let Some(answer) = answer {
                            let _ = answer.send(outcome);
                        }
                    }
                }
                // Whatever was queued before them is written now.
                for waiter in settled {
                    let _ = waiter.send(());
                }
            }
        });
        Self { queue }
    }

    async fn enqueue(&self, entry: Entry<T, R>) -> Result<()> {
        self.queue.send(entry).await.map_err(|_| stopped())
    }

    async fn submit(&self, item: T) -> Result<R> {
        let (answer, outcome) = oneshot::channel();
        self.enqueue(Entry::Write(item, Some(answer))).await?;
        outcome.await.map_err(|_| stopped())
    }

    /// Wait until every write queued so far is written (or has failed).
    pub async fn settled(&self) -> Result<()> {
        let (waiter, settled) = oneshot::channel();
        self.enqueue(Entry::Settle(waiter)).await?;
        settled.await.map_err(|_| stopped())
    }
}

fn stopped() -> Error {
    Error::Internal(anyhow::anyhow!("the batch writer stopped"))
}

/// What became of one inserted document: stored, refused by a unique index, or not known to be
/// stored.
type Inserted = std::result::Result<bool, DbError>;

/// Inserts into one collection, many to an unordered `insertMany`.
pub type InsertBatches<T> = Batches<T, Inserted>;

impl<T: Serialize + Send + Sync + 'static> Batches<T, Inserted> {
    pub fn inserts(collection: Collection<T>) -> Self {
        Self::new(move |docs: Vec<T>| {
            let collection = collection.clone();
            async move {
                let written = collection.insert_many(&docs).ordered(false).await;
                (0..docs.len()).map(|i| inserted(&written, i)).collect()
            }
        })
    }

    /// Store `doc`: `Some(())` once stored, `None` when a unique index refused it.
    pub async fn insert(&self, doc: T) -> Result<Option<()>> {
        match self.submit(doc).await? {
            Ok(true) => Ok(Some(())),
            Ok(false) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The fate of the `index`th document of an unordered `insertMany`: the others' failures are
/// not its own, but a write concern left unmet leaves every document's durability unknown.
fn inserted<R>(written: &std::result::Result<R, DbError>, index: usize) -> Inserted {
    let Err(e) = written else {
        return Ok(true);
    };
    let ErrorKind::InsertMany(failure) = e.kind.as_ref() else {
        return Err(e.clone());
    };
    if failure.write_concern_error.is_some() {
        return Err(e.clone());
    }
    let own = failure
        .write_errors
        .iter()
        .flatten()
        .find(|w| w.index == index);
    match own {
        None => Ok(true),
        Some(w) if w.code == DUPLICATE_KEY => Ok(false),
        Some(_) => Err(e.clone()),
    }
}

/// Moves of documents' `field` forward to a time (`$max`), many to one `update` command, one
/// statement per document: the driver's own calls send one statement each. Nobody waits for a
/// move: a failure is logged, and `settled` waits for all queued so far.
pub type TimeBatches = Batches<(ObjectId, DateTime), ()>;

impl TimeBatches {
    /// `write_concern` goes with each command: a raw command gets none from the client.
    pub fn moves_forward(
        db: Database,
        collection: &'static str,
        field: &'static str,
        write_concern: &WriteConcern,
    ) -> Result<Self> {
        let write_concern = super::to_document(write_concern)?;
        Ok(Self::new(move |moves: Vec<(ObjectId, DateTime)>| {
            let (db, write_concern) = (db.clone(), write_concern.clone());
            async move {
                let mut latest: HashMap<ObjectId, DateTime> = HashMap::new();
                for (id, at) in &moves {
                    let entry = latest.entry(*id).or_insert(*at);
                    *entry = (*entry).max(*at);
                }
                let updates: Vec<Bson> = latest
                    .into_iter()
                    .map(|(id, at)| {
                        Bson::Document(doc! { "q": { "_id": id }, "u": { "$max": { field: at } } })
                    })
                    .collect();
                let command = doc! {
                    "update": collection,
                    "updates": updates,
                    "ordered": false,
                    "writeConcern": write_concern,
                };
                let failure = match db.run_command(command).await {
                    Err(e) => Some(e.to_string()),
                    Ok(reply) => ["writeErrors", "writeConcernError"]
                        .into_iter()
                        .find_map(|key| reply.get(key))
                        .map(|refused| refused.to_string()),
                };
                if let Some(failure) = failure {
                    let n = moves.len();
                    tracing::warn!("{collection}.{field} of {n} not moved forward: {failure}");
                }
                vec![(); moves.len()]
            }
        }))
    }

    /// Queue a move of `id`'s time forward to `at` (never back).
    pub async fn move_forward(&self, id: ObjectId, at: DateTime) -> Result<()> {
        self.enqueue(Entry::Write((id, at), None)).await
    }
}
