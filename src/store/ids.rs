//! Numeric ids, allocated atomically from a `counters` collection.
//!
//! Each process reserves a block of ids with one `$inc` and hands them out from memory, so a
//! hot path (a message) costs no extra round trip. Ids are unique across nodes and increase
//! within a node; a crash leaves at most a gap of one block.

use std::collections::HashMap;
use std::ops::Range;

use bson::{Document, doc};
use mongodb::Collection;
use mongodb::options::ReturnDocument;
use std::sync::Mutex;

use crate::error::{Result, UniqueWrite};

const BLOCK: i64 = 32;

#[derive(Debug)]
pub struct IdAllocator {
    counters: Collection<Document>,
    /// Each sequence's reserved ids not handed out yet, lowest block first. The lock is only
    /// held to take or add a block, never across a database call: a slow or unreachable
    /// database holds up only the calls that need a new block, each for its own wait.
    blocks: Mutex<HashMap<&'static str, Vec<Range<i64>>>>,
}

impl IdAllocator {
    pub fn new(counters: Collection<Document>) -> Self {
        Self {
            counters,
            blocks: Mutex::new(HashMap::new()),
        }
    }

    /// The next id for `sequence`.
    pub async fn next(&self, sequence: &'static str) -> Result<i64> {
        if let Some(id) = self.take(sequence) {
            return Ok(id);
        }
        // Calls that find the blocks empty at once each reserve one; none is wasted, as
        // every block is kept until it is used up.
        let block = self.reserve(sequence).await?;
        let mut blocks = self
            .blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let reserved = blocks.entry(sequence).or_default();
        reserved.push(block);
        reserved.sort_by_key(|b| b.start);
        Ok(take_from(reserved).expect("a block was just added"))
    }

    fn take(&self, sequence: &'static str) -> Option<i64> {
        take_from(
            self.blocks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_mut(sequence)?,
        )
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

    async fn reserve(&self, sequence: &str) -> Result<Range<i64>> {
        // Concurrent first reservations of a sequence race to create its counter: the ones
        // that lose see it refused by the unique `_id` (or, on some servers, no document),
        // and find it there when they try again.
        for _ in 0..3 {
            let counter = self
                .counters
                .find_one_and_update(
                    doc! { "_id": sequence },
                    doc! { "$inc": { "value": BLOCK } },
                )
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
            return Ok(end - BLOCK..end);
        }
        Err(anyhow::anyhow!("counter {sequence} could not be created").into())
    }
}

/// The lowest id left in `blocks`, dropping blocks used up.
fn take_from(blocks: &mut Vec<Range<i64>>) -> Option<i64> {
    blocks.retain(|b| !b.is_empty());
    let block = blocks.first_mut()?;
    let id = block.start;
    block.start += 1;
    Some(id)
}
