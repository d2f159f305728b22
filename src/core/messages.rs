//! Messages: posting, deleting, reading history, and replaying what a reconnecting client
//! missed.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;
use serde::Deserialize;

use super::publisher::Published;
use super::{ChatEvent, Core};
use crate::error::{Error, Result};
use crate::store::{
    Attachment, Chat, ChatFile, FileKind, Message, NotificationKind, RequestStatus, User,
};

pub const CONTENT_MAX_CHARS: usize = 4000;
/// The most messages replayed per chat to a reconnecting client: beyond that it pages back
/// over REST from the oldest one it was sent.
pub const REPLAY_MAX: usize = 500;
/// Rounds of replay: the first sends what was missed, the next ones what arrived meanwhile.
const REPLAY_ROUNDS: u32 = 4;
/// Tries at a free sequence number when other nodes keep taking the next one (the pauses
/// between them add up to a second at most).
const SEQ_ATTEMPTS: u32 = 10;

/// Which slice of a chat's history to read; results are always oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryPage {
    /// Only messages older than the one with this numeric id (paging back).
    pub before: Option<i64>,
    /// Only messages newer than the one with this numeric id (catching up after a reconnect).
    pub after: Option<i64>,
    /// Leave out this many of the newest first (paging by count).
    pub skip: u64,
    pub limit: i64,
}

/// The start of a message, as a push or a list shows it: at most 100 characters.
pub fn preview(content: &str) -> String {
    const MAX: usize = 100;
    match content.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &content[..cut]),
        None => content.to_owned(),
    }
}

pub fn valid_content(raw: &str) -> Result<&str> {
    // Whitespace and control characters alone (NUL included) say nothing.
    if raw.chars().all(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid("content must not be empty"));
    }
    if raw.chars().count() > CONTENT_MAX_CHARS {
        return Err(Error::invalid(format!(
            "content is longer than {CONTENT_MAX_CHARS} characters"
        )));
    }
    Ok(raw)
}

/// The longest link a message may carry, and the longest id a client may give its copy.
pub const LINK_MAX_CHARS: usize = 2048;
pub const CLIENT_ID_MAX_CHARS: usize = 128;

/// A message as its author wrote it, before it is stored.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// May be empty when files come with it.
    pub content: String,
    /// Files, each filed under a kind and a tag (one of the chat's, or `others`) so the
    /// chat's media can be browsed.
    pub files: Vec<(FileKind, String, Attachment)>,
    pub link: Option<String>,
    pub client_id: Option<String>,
}

impl Draft {
    pub fn text(content: &str) -> Self {
        Self {
            content: content.to_owned(),
            ..Self::default()
        }
    }

    /// The draft as it may be stored: content present (or files), everything bounded.
    fn checked(self) -> Result<Self> {
        if self.files.is_empty() {
            valid_content(&self.content)?;
        } else if self.content.chars().count() > CONTENT_MAX_CHARS {
            return Err(Error::invalid(format!(
                "content is longer than {CONTENT_MAX_CHARS} characters"
            )));
        }
        if let Some(link) = &self.link {
            let web = link.starts_with("https://") || link.starts_with("http://");
            if !web || link.chars().count() > LINK_MAX_CHARS || link.contains(char::is_whitespace) {
                return Err(Error::invalid(format!(
                    "a link must be an http(s) URL of at most {LINK_MAX_CHARS} characters"
                )));
            }
        }
        if let Some(id) = &self.client_id
            && (id.chars().count() > CLIENT_ID_MAX_CHARS || id.contains(char::is_control))
        {
            return Err(Error::invalid(format!(
                "a client's id for a message is at most {CLIENT_ID_MAX_CHARS} characters"
            )));
        }
        Ok(self)
    }
}

/// What posting may do besides storing the message.
enum Posting {
    Plain,
    /// The asked user writes in a pending request: that accepts it.
    Accepts,
}

