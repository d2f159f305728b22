//! Reading a chat's history: pages of it, and replaying what a reconnecting client missed.

use std::collections::{HashMap, HashSet, VecDeque};

use bson::doc;
use bson::oid::ObjectId;
use futures::TryStreamExt;

use super::Core;
use super::sequence::Sequence;
use crate::error::Result;
use crate::store::{Chat, Message, User};

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
    /// Leave out this many of the newest first (paging by count).
    pub skip: u64,
    pub limit: i64,
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
    pub async fn authors_of(&self, messages: &[Message]) -> Result<HashMap<ObjectId, User>> {
        let ids: HashSet<ObjectId> = messages.iter().map(|m| m.author_id).collect();
        self.users_by_id(&ids.into_iter().collect::<Vec<_>>()).await
    }
}
