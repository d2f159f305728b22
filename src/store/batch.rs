//! Writes gathered across concurrent writers. A database pays for each write command (a
//! round trip, a journal commit) far more than for each document in it: while one batch is on
//! its way, the writes that arrive meanwhile wait and then go together as one command. A lone
//! write goes at once, alone; a writer hears about its own write only after the database has
//! answered for it, and a batch whose command or answer is lost on the way is retried once by
//! its documents' ids. Moves of a time forward (`TimeMoves`) are not waited for: each
//! document's gather for a moment and go as one.

use std::collections::{HashMap, HashSet, VecDeque, hash_map};
use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use bson::{Bson, DateTime, RawDocumentBuf, doc, oid::ObjectId};
use futures::TryStreamExt;
use mongodb::error::{Error as DbError, ErrorKind};
use mongodb::options::{ReadConcern, WriteConcern};
use mongodb::{Collection, Database};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use crate::error::{DUPLICATE_KEY, Error, Result};

/// Writes in one command at most.
const MAX_BATCH: usize = 256;
/// Writes waiting for a batch before writers wait to queue theirs.
const QUEUE: usize = 4 * MAX_BATCH;

/// A write waiting in a queue, and who to tell what became of it.
type Waiting<T, R> = (T, oneshot::Sender<R>);

/// A queue of writes of `T`, each answered with an `R`, written a batch at a time.
#[derive(Debug)]
pub struct Batches<T, R> {
    queue: mpsc::Sender<Waiting<T, R>>,
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
        let (queue, mut waiting) = mpsc::channel::<Waiting<T, R>>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (items, answers): (Vec<T>, Vec<_>) = batch.drain(..).unzip();
                for (answer, outcome) in answers.into_iter().zip(write(items).await) {
                    // A writer that gave up waiting has nobody to tell.
                    let _ = answer.send(outcome);
                }
            }
        });
        Self { queue }
    }

    async fn submit(&self, item: T) -> Result<R> {
        let (answer, outcome) = oneshot::channel();
        self.queue
            .send((item, answer))
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())
    }
}

fn stopped() -> Error {
    Error::Internal(anyhow::anyhow!("the batch writer stopped"))
}

/// What became of one inserted document: stored, refused by a unique index, or not known to be
/// stored.
type Inserted = std::result::Result<bool, DbError>;

/// Inserts of `T`s into one collection, many to an unordered `insertMany`. Each document is
/// turned into BSON by its own writer, before it queues, not by the batch's.
#[derive(Debug)]
pub struct InsertBatches<T> {
    batches: Batches<RawDocumentBuf, Inserted>,
    documents: PhantomData<fn(T)>,
}

/// How long a batch whose fate was lost waits before it is looked for: long enough for a
/// database still applying the first attempt to have done so.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

impl<T: Serialize + Send + Sync> InsertBatches<T> {
    /// Inserts into `collection`, whose client must not retry writes itself
    /// (`retryWrites=false`). A batch whose command or answer was lost on the way is retried
    /// here instead, once, by its documents' ids: those found stored are not inserted again.
    /// (A driver's own retries make the database keep a record of every write command to
    /// recognise a retry by; the ids already tell, at no cost until something is lost.)
    pub fn inserts(collection: Collection<T>) -> Self {
        let collection = collection.clone_with_type::<RawDocumentBuf>();
        let batches = Batches::new(move |docs: Vec<RawDocumentBuf>| {
            let collection = collection.clone();
            async move { insert_once(&collection, &docs).await }
        });
        Self {
            batches,
            documents: PhantomData,
        }
    }

