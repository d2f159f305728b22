//! Reading chats in pages: a user's chats and a chat's files (communities to explore are
//! `communities.rs`'s).

use std::collections::{HashMap, HashSet};

use bson::oid::ObjectId;
use bson::{Document, doc};
use futures::TryStreamExt;
use futures::future::try_join_all;

use super::Core;
use super::chats::Membership;
use crate::error::{Error, Result};
use crate::store::{Chat, ChatFile, FileKind, Message, Participant, User};

/// The largest page any listing returns.
pub const PAGE_MAX: u64 = 100;
pub const SEARCH_MIN_CHARS: usize = 3;
/// The longest search: a name is never longer, and the pattern built from it stays well
/// within the database's limit on regular expressions.
pub const SEARCH_MAX_CHARS: usize = 100;

/// A search as given, trimmed, or an error when it is too long to mean anything.
pub(super) fn bounded_search(search: &str) -> Result<&str> {
    let search = search.trim();
    if search.chars().count() > SEARCH_MAX_CHARS {
        return Err(Error::invalid(format!(
            "search is at most {SEARCH_MAX_CHARS} characters"
        )));
    }
    Ok(search)
}

/// Which items of a listing to read: `limit` of them after the first `skip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub skip: u64,
    pub limit: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ChatFilter {
    pub search: Option<String>,
    /// Only groups (`true`) or only one-to-one chats (`false`).
    pub group: Option<bool>,
    /// Only one-to-one chats opened from a connection.
    pub meet_me_only: bool,
    /// Only one-to-one chats (but the welcome chat) whose request stands so.
    pub requests: Option<Requests>,
}

/// Which one-to-one chats, by where their request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requests {
    /// Active: accepted, or never asked for.
    Active,
    /// Asked of the user, not answered.
    Received,
    /// Asked of the user and declined by them.
    Declined,
}

/// A chat as a list shows it.
#[derive(Debug, Clone)]
pub struct ChatSummary {
    pub membership: Membership,
    pub last_message: Option<Message>,
    pub unread: u64,
}

/// A page of items with the users they mention and the total count.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub users: HashMap<ObjectId, User>,
    pub count: u64,
}

/// Case-insensitive "contains" for user input, with regex syntax taken literally.
pub(super) fn contains(text: &str) -> Document {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    doc! { "$regex": escaped, "$options": "i" }
}

impl Core {
    /// The user's chats, most recently active first.
    pub async fn list_chats(
        &self,
        user: &User,
        filter: &ChatFilter,
        page: Window,
    ) -> Result<Listing<ChatSummary>> {
        let mine = self.chat_ids_of(user).await?;
        let mut query = doc! { "_id": { "$in": &mine } };
        match filter.group {
            Some(true) => query.insert("kind", "group"),
            Some(false) => query.insert("kind", "direct"),
            None => None,
        };
        if filter.meet_me_only && filter.group != Some(true) {
            query.insert("kind", "direct");
            query.insert("meet_me", doc! { "$exists": true });
        }
        if let Some(requests) = filter.requests {
            query.insert("kind", "direct");
            let welcome = super::direct::pair_key(&user.id, &self.system_user().id);
            query.insert("pair_key", doc! { "$ne": welcome });
            match requests {
                Requests::Active => {
                    query.insert("request.status", doc! { "$nin": ["pending", "declined"] })
                }
                Requests::Received => {
                    query.insert("request.to", user.id);
                    query.insert("request.status", "pending")
                }
                Requests::Declined => {
                    query.insert("request.to", user.id);
                    query.insert("request.status", "declined")
                }
            };
        }
        let search = filter.search.as_deref().map(bounded_search).transpose()?;
        if let Some(search) = search.filter(|s| !s.is_empty()) {
            // Groups match on their name; one-to-one chats on the other person's username.
            let pattern = contains(search);
            let users: Vec<User> = self
                .store
                .users
                .find(doc! { "username": pattern.clone(), "_id": { "$ne": user.id } })
                .limit(1000)
                .await?
                .try_collect()
                .await?;
            let user_ids: Vec<ObjectId> = users.iter().map(|u| u.id).collect();
            let partners = self
                .participants_where(
                    doc! { "chat_id": { "$in": &mine }, "user_id": { "$in": user_ids } },
                )
                .await?;
            let direct: Vec<ObjectId> = partners.iter().map(|p| p.chat_id).collect();
            query.insert(
                "$or",
                vec![
                    doc! { "group.name": pattern },
                    doc! { "kind": "direct", "_id": { "$in": direct } },
                ],
            );
        }
        let (count, chats) = self.chats_page(query, page).await?;
        let items = try_join_all(chats.into_iter().map(|m| self.summarise(user, m))).await?;
        let users = self
            .users_in(
                items
                    .iter()
                    .map(|s| (&s.membership, s.last_message.as_ref())),
            )
            .await?;
        Ok(Listing {
            items,
            users,
            count,
        })
    }

    /// One chat the user belongs to, as a list shows it.
    pub async fn chat_summary(
        &self,
        user: &User,
        id: ObjectId,
    ) -> Result<(ChatSummary, HashMap<ObjectId, User>)> {
        let membership = self.member_view(user, id).await?;
        let summary = self.summarise(user, membership).await?;
        let users = self
            .users_in(std::iter::once((
                &summary.membership,
                summary.last_message.as_ref(),
            )))
            .await?;
        Ok((summary, users))
    }

