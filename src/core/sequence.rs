//! A chat's sequence numbers: the order its messages were stored in, handed out by each node
//! without a round trip, and unique across nodes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bson::doc;
use serde::Deserialize;

use super::Core;
use crate::error::{Error, Result};
use crate::store::{Chat, Message};

/// Tries at a free sequence number when other nodes keep taking the next one (the pauses
/// between them add up to a second at most).
const SEQ_ATTEMPTS: u32 = 10;

/// A message's sequence number alone.
#[derive(Deserialize)]
pub(super) struct Sequence {
    pub(super) seq: i64,
}

impl Core {
    /// The newest sequence number stored in the chat (0 before its first message).
    pub(super) async fn newest_seq(&self, chat: &Chat) -> Result<i64> {
        let newest = self
            .store
            .messages
            .clone_with_type::<Sequence>()
            .find_one(doc! { "chat_id": chat.id })
            .sort(doc! { "chat_id": 1, "seq": -1 })
            .projection(doc! { "seq": 1 })
            .await?;
        Ok(newest.map_or(0, |m| m.seq))
    }

    /// This node's counter of the chat's sequence numbers, loaded from its newest message.
    async fn seq_counter(&self, chat: &Chat) -> Result<Arc<AtomicI64>> {
        if let Some(counter) = self.seqs.get(&chat.id) {
            return Ok(counter);
        }
        let newest = self.newest_seq(chat).await?;
        // Tasks that missed together share one counter: each with its own would hand out the
        // same numbers.
        let counter = self
            .seqs
            .get_or_insert(chat.id, || Arc::new(AtomicI64::new(newest)));
        counter.fetch_max(newest, Ordering::SeqCst);
        Ok(counter)
    }

    /// Store the message with the chat's next sequence number. The number comes from this
    /// node's counter (no round trip); the unique (chat, seq) index refuses one another node
    /// took meanwhile, and the counter moves past the chat's newest number. Numbers are unique
    /// and follow the order messages were stored in; one refused here and taken by nobody
    /// leaves a gap.
    pub(super) async fn insert_numbered(&self, chat: &Chat, message: &mut Message) -> Result<()> {
        for attempt in 0..SEQ_ATTEMPTS {
            let counter = self.seq_counter(chat).await?;
            message.seq = counter.fetch_add(1, Ordering::SeqCst) + 1;
            match self.store.message_inserts.insert(message.clone()).await {
                Ok(Some(_)) => return Ok(()),
                // Another node took the number.
                Ok(None) => {
                    // Nodes that collide would read the same newest number and collide again:
                    // a random pause, growing with each attempt, sets them apart.
                    let pause = rand::random_range(0..=1u64 << attempt);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    let newest = self.newest_seq(chat).await?;
                    let counter = self.seq_counter(chat).await?;
                    counter.fetch_max(newest, Ordering::SeqCst);
                }
                Err(e) => {
                    self.seqs.remove(&chat.id);
                    return Err(e);
                }
            }
        }
        Err(Error::Internal(anyhow::anyhow!(
            "chat {}: no free sequence number after {SEQ_ATTEMPTS} attempts",
            chat.id
        )))
    }
}