/// A message stored, and what delivering it did (`None` if it could not be delivered).
#[derive(Debug)]
pub struct Posted {
    pub message: Message,
    pub published: Option<Published>,
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

/// What a reconnecting client missed in one chat, read in rounds until it has caught up.
#[derive(Debug)]
pub struct Replay {
    chat: Chat,
    after: i64,
    sent: usize,
    rounds: u32,
    pending: VecDeque<(Message, User)>,
}

impl Replay {
    /// The client now hears the chat live: one more round fills the gap between the round that
    /// found nothing and the join. A transport that cannot drop what it already sent (a
    /// Socket.IO room) may then send a message twice, one stored before that round and
    /// delivered live after the join, rather than lose one stored in the gap.
    pub fn joined(&mut self) {
        self.rounds = self.rounds.min(REPLAY_ROUNDS - 1);
    }
}

impl Core {
    /// Whether `author` may post in `chat` now: a member; in a one-to-one chat, neither
    /// blocked the other, and not the asker of a declined request; in a group that allows no
    /// public posts, an admin. Asked for every message, from the chat as it is now, so an open
    /// socket loses the right when its user does.
    pub async fn may_post(&self, author: &User, chat: &Chat) -> Result<()> {
        self.posting(author, chat).await.map(|_| ())
    }

