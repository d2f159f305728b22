//! Delivery receipts: which messages reached a device of each member. A participant's
//! receipts are a mark (every message up to it arrived) and the messages acknowledged above
//! it, out of order; the mark moves up as the gaps close. Joining a chat marks what was said
//! before as delivered.

use std::collections::HashMap;

use bson::{Document, doc};
use futures::TryStreamExt;
use serde::Deserialize;

use super::Core;
use crate::error::{Error, Result};
use crate::store::{Chat, Message, Participant, User};

/// The most undelivered messages handed over at once; the rest follow once these are
/// acknowledged (at the next sign-in).
pub const UNDELIVERED_MAX: i64 = 1000;

#[derive(Deserialize)]
struct Sequence {
    seq: i64,
}

/// Messages above the participant's mark that they have not acknowledged.
fn undelivered_in(participant: &Participant) -> Document {
    doc! {
        "chat_id": participant.chat_id,
        "seq": { "$gt": participant.delivered_seq, "$nin": &participant.delivered_above },
    }
}

impl Core {
    /// The message with numeric id `num` reached a device of `user`. Nothing happens when it
    /// is not in a chat of theirs, or was acknowledged before.
    pub async fn mark_delivered(&self, user: &User, num: i64) -> Result<()> {
        let message = self
            .store
            .messages
            .find_one(doc! { "num": num })
            .await?
            .ok_or(Error::NotFound("message"))?;
        let noted = self
            .store
            .participants
            .find_one_and_update(
                doc! {
                    "chat_id": message.chat_id,
                    "user_id": user.id,
                    "delivered_seq": { "$lt": message.seq },
                },
                doc! { "$addToSet": { "delivered_above": message.seq } },
            )
            .return_document(mongodb::options::ReturnDocument::After)
            .await?;
        match noted {
            Some(participant) => self.close_delivery_gaps(&participant).await,
            None => Ok(()),
        }
    }

    /// Move the mark up to just below the first message still unacknowledged. Marks only go
    /// up, and only what they pass is dropped from the list, so receipts written at once on
    /// other nodes are not lost.
    async fn close_delivery_gaps(&self, participant: &Participant) -> Result<()> {
        let first_missing = self
            .store
            .messages
            .clone_with_type::<Sequence>()
            .find_one(undelivered_in(participant))
            .sort(doc! { "chat_id": 1, "seq": 1 })
            .projection(doc! { "seq": 1 })
            .await?;
        let acknowledged = participant.delivered_above.iter().copied().max();
        let mark = match first_missing {
            Some(missing) => missing.seq - 1,
            None => acknowledged.unwrap_or(participant.delivered_seq),
        };
        if mark <= participant.delivered_seq {
            return Ok(());
        }
        self.store
            .participants
            .update_one(
                doc! { "_id": participant.id },
                doc! {
                    "$max": { "delivered_seq": mark },
                    "$pull": { "delivered_above": { "$lte": mark } },
                },
            )
            .await?;
        Ok(())
    }

    /// What has not reached any device of the user yet, oldest first (at most
    /// `UNDELIVERED_MAX`), each with its chat and author.
    pub async fn undelivered(&self, user: &User) -> Result<Vec<(Chat, Message, User)>> {
        let mine = self.participants_where(doc! { "user_id": user.id }).await?;
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let each: Vec<Document> = mine.iter().map(undelivered_in).collect();
        let messages: Vec<Message> = self
            .store
            .messages
            .find(doc! { "$or": each })
            .sort(doc! { "created_at": 1, "_id": 1 })
            .limit(UNDELIVERED_MAX)
            .await?
            .try_collect()
            .await?;
        let chat_ids: Vec<_> = mine.iter().map(|p| p.chat_id).collect();
        let chats: HashMap<_, Chat> = self
            .store
            .chats
            .find(doc! { "_id": { "$in": chat_ids } })
            .await?
            .map_ok(|chat| (chat.id, chat))
            .try_collect()
            .await?;
        let authors = self.authors_of(&messages).await?;
        Ok(messages
            .into_iter()
            .filter_map(|message| {
                let chat = chats.get(&message.chat_id)?.clone();
                let author = authors.get(&message.author_id)?.clone();
                Some((chat, message, author))
            })
            .collect())
    }
}
