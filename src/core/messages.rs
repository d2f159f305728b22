//! Messages: posting, deleting, reading history, and replaying what a reconnecting client
//! missed.

use std::collections::HashSet;

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::ReturnDocument;
use serde::Deserialize;

use super::{ChatEvent, Core};
use crate::error::{Error, Result};
use crate::store::{Attachment, Chat, ChatFile, FileKind, Message, NotificationKind, User};

pub const CONTENT_MAX_CHARS: usize = 4000;
/// The most messages replayed per chat to a reconnecting client: beyond that it pages back
/// over REST from the oldest one it was sent.
pub const REPLAY_MAX: usize = 500;
/// Rounds of replay: the first sends what was missed, the next ones what arrived meanwhile.
const REPLAY_ROUNDS: u32 = 4;

/// Which slice of a chat's history to read; results are always oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryPage {
    /// Only messages older than the one with this numeric id (paging back).
    pub before: Option<i64>,
    /// Only messages newer than the one with this numeric id (catching up after a reconnect).
    pub after: Option<i64>,
    pub limit: i64,
}

pub fn valid_content(raw: &str) -> Result<&str> {
    if raw.trim().is_empty() {
        return Err(Error::invalid("content must not be empty"));
    }
    if raw.chars().count() > CONTENT_MAX_CHARS {
        return Err(Error::invalid(format!(
            "content is longer than {CONTENT_MAX_CHARS} characters"
        )));
    }
    Ok(raw)
}

#[derive(Deserialize)]
struct Sequence {
    seq: i64,
}

/// Where a message a client names sits in its chat.
enum Position {
    /// The message exists: it has this sequence number.
    At(i64),
    /// It does not (deleted, or never existed): the newest older message has this one.
    Past(i64),
}

/// What a reconnecting client missed in one chat, sent in rounds until it has caught up.
#[derive(Debug)]
pub struct Replay {
    chat: Chat,
    after: i64,
    sent: usize,
    rounds: u32,
}

impl Core {
    /// Whether `author` may post in `chat` now: a member, and (one-to-one) not blocked either
    /// way. Asked for every message, so an open socket loses the right when its user does.
    pub async fn may_post(&self, author: &User, chat: &Chat) -> Result<()> {
        let members = self.member_ids(chat).await?;
        if !members.contains(&author.id) {
            return Err(Error::NotFound("chat"));
        }
        if !chat.is_group()
            && let Some(other) = members.iter().find(|m| **m != author.id)
            && self.blocked_between(&author.id, other).await?
        {
            return Err(Error::Forbidden(
                "you cannot post in this chat: one of you blocked the other".into(),
            ));
        }
        Ok(())
    }

    /// The chat's next sequence number, written with its last activity in one update.
    async fn next_seq(&self, chat: &Chat, at: DateTime) -> Result<i64> {
        let taken = self
            .store
            .chats
            .clone_with_type::<Sequence>()
            .find_one_and_update(
                doc! { "_id": chat.id },
                doc! { "$inc": { "seq": 1 }, "$max": { "updated_at": at } },
            )
            .projection(doc! { "seq": 1 })
            .return_document(ReturnDocument::After)
            .await?;
        Ok(taken.ok_or(Error::NotFound("chat"))?.seq)
    }

    /// A new message of `author` in `chat`, numbered and stored (not yet delivered).
    async fn new_message(
        &self,
        author: &User,
        chat: &Chat,
        content: String,
        files: Vec<Attachment>,
    ) -> Result<Message> {
        self.may_post(author, chat).await?;
        let now = DateTime::now();
        let (num, seq) =
            tokio::try_join!(self.store.ids.next("messages"), self.next_seq(chat, now))?;
        let message = Message {
            id: ObjectId::new(),
            num,
            chat_id: chat.id,
            seq,
            author_id: author.id,
            content,
            files,
            created_at: now,
        };
        self.store.messages.insert_one(&message).await?;
        Ok(message)
    }