    /// Store `doc`: `Some(())` once stored, `None` when a unique index refused it.
    pub async fn insert(&self, doc: T) -> Result<Option<()>> {
        let doc = identified(&doc)?;
        match self.batches.submit(doc).await? {
            Ok(true) => Ok(Some(())),
            Ok(false) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// `doc` as stored, with an `_id` of its own if it had none: the id a retry looks for.
fn identified(doc: &impl Serialize) -> std::result::Result<RawDocumentBuf, DbError> {
    let mut raw = bson::serialize_to_raw_document_buf(doc)?;
    if raw.get("_id")?.is_none() {
        raw.append(bson::cstr!("_id"), ObjectId::new());
    }
    Ok(raw)
}

/// Insert `docs`, each stored once: when the batch's fate is lost on the way, the documents not
/// found stored go again, and one a unique index then refuses counts as stored if it is its
/// own `_id` that is there (the first attempt landed after the look).
async fn insert_once(
    collection: &Collection<RawDocumentBuf>,
    docs: &[RawDocumentBuf],
) -> Vec<Inserted> {
    let written = collection.insert_many(docs).ordered(false).await;
    let first = (0..docs.len()).map(|i| inserted(&written, i)).collect();
    let lost = match &written {
        Err(e) if fate_lost(e) => e,
        _ => return first,
    };
    tracing::warn!(
        "an insert of {} documents was lost on the way ({lost}): inserting those not stored",
        docs.len()
    );
    tokio::time::sleep(RETRY_PAUSE).await;
    let Ok(stored) = stored_ids(collection, docs.iter()).await else {
        return first;
    };
    let missing: Vec<&RawDocumentBuf> = docs
        .iter()
        .filter(|d| !stored.contains(&id_of(d)))
        .collect();
    let again = collection
        .insert_many(missing.iter().copied())
        .ordered(false)
        .await;
    let mut outcomes: HashMap<Bson, Inserted> = missing
        .iter()
        .enumerate()
        .map(|(j, d)| (id_of(d), inserted(&again, j)))
        .collect();
    let refused = missing
        .iter()
        .copied()
        .filter(|d| matches!(outcomes[&id_of(d)], Ok(false)));
    if let Ok(landed) = stored_ids(collection, refused).await {
        for id in landed {
            outcomes.insert(id, Ok(true));
        }
    }
    docs.iter()
        .map(|d| outcomes.remove(&id_of(d)).unwrap_or(Ok(true)))
        .collect()
}

fn id_of(doc: &RawDocumentBuf) -> Bson {
    doc.get("_id")
        .ok()
        .flatten()
        .and_then(|id| Bson::try_from(id).ok())
        .unwrap_or(Bson::Null)
}

/// Which of `docs` are stored, as a majority of the database's members know it: a document
/// found here survives a failover as an acknowledged write does.
async fn stored_ids(
    collection: &Collection<RawDocumentBuf>,
    docs: impl Iterator<Item = &RawDocumentBuf>,
) -> std::result::Result<HashSet<Bson>, DbError> {
    let ids: Vec<Bson> = docs.map(id_of).collect();
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<RawDocumentBuf> = collection
        .find(doc! { "_id": { "$in": ids } })
        .projection(doc! { "_id": 1 })
        .read_concern(ReadConcern::majority())
        .await?
        .try_collect()
        .await?;
    Ok(found.iter().map(id_of).collect())
}

/// Whether a write's command or its answer may have been lost on the way, so that some of its
/// documents may be stored and others not: the connection failed, or the database answered
/// that it stepped down or shut down (the codes drivers retry writes on).
fn fate_lost(e: &DbError) -> bool {
    const RETRYABLE: [i32; 12] = [
        6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436,
    ];
    match e.kind.as_ref() {
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => true,
        ErrorKind::Command(c) => RETRYABLE.contains(&c.code),
        _ => e.contains_label("RetryableWriteError"),
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

/// Moves of documents' `field` forward to a time (`$max`). A document's moves gather for a
/// while after its first one and then go as one statement, to the latest time: a document
/// moved many times meanwhile costs one statement. Documents fall due as spread out as their
/// first moves were, and go a few to an `update` command, so no command holds up the other
/// writes for long (the driver's own calls send one statement each), and no faster than their
/// `Pace`. Nobody waits for a move: a failure is logged, and `settled` writes and waits for all
/// queued so far.
#[derive(Debug)]
pub struct TimeMoves {
    queue: mpsc::Sender<Move>,
}

enum Move {
    To(ObjectId, DateTime),
    /// Write one document's moves now.
    Flush(ObjectId, oneshot::Sender<()>),
    /// Write every document's moves now.
    Settle(oneshot::Sender<()>),
}

/// Statements in one command of moves.
const MOVES_PER_COMMAND: usize = 4;

/// When gathered moves are written: each document's `linger` after its first move, and no more
/// than `per_second` documents a second. With more documents busy at once, each gathers longer
/// instead, so that their moves cost the database a bounded number of statements whatever the
/// load.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub linger: Duration,
    pub per_second: u32,
}

impl Pace {
    /// How long a write of `n` documents holds off the next one.
    fn spacing(&self, n: usize) -> Duration {
        Duration::from_secs(1).mul_f64(n as f64 / f64::from(self.per_second.max(1)))
    }
}

/// Documents whose moves are gathering: each one's latest time, and when each falls due (in
/// the order of their first moves, so in the order they fall due).
struct Gathering {
    latest: HashMap<ObjectId, DateTime>,
    due: VecDeque<(Instant, ObjectId)>,
}

impl Gathering {
    fn add(&mut self, id: ObjectId, at: DateTime, linger: Duration) {
        match self.latest.entry(id) {
            hash_map::Entry::Occupied(mut latest) => {
                if at > *latest.get() {
                    latest.insert(at);
                }
            }
            hash_map::Entry::Vacant(latest) => {
                latest.insert(at);
                self.due.push_back((Instant::now() + linger, id));
            }
        }
    }

    /// Up to `most` documents due by `now`, with their times.
    fn take_due(&mut self, now: Instant, most: usize) -> Vec<(ObjectId, DateTime)> {
        let mut taken = Vec::new();
        while taken.len() < most {
            match self.due.front() {
                Some((at, _)) if *at <= now => {}
                _ => break,
            }
            let (_, id) = self.due.pop_front().expect("a front was just seen");
            if let Some(at) = self.latest.remove(&id) {
                taken.push((id, at));
            }
        }
        taken
    }

    /// One document, due or not. (Its place in `due` stays: reached, it finds nothing, or
    /// takes the document's later moves a little early.)
    fn take(&mut self, id: ObjectId) -> Vec<(ObjectId, DateTime)> {
        self.latest
            .remove(&id)
            .map(|at| (id, at))
            .into_iter()
            .collect()
    }

    /// Every document gathering, due or not.
    fn take_all(&mut self) -> Vec<(ObjectId, DateTime)> {
        self.due.clear();
        self.latest.drain().collect()
    }
}

impl TimeMoves {
    /// Start a writer that moves `field` of `collection`'s documents at `pace`. `write_concern`
    /// goes with each command: a raw command gets none from the client. The writer writes what
    /// is gathering and stops when this is dropped.
    pub fn moves_forward(
        db: Database,
        collection: &'static str,
        field: &'static str,
        write_concern: &WriteConcern,
        pace: Pace,
    ) -> Result<Self> {
        let write_concern = super::to_document(write_concern)?;
        // `per_command`: a few while nobody waits, as many as a command takes for someone who
        // does.
        let write = move |moves: Vec<(ObjectId, DateTime)>, per_command: usize| {
            let (db, write_concern) = (db.clone(), write_concern.clone());
            async move {
                for chunk in moves.chunks(per_command) {
                    let updates: Vec<Bson> = chunk
                        .iter()
                        .map(|(id, at)| {
                            Bson::Document(
                                doc! { "q": { "_id": id }, "u": { "$max": { field: at } } },
                            )
                        })
                        .collect();
                    let command = doc! {
                        "update": collection,
                        "updates": updates,
                        "ordered": false,
                        "writeConcern": write_concern.clone(),
                    };
                    let failure = match db.run_command(command).await {
                        Err(e) => Some(e.to_string()),
                        Ok(reply) => ["writeErrors", "writeConcernError"]
                            .into_iter()
                            .find_map(|key| reply.get(key))
                            .map(|refused| refused.to_string()),
                    };
                    if let Some(failure) = failure {
                        let n = chunk.len();
                        tracing::warn!("{collection}.{field} of {n} not moved forward: {failure}");
                    }
                }
            }
        };
        let (queue, mut waiting) = mpsc::channel::<Move>(QUEUE);
        tokio::spawn(async move {
            let mut gathering = Gathering {
                latest: HashMap::new(),
                due: VecDeque::new(),
            };
            let mut received = Vec::with_capacity(MAX_BATCH);
            // When the pace lets the next write of due documents start.
            let mut paced = Instant::now();
            loop {
                let next_due = gathering.due.front().map(|(at, _)| (*at).max(paced));
                tokio::select! {
                    // Everything queued is taken in at once, so that writers never wait for
                    // room while documents fall due.
                    n = waiting.recv_many(&mut received, MAX_BATCH) => {
                        if n == 0 {
                            write(gathering.take_all(), MAX_BATCH).await;
                            return;
                        }
                        for next in received.drain(..) {
                            match next {
                                Move::To(id, at) => gathering.add(id, at, pace.linger),
                                Move::Flush(id, waiter) => {
                                    write(gathering.take(id), MAX_BATCH).await;
                                    let _ = waiter.send(());
                                }
                                Move::Settle(waiter) => {
                                    write(gathering.take_all(), MAX_BATCH).await;
                                    let _ = waiter.send(());
                                }
                            }
                        }
                    }
                    () = sleep_until(next_due.unwrap_or_else(Instant::now)),
                        if next_due.is_some() =>
                    {
                        let now = Instant::now();
                        let due = gathering.take_due(now, MOVES_PER_COMMAND);
                        paced = now + pace.spacing(due.len());
                        write(due, MOVES_PER_COMMAND).await;
                    }
                }
            }
        });
        Ok(Self { queue })
    }

    /// Queue a move of `id`'s time forward to `at` (never back).
    pub async fn move_forward(&self, id: ObjectId, at: DateTime) -> Result<()> {
        self.queue
            .send(Move::To(id, at))
            .await
            .map_err(|_| stopped())
    }

    /// Write every move queued so far, and wait until it is written (or has failed).
    pub async fn settled(&self) -> Result<()> {
        self.ask(Move::Settle).await
    }

    /// Write the moves of `id` queued so far, and wait until they are written (or failed).
    pub async fn settled_for(&self, id: ObjectId) -> Result<()> {
        self.ask(|waiter| Move::Flush(id, waiter)).await
    }

    async fn ask(&self, what: impl FnOnce(oneshot::Sender<()>) -> Move) -> Result<()> {
        let (waiter, done) = oneshot::channel();
        self.queue.send(what(waiter)).await.map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())
    }
}
