//! Numeric ids, allocated atomically from a `counters` collection.
//!
//! Each process reserves a block of ids with one `$inc` and hands them out from memory, so a
//! hot path (a message) costs no extra round trip. Ids are unique across nodes and increase
//! within a node; a crash leaves at most a gap of one block.

use std::collections::HashMap;

use bson::{Document, doc};
use mongodb::Collection;
use mongodb::options::ReturnDocument;
use tokio::sync::Mutex;

use crate::error::Result;

const BLOCK: i64 = 32;

#[derive(Debug)]
pub struct IdAllocator {
    counters: Collection<Document>,
    blocks: Mutex<HashMap<&'static str, std::ops::Range<i64>>>,
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
        let mut blocks = self.blocks.lock().await;
        let block = blocks.entry(sequence).or_insert(0..0);
        if block.is_empty() {
            *block = self.reserve(sequence).await?;
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
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

    async fn reserve(&self, sequence: &str) -> Result<std::ops::Range<i64>> {
        let counter = self
            .counters
            .find_one_and_update(
                doc! { "_id": sequence },
                doc! { "$inc": { "value": BLOCK } },
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await?
            .ok_or_else(|| anyhow::anyhow!("counter {sequence} vanished"))?;
        let end = counter
            .get_i64("value")
            .or_else(|_| counter.get_i32("value").map(i64::from));
        let end = end.map_err(|e| anyhow::anyhow!("counter {sequence}: {e}"))? + 1;
        Ok(end - BLOCK..end)
    }
}