    async fn summarise(&self, user: &User, membership: Membership) -> Result<ChatSummary> {
        let chat_id = membership.chat.id;
        let last_message = self
            .store
            .messages
            .find_one(doc! { "chat_id": chat_id })
            .sort(doc! { "chat_id": 1, "seq": -1 })
            .await?;
        let unread = self.unread(user, &membership).await?;
        Ok(ChatSummary {
            membership,
            last_message,
            unread,
        })
    }

    /// Messages of others since the user last read the chat; none for outsiders.
    pub(super) async fn unread(&self, user: &User, membership: &Membership) -> Result<u64> {
        let Some(me) = membership.of(&user.id) else {
            return Ok(0);
        };
        let counts = self.unread_in(user, std::slice::from_ref(me)).await?;
        Ok(counts.get(&membership.chat.id).copied().unwrap_or_default())
    }

    /// For each of the user's participations, how many messages of others came after their
    /// read mark: one query, walking only the unread part of each chat's index.
    pub(super) async fn unread_in(
        &self,
        user: &User,
        mine: &[Participant],
    ) -> Result<HashMap<ObjectId, u64>> {
        if mine.is_empty() {
            return Ok(HashMap::new());
        }
        let after_marks: Vec<Document> = mine
            .iter()
            .map(|p| doc! { "chat_id": p.chat_id, "seq": { "$gt": p.last_read_seq } })
            .collect();
        let pipeline = [
            doc! { "$match": { "$or": after_marks, "author_id": { "$ne": user.id } } },
            doc! { "$group": { "_id": "$chat_id", "unread": { "$sum": 1 } } },
        ];
        let mut counted = self.store.messages.aggregate(pipeline).await?;
        let mut unread = HashMap::new();
        while let Some(row) = counted.try_next().await? {
            let (Ok(chat), Some(n)) = (row.get_object_id("_id"), row.get("unread")) else {
                continue;
            };
            let n = n
                .as_i64()
                .or_else(|| n.as_i32().map(i64::from))
                .unwrap_or(0);
            unread.insert(chat, n.max(0) as u64);
        }
        Ok(unread)
    }

    /// A page of chats matching `query`, most recently active first, with everyone in them,
    /// and how many match in all.
    pub(super) async fn chats_page(
        &self,
        query: Document,
        page: Window,
    ) -> Result<(u64, Vec<Membership>)> {
        // Activity this node has seen is in place before the list is sorted by it.
        self.store.chat_activity.settled().await?;
        let count = self.store.chats.count_documents(query.clone()).await?;
        let chats: Vec<Chat> = self
            .store
            .chats
            .find(query)
            .sort(doc! { "updated_at": -1, "_id": -1 })
            .skip(page.skip)
            .limit(page.limit as i64)
            .await?
            .try_collect()
            .await?;
        let ids: Vec<ObjectId> = chats.iter().map(|c| c.id).collect();
        let mut participants = self.participants_by_chat(&ids).await?;
        let memberships = chats
            .into_iter()
            .map(|chat| Membership {
                participants: participants.remove(&chat.id).unwrap_or_default(),
                chat,
            })
            .collect();
        Ok((count, memberships))
    }

    async fn participants_by_chat(
        &self,
        chats: &[ObjectId],
    ) -> Result<HashMap<ObjectId, Vec<Participant>>> {
        let all: Vec<Participant> = self
            .store
            .participants
            .find(doc! { "chat_id": { "$in": chats } })
            .sort(doc! { "joined_at": 1, "_id": 1 })
            .await?
            .try_collect()
            .await?;
        let mut by_chat: HashMap<ObjectId, Vec<Participant>> = HashMap::new();
        for participant in all {
            by_chat
                .entry(participant.chat_id)
                .or_default()
                .push(participant);
        }
        Ok(by_chat)
    }

    /// Every user a page mentions: creators, addressees, participants, message authors.
    async fn users_in<'a>(
        &self,
        pages: impl Iterator<Item = (&'a Membership, Option<&'a Message>)>,
    ) -> Result<HashMap<ObjectId, User>> {
        let mut ids = HashSet::new();
        for (membership, last) in pages {
            ids.extend(membership.chat.created_by);
            ids.extend(membership.chat.addressee);
            ids.extend(membership.participants.iter().map(|p| p.user_id));
            ids.extend(last.map(|m| m.author_id));
        }
        self.users_by_id(&ids.into_iter().collect::<Vec<_>>()).await
    }

    /// A chat's files of one kind and tag, newest first.
    pub async fn chat_files(
        &self,
        user: &User,
        id: ObjectId,
        kind: FileKind,
        tag: &str,
        page: Window,
    ) -> Result<Listing<ChatFile>> {
        self.member_view(user, id).await?;
        let kind = crate::store::to_bson(&kind)?;
        let filter = doc! { "chat_id": id, "kind": kind, "tag": tag };
        let count = self.store.files.count_documents(filter.clone()).await?;
        let items = self
            .store
            .files
            .find(filter)
            .sort(doc! { "at": -1, "_id": -1 })
            .skip(page.skip)
            .limit(page.limit as i64)
            .await?
            .try_collect()
            .await?;
        Ok(Listing {
            items,
            users: HashMap::new(),
            count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_take_regex_syntax_literally() {
        assert_eq!(
            contains("a.b*(c)"),
            doc! { "$regex": "a\\.b\\*\\(c\\)", "$options": "i" }
        );
    }
}