    /// Store a message from a member of the chat and deliver it to everyone who can see it.
    pub async fn post_message(&self, author: &User, chat: &Chat, content: &str) -> Result<Message> {
        let content = valid_content(content)?.to_owned();
        let message = self.new_message(author, chat, content, Vec::new()).await?;
        self.announce_message(author, chat, &message).await;
        Ok(message)
    }

    /// Store a message carrying files, each filed under its kind and one of the chat's tags
    /// (or `others`) so the chat's media can be browsed. Delivered like any message.
    pub async fn post_files(
        &self,
        author: &User,
        chat: &Chat,
        content: &str,
        files: Vec<(FileKind, String, Attachment)>,
    ) -> Result<Message> {
        if files.is_empty() {
            return Err(Error::invalid(
                "a message with files needs at least one file",
            ));
        }
        let attachments = files.iter().map(|(_, _, file)| file.clone()).collect();
        let message = self
            .new_message(author, chat, content.to_owned(), attachments)
            .await?;
        let filed: Vec<ChatFile> = files
            .into_iter()
            .map(|(kind, tag, file)| ChatFile {
                id: file.id,
                chat_id: chat.id,
                user_id: author.id,
                message_id: message.id,
                kind,
                tag,
                file,
                at: message.created_at,
            })
            .collect();
        self.store.files.insert_many(&filed).await?;
        self.announce_message(author, chat, &message).await;
        Ok(message)
    }

    /// Deliver a stored message. In a one-to-one chat, a recipient with no live connection
    /// also finds a notification of it later (the message's own push has already gone out).
    async fn announce_message(&self, author: &User, chat: &Chat, message: &Message) {
        let members = match self.member_ids(chat).await {
            Ok(members) => members,
            Err(e) => {
                tracing::error!(chat = %chat.id, message = %message.id, "stored but not delivered: {e}");
                return;
            }
        };
        let event = ChatEvent::MessagePosted {
            chat: chat.clone(),
            message: message.clone(),
            author: author.clone(),
            members: members.clone(),
        };
        let report = self.publish(event).await;
        if chat.is_group() {
            return;
        }
        for recipient in report.offline {
            let Ok(recipient) = ObjectId::parse_str(&recipient) else {
                continue;
            };
            let text = format!("{} sent you a message.", author.display_name());
            self.notify(
                recipient,
                NotificationKind::MessageWhileOffline,
                text,
                false,
            )
            .await;
        }
    }

    /// Delete a message; only its author may.
    pub async fn delete_message(&self, user: &User, chat: &Chat, num: i64) -> Result<Message> {
        let message = self
            .store
            .messages
            .find_one(doc! { "num": num, "chat_id": chat.id })
            .await?
            .ok_or(Error::NotFound("message"))?;
        if message.author_id != user.id {
            return Err(Error::Forbidden(
                "only the author may delete a message".into(),
            ));
        }
        let deleted = self
            .store
            .messages
            .delete_one(doc! { "_id": message.id })
            .await?;
        if deleted.deleted_count == 0 {
            // Someone else deleted it between our read and our write: theirs was announced.
            return Err(Error::NotFound("message"));
        }
        let members = self.member_ids(chat).await?;
        let event = ChatEvent::MessageDeleted {
            chat: chat.clone(),
            message: message.clone(),
            members,
        };
        self.publish(event).await;
        Ok(message)
    }

    /// Where the message with numeric id `num` sits in `chat`.
    async fn position(&self, chat: &Chat, num: i64) -> Result<Position> {
        let messages = self.store.messages.clone_with_type::<Sequence>();
        let exact = messages
            .find_one(doc! { "chat_id": chat.id, "num": num })
            .projection(doc! { "seq": 1 })
            .await?;
        if let Some(found) = exact {
            return Ok(Position::At(found.seq));
        }
        // Numeric ids are handed out in blocks per node, so "older" here is approximate; it
        // only matters for a message deleted since the client saw it.
        let older = messages
            .find_one(doc! { "chat_id": chat.id, "num": { "$lt": num } })
            .sort(doc! { "num": -1 })
            .projection(doc! { "seq": 1 })
            .await?;
        Ok(Position::Past(older.map_or(0, |m| m.seq)))
    }