    async fn posting(&self, author: &User, chat: &Chat) -> Result<Posting> {
        let members = self.members(chat).await?;
        if !members.ids.contains(&author.id) {
            return Err(Error::NotFound("chat"));
        }
        let now = self.chat_by_num(chat.num).await?;
        if !chat.is_group() {
            let other = members.ids.iter().find(|m| **m != author.id);
            if let Some(other) = other
                && self.blocked_between(&author.id, other).await?
            {
                return Err(Error::Forbidden(
                    "you cannot post in this chat: one of you blocked the other".into(),
                ));
            }
            return match &now.request {
                Some(r) if r.status == RequestStatus::Declined && r.from == author.id => {
                    Err(Error::Forbidden("your chat request was declined".into()))
                }
                Some(r) if r.status == RequestStatus::Pending && r.to == author.id => {
                    Ok(Posting::Accepts)
                }
                _ => Ok(Posting::Plain),
            };
        }
        let public = now.group.as_ref().is_none_or(|g| g.allow_public_post);
        if !public && !members.admins.contains(&author.id) {
            return Err(Error::Forbidden("only admins may post in this chat".into()));
        }
        Ok(Posting::Plain)
    }

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
    async fn insert_numbered(&self, chat: &Chat, message: &mut Message) -> Result<()> {
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

    /// Move the chat's last activity (what chat lists sort by) to `at`. Queued, not waited
    /// for: a chat's moves gather for a moment and are written as one, to the latest time, so
    /// a busy chat does not double the writes of its messages. Chat lists have what is queued
    /// written before they read, and a stopping node all of it.
    async fn touch_chat(&self, chat: &Chat, at: DateTime) -> Result<()> {
        self.store.chat_activity.move_forward(chat.id, at).await
    }

    /// Store a message of `author` in `chat`, after the rules of posting, and deliver it to
    /// everyone who can see it. Every message of every dialect and transport comes here.
    pub async fn post(&self, author: &User, chat: &Chat, draft: Draft) -> Result<Posted> {
        let _under_way = self.posts_under_way.token();
        let draft = draft.checked()?;
        if let Posting::Accepts = self.posting(author, chat).await? {
            let now = self.chat_by_num(chat.num).await?;
            match self.settle_request(&now, author, true).await {
                // Answered meanwhile (accepted by another of their devices): write on.
                Ok(_) | Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut message = Message {
            id: ObjectId::new(),
            num: self.store.ids.next("messages").await?,
            chat_id: chat.id,
            seq: 0,
            author_id: author.id,
            content: draft.content,
            files: draft
                .files
                .iter()
                .map(|(_, _, file)| file.clone())
                .collect(),
            link: draft.link,
            client_id: draft.client_id,
            created_at: DateTime::now(),
        };
        let at = message.created_at;
        self.insert_numbered(chat, &mut message).await?;
        self.touch_chat(chat, at).await?;
        if !draft.files.is_empty() {
            let filed: Vec<ChatFile> = draft
                .files
                .into_iter()
                .map(|(kind, tag, file)| ChatFile {
                    id: file.id,
                    chat_id: chat.id,
                    user_id: author.id,
                    message_id: message.id,
                    kind,
                    tag,
                    file,
                    at,
                })
                .collect();
            self.store.files.insert_many(&filed).await?;
        }
        let published = self.announce_message(author, chat, &message).await;
        Ok(Posted { message, published })
    }

    /// A message of text only.
    pub async fn post_message(&self, author: &User, chat: &Chat, content: &str) -> Result<Posted> {
        self.post(author, chat, Draft::text(content)).await
    }

    /// A message carrying files.
    pub async fn post_files(
        &self,
        author: &User,
        chat: &Chat,
        content: &str,
        files: Vec<(FileKind, String, Attachment)>,
    ) -> Result<Posted> {
        if files.is_empty() {
            return Err(Error::invalid(
                "a message with files needs at least one file",
            ));
        }
        let draft = Draft {
            content: content.to_owned(),
            files,
            ..Draft::default()
        };
        self.post(author, chat, draft).await
    }

    /// Deliver a stored message. In a one-to-one chat, a recipient with no live connection
    /// also finds a notification of it later (the message's own push has already gone out);
    /// those are written after the sender has their answer, which waits for the sender's work
    /// only.
    async fn announce_message(
        &self,
        author: &User,
        chat: &Chat,
        message: &Message,
    ) -> Option<Published> {
        let members = match self.member_ids(chat).await {
            Ok(members) => members,
            Err(e) => {
                tracing::error!(chat = %chat.id, message = %message.id, "stored but not delivered: {e}");
                return None;
            }
        };
        let event = ChatEvent::MessagePosted {
            chat: chat.clone(),
            message: message.clone(),
            author: author.clone(),
            members: members.clone(),
        };
        let published = self.publish(event).await;
        let offline: Vec<ObjectId> = published
            .report
            .offline
            .iter()
            .filter_map(|user| ObjectId::parse_str(user).ok())
            .collect();
        if !chat.is_group() {
            let others: Vec<ObjectId> = members
                .iter()
                .filter(|m| **m != author.id)
                .copied()
                .collect();
            self.refresh_totals(others);
            if !offline.is_empty()
                && let Some(app) = self.app()
            {
                let author = author.clone();
                tokio::spawn(async move {
                    for recipient in offline {
                        let kind = NotificationKind::MessageWhileOffline;
                        app.notify(recipient, kind, &author, None, false).await;
                    }
                });
            }
        }
        Some(published)
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

    /// The message with this id in `chat`.
    pub async fn message_in(&self, chat: &Chat, id: ObjectId) -> Result<Message> {
        let filter = doc! { "_id": id, "chat_id": chat.id };
        let message = self.store.messages.find_one(filter).await?;
        message.ok_or(Error::NotFound("message"))
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
        self.messages_in(chat, range, forward, page.skip, page.limit)
            .await
    }

    /// Messages of `chat` whose sequence numbers are in `range`, oldest first: the first
    /// `limit` of them when `forward`, the last `limit` otherwise.
    async fn messages_in(
        &self,
        chat: &Chat,
        range: bson::Document,
        forward: bool,
        skip: u64,
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
            .skip(skip)
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
            pending: VecDeque::new(),
        })
    }

    /// The next message to replay, oldest first, with its author; `None` once the client has
    /// caught up. The first round holds the newest `REPLAY_MAX` missed; later rounds, what
    /// arrived during the replay, up to `REPLAY_MAX` in all. The caller joins the chat's room
    /// after `None`, so what follows arrives live.
    pub async fn next_missed(&self, replay: &mut Replay) -> Result<Option<(Message, User)>> {
        while replay.pending.is_empty() {
            let batch = self.replay_round(replay).await?;
            if batch.is_empty() {
                return Ok(None);
            }
            let authors = self.authors_of(&batch).await?;
            replay
                .pending
                .extend(batch.into_iter().filter_map(|message| {
                    let author = authors.get(&message.author_id)?.clone();
                    Some((message, author))
                }));
        }
        Ok(replay.pending.pop_front())
    }

    async fn replay_round(&self, replay: &mut Replay) -> Result<Vec<Message>> {
        let room = REPLAY_MAX.saturating_sub(replay.sent);
        if replay.rounds >= REPLAY_ROUNDS || room == 0 {
            return Ok(Vec::new());
        }
        let first = replay.rounds == 0;
        replay.rounds += 1;
        let range = doc! { "$gt": replay.after };
        let batch = self
            .messages_in(&replay.chat, range, !first, 0, room as i64)
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
    fn previews_cut_long_content_on_a_char_boundary() {
        assert_eq!(preview("hi"), "hi");
        let long = "é".repeat(150);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), 101);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn content_must_be_present_and_bounded() {
        assert!(valid_content("hello").is_ok());
        assert!(valid_content("  \n").is_err());
        assert!(valid_content("\0\u{1}\t").is_err());
        assert!(valid_content(&"x".repeat(CONTENT_MAX_CHARS)).is_ok());
        assert!(valid_content(&"x".repeat(CONTENT_MAX_CHARS + 1)).is_err());
    }
}
