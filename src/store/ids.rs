//! Numeric ids, allocated atomically from a `counters` collection.
//!
//! Each process reserves a block of ids with one `$inc` and hands them out from memory, so a
//! hot path (a message) costs no extra round trip. Ids are unique across nodes and, but for
//! blocks reserved at the same moment, increase within a node.
//!
//! The next block is reserved in the background once half of what is left is gone, so no
//! call waits for it while the sequence is in steady use; a sequence whose blocks last under
//! a second gets blocks twice as large, up to `MAX_BLOCK` (at 1,600 messages a second, blocks
//! of 32 took 50 reservations a second, each holding up the messages that found none left). A
//! crash or restart leaves a gap of what was reserved and not handed out.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use mongodb::Collection;
use mongodb::options::ReturnDocument;

use crate::error::{Result, UniqueWrite};

/// Ids a sequence reserves at a time when it is not busy.
const BLOCK: i64 = 32;
/// The most ids reserved at once, however busy the sequence.
const MAX_BLOCK: i64 = 1024;
/// Blocks reserved closer together than this grow; further apart than `CALM`, they start
/// again from `BLOCK`.
const FAST: Duration = Duration::from_secs(1);
const CALM: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct IdAllocator {
    counters: Collection<Document>,
    /// Each sequence's reserved ids. The lock is only held to take or add ids, never across a
    /// database call: a slow or unreachable database holds up only the calls that find no id
    /// left, each for its own wait.
    sequences: Arc<Mutex<HashMap<&'static str, Reserved>>>,
}

/// One sequence's ids reserved and not handed out yet.
#[derive(Debug, Default)]
struct Reserved {
    /// Lowest block first.
    blocks: Vec<Range<i64>>,
    /// The size of the latest block asked for, and when it was asked for.
    size: i64,
    asked: Option<Instant>,
    /// A block is being reserved in the background.
    refilling: bool,
}

impl Reserved {
    fn left(&self) -> i64 {
        self.blocks.iter().map(|b| b.end - b.start).sum()
    }

    /// The size of the block to ask for now.
    fn next_size(&mut self) -> i64 {
        let since = self.asked.map(|at| at.elapsed());
        self.size = match since {
            Some(since) if since < FAST => (self.size * 2).min(MAX_BLOCK),
            Some(since) if since < CALM => self.size.max(BLOCK),
            _ => BLOCK,
        };
        self.asked = Some(Instant::now());
        self.size
    }

    fn add(&mut self, block: Range<i64>) {
        self.blocks.push(block);
        self.blocks.sort_by_key(|b| b.start);
    }
}

impl IdAllocator {
    pub fn new(counters: Collection<Document>) -> Self {
        Self {
            counters,
            sequences: Arc::default(),
        }
    }

    /// The next id for `sequence`.
    pub async fn next(&self, sequence: &'static str) -> Result<i64> {
        let (id, refill) = {
            let mut sequences = lock(&self.sequences);
            let reserved = sequences.entry(sequence).or_default();
            let id = take_from(&mut reserved.blocks);
            // Half of the last block is gone: the next one is on its way before it is needed.
            let refill = id.is_some() && !reserved.refilling && reserved.left() < reserved.size / 2;
            if refill {
                reserved.refilling = true;
            }
            (id, refill.then(|| reserved.next_size()))
        };
        if let Some(size) = refill {
            let (counters, sequences) = (self.counters.clone(), self.sequences.clone());
            tokio::spawn(async move {
                let reserved = reserve(&counters, sequence, size).await;
                let mut sequences = lock(&sequences);
                let entry = sequences.entry(sequence).or_default();
                entry.refilling = false;
                match reserved {
                    Ok(block) => entry.add(block),
                    Err(e) => tracing::warn!("ids of {sequence} not reserved ahead: {e}"),
                }
            });
        }
        if let Some(id) = id {
            return Ok(id);
        }
        // None left: calls that find none at once each reserve a block (of the size already
        // reached: they are one demand, not many); none is wasted, as every block is kept
        // until it is used up.
        let size = {
            let mut sequences = lock(&self.sequences);
            let reserved = sequences.entry(sequence).or_default();
            reserved.size = reserved.size.max(BLOCK);
            reserved.size
        };
        let block = reserve(&self.counters, sequence, size).await?;
        let mut sequences = lock(&self.sequences);
        let reserved = sequences.entry(sequence).or_default();
        reserved.add(block);
        Ok(take_from(&mut reserved.blocks).expect("a block was just added"))
    }

    /// Make sure ids up to `floor` are never handed out (for reserved ids such as the system user).
    pub async fn reserve_up_to(&self, sequence: &'static str, floor: i64) -> Result<()> {
        self.counters
            .update_one(
                doc! { "_id": sequence },
                doc! { "$max": { "value": floor } },
            )
            .upsert(true)
            .await?;
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reserve the next `size` ids of `sequence`.
async fn reserve(counters: &Collection<Document>, sequence: &str, size: i64) -> Result<Range<i64>> {
    // Concurrent first reservations of a sequence race to create its counter: the ones that
    // lose see it refused by the unique `_id` (or, on some servers, no document), and find it
    // there when they try again.
    for _ in 0..3 {
        let counter = counters
            .find_one_and_update(doc! { "_id": sequence }, doc! { "$inc": { "value": size } })
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await
            .unless_duplicate()?
            .flatten();
        let Some(counter) = counter else { continue };
        let end = counter
            .get_i64("value")
            .or_else(|_| counter.get_i32("value").map(i64::from));
        let end = end.map_err(|e| anyhow::anyhow!("counter {sequence}: {e}"))? + 1;
        return Ok(end - size..end);
    }
    Err(anyhow::anyhow!("counter {sequence} could not be created").into())
}

/// The lowest id left in `blocks`, dropping blocks used up.
fn take_from(blocks: &mut Vec<Range<i64>>) -> Option<i64> {
    blocks.retain(|b| !b.is_empty());
    let block = blocks.first_mut()?;
    let id = block.start;
    block.start += 1;
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_grow_while_used_fast_and_shrink_when_calm() {
        let mut reserved = Reserved::default();
        let sizes: Vec<i64> = (0..8).map(|_| reserved.next_size()).collect();
        assert_eq!(sizes, [32, 64, 128, 256, 512, 1024, 1024, 1024]);
        reserved.asked = Some(Instant::now() - Duration::from_secs(5));
        assert_eq!(reserved.next_size(), 1024, "kept while in use");
        reserved.asked = Some(Instant::now() - CALM);
        assert_eq!(reserved.next_size(), BLOCK, "back to small once calm");
    }
}
