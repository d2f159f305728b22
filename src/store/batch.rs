//! Inserts gathered across concurrent writers. A database pays for each write command
//! (a round trip, a journal commit), not much for each document in it: while one batch is on
//! its way, the inserts that arrive meanwhile wait and then go together as one
//! `insertMany`. A lone insert goes at once, alone; each writer hears about its own document
//! only after the database has answered for it.

use mongodb::Collection;
use mongodb::error::{Error as DbError, ErrorKind};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::error::{DUPLICATE_KEY, Error, Result};

/// Documents in one command at most.
const MAX_BATCH: usize = 256;
/// Inserts waiting for a batch before writers wait to queue theirs.
const QUEUE: usize = 4 * MAX_BATCH;

/// What became of one document: stored, refused by a unique index, or not known to be stored.
type Outcome = std::result::Result<bool, DbError>;

struct Pending<T> {
    doc: T,
    done: oneshot::Sender<Outcome>,
}

/// The batched inserts of one collection.
#[derive(Debug)]
pub struct InsertBatches<T> {
    queue: mpsc::Sender<Pending<T>>,
}

impl<T> InsertBatches<T>
where
    T: Serialize + Send + Sync + 'static,
{
    /// Start writing into `collection`. Must be called inside a Tokio runtime; the writer
    /// stops when this is dropped.
    pub fn new(collection: Collection<T>) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(write(collection, waiting));
        Self { queue }
    }

    /// Store `doc`: `Some(())` once stored, `None` when a unique index refused it.
    pub async fn insert(&self, doc: T) -> Result<Option<()>> {
        let (done, outcome) = oneshot::channel();
        let stopped = || Error::Internal(anyhow::anyhow!("the insert writer stopped"));
        self.queue
            .send(Pending { doc, done })
            .await
            .map_err(|_| stopped())?;
        match outcome.await.map_err(|_| stopped())? {
            Ok(true) => Ok(Some(())),
            Ok(false) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

async fn write<T: Serialize + Send + Sync>(
    collection: Collection<T>,
    mut waiting: mpsc::Receiver<Pending<T>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let written = collection
            .insert_many(batch.iter().map(|p| &p.doc))
            .ordered(false)
            .await;
        if batch.len() > 1 {
            tracing::trace!(documents = batch.len(), "one insert for many");
        }
        for (index, pending) in batch.drain(..).enumerate() {
            // A writer that gave up waiting has nobody to tell.
            let _ = pending.done.send(outcome(&written, index));
        }
    }
}

/// The fate of the `index`th document of an unordered `insertMany`: the others' failures are
/// not its own, but a write concern left unmet leaves every document's durability unknown.
fn outcome<R>(written: &std::result::Result<R, DbError>, index: usize) -> Outcome {
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