    pub async fn history(&self, chat: &Chat, page: HistoryPage) -> Result<Vec<Message>> {
        let mut range = doc! {};
        if let Some(before) = page.before {
            let below = match self.position(chat, before).await? {
                Position::At(seq) => seq,
                Position::Past(seq) => seq + 1,
            };
            range.insert("$lt", below);
        }
        if let Some(after) = page.after {
            let (Position::At(above) | Position::Past(above)) = self.position(chat, after).await?;
            range.insert("$gt", above);
        }
        // Catching up reads forward from `after`; everything else reads back from the newest.
        let forward = page.after.is_some() && page.before.is_none();
        self.messages_in(chat, range, forward, page.limit).await
    }

    /// Messages of `chat` whose sequence numbers are in `range`, oldest first: the first
    /// `limit` of them when `forward`, the last `limit` otherwise.
    async fn messages_in(
        &self,
        chat: &Chat,
        range: bson::Document,
        forward: bool,
        limit: i64,
    ) -> Result<Vec<Message>> {
        let mut filter = doc! { "chat_id": chat.id };
        if !range.is_empty() {
            filter.insert("seq", range);
        }
        let order = if forward { 1 } else { -1 };
        let cursor = self
            .store
            .messages
            .find(filter)
            .sort(doc! { "chat_id": 1, "seq": order })
            .limit(limit)
            .await?;
        let mut messages: Vec<Message> = cursor.try_collect().await?;
        if !forward {
            messages.reverse();
        }
        Ok(messages)
    }

    /// Start replaying what a client missed in `chat` since the message with numeric id
    /// `last_seen`.
    pub async fn replay(&self, chat: &Chat, last_seen: i64) -> Result<Replay> {
        let (Position::At(after) | Position::Past(after)) = self.position(chat, last_seen).await?;
        Ok(Replay {
            chat: chat.clone(),
            after,
            sent: 0,
            rounds: 0,
        })
    }

    /// The next messages to replay, oldest first; empty once the client has caught up. The
    /// first round holds the newest `REPLAY_MAX` missed; later rounds, what arrived during
    /// the replay, up to `REPLAY_MAX` in all. The caller joins the chat's room when this is
    /// empty, so what follows arrives live.
    pub async fn replay_next(&self, replay: &mut Replay) -> Result<Vec<Message>> {
        let room = REPLAY_MAX.saturating_sub(replay.sent);
        if replay.rounds >= REPLAY_ROUNDS || room == 0 {
            return Ok(Vec::new());
        }
        let first = replay.rounds == 0;
        replay.rounds += 1;
        let range = doc! { "$gt": replay.after };
        let batch = self
            .messages_in(&replay.chat, range, !first, room as i64)
            .await?;
        if let Some(last) = batch.last() {
            replay.after = last.seq;
        }
        replay.sent += batch.len();
        Ok(batch)
    }

    /// The authors of these messages.
    pub async fn authors_of(
        &self,
        messages: &[Message],
    ) -> Result<std::collections::HashMap<ObjectId, User>> {
        let ids: HashSet<ObjectId> = messages.iter().map(|m| m.author_id).collect();
        self.users_by_id(&ids.into_iter().collect::<Vec<_>>()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_must_be_present_and_bounded() {
        assert!(valid_content("hello").is_ok());
        assert!(valid_content("  \n").is_err());
        assert!(valid_content(&"x".repeat(CONTENT_MAX_CHARS)).is_ok());
        assert!(valid_content(&"x".repeat(CONTENT_MAX_CHARS + 1)).is_err());
    }
}
