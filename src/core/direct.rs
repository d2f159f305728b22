//! One-to-one chats: one per pair of users, opened by either (unless one blocked the other),
//! from a connection or not; the welcome chat with the system user is one of them.

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;

use super::events::Origin;
use super::{ChatEvent, Core};
use crate::error::{Error, Result, UniqueWrite};
use crate::store::{Chat, ChatKind, ChatRequest, InsertNew, Participant, RequestStatus, User};

/// The outcome of opening a one-to-one chat.
#[derive(Debug)]
pub enum Opened {
    Created(Chat),
    /// A one-to-one chat between these users already existed.
    Existing(Chat),
}

pub(super) fn pair_key(a: &ObjectId, b: &ObjectId) -> String {
    let (a, b) = if a.bytes() <= b.bytes() {
        (a, b)
    } else {
        (b, a)
    };
    format!("{}:{}", a.to_hex(), b.to_hex())
}

impl Opened {
    pub fn chat(&self) -> &Chat {
        match self {
            Self::Created(chat) | Self::Existing(chat) => chat,
        }
    }
}

impl Core {
    /// The one-to-one chat between `creator` and `other`: created, or the one that exists.
    /// `meet_me`, when given, must be an accepted connection between the two.
    pub async fn open_direct(
        &self,
        creator: &User,
        other: &User,
        meet_me: Option<ObjectId>,
        origin: Origin,
    ) -> Result<Opened> {
        self.open_direct_chat(creator, other, meet_me, false, origin)
            .await
    }

    /// As `open_direct`; a chat created here is a request of `creator`'s to `other` when
    /// `asked` (an existing chat stays as it is).
    pub(super) async fn open_direct_chat(
        &self,
        creator: &User,
        other: &User,
        meet_me: Option<ObjectId>,
        asked: bool,
        origin: Origin,
    ) -> Result<Opened> {
        if creator.id == other.id {
            return Err(Error::invalid("you cannot open a chat with yourself"));
        }
        if self.blocked_between(&creator.id, &other.id).await? {
            return Err(Error::Forbidden(
                "you cannot open a chat with this user".into(),
            ));
        }
        if let Some(connection) = meet_me {
            self.accepted_connection(connection, &creator.id, &other.id)
                .await?;
        }
        let key = pair_key(&creator.id, &other.id);
        let now = DateTime::now();
        let chat = Chat {
            id: ObjectId::new(),
            num: self.store.ids.next("chats").await?,
            kind: ChatKind::Direct,
            pair_key: Some(key.clone()),
            created_by: Some(creator.id),
            addressee: Some(other.id),
            meet_me,
            group: None,
            request: asked.then_some(ChatRequest {
                from: creator.id,
                to: other.id,
                status: RequestStatus::Pending,
                answered_at: None,
            }),
            tags: Vec::new(),
            created_at: now,
            updated_at: Some(now),
        };
        let opened = match self
            .store
            .chats
            .insert_new(&chat, chat.id)
            .await
            .unless_duplicate()?
        {
            Some(_) => Opened::Created(chat),
            None => {
                let existing = self.store.chats.find_one(doc! { "pair_key": &key }).await?;
                Opened::Existing(existing.ok_or(Error::NotFound("chat"))?)
            }
        };
        // Idempotent, so a creation cut short by a crash is completed by the next attempt.
        let chat = opened.chat();
        let participants = vec![
            Participant::new(chat.id, creator.id, true),
            Participant::new(chat.id, other.id, false),
        ];
        self.add_participants(chat, &participants).await?;
        if let Opened::Created(chat) = &opened {
            let event = ChatEvent::ChatCreated {
                chat: chat.clone(),
                creator: creator.clone(),
                members: vec![creator.clone(), other.clone()],
                // A new chat's participants are exactly the two just inserted.
                participants,
                origin,
            };
            self.publish(event).await;
        }
        Ok(opened)
    }

    /// The one-to-one chat between two users whose connection was accepted, opened if need
    /// be.
    pub async fn open_chat_session(&self, user: &User, other: &User) -> Result<Chat> {
        if other.id == user.id {
            return Err(Error::invalid("you cannot chat with yourself"));
        }
        let connection = self.accepted_connection_between(user, other).await?;
        let opened = self
            .open_direct(user, other, Some(connection.id), None)
            .await?;
        Ok(opened.chat().clone())
    }

    /// The one-to-one chat between two users, if they have one.
    pub async fn direct_chat_between(&self, a: &ObjectId, b: &ObjectId) -> Result<Option<Chat>> {
        let filter = doc! { "pair_key": pair_key(a, b) };
        Ok(self.store.chats.find_one(filter).await?)
    }

    /// The user's welcome chat with the system user, opened on first ask.
    pub async fn welcome_chat(&self, user: &User) -> Result<Chat> {
        let opened = self
            .open_direct(user, self.system_user(), None, None)
            .await?;
        Ok(opened.chat().clone())
    }

    /// The user's one-to-one chats, oldest first.
    pub async fn direct_chats_of(&self, user: &User) -> Result<Vec<Chat>> {
        let ids = self.chat_ids_of(user).await?;
        let filter = doc! { "_id": { "$in": ids }, "kind": "direct" };
        let cursor = self
            .store
            .chats
            .find(filter)
            .sort(doc! { "num": 1 })
            .await?;
        Ok(cursor.try_collect().await?)
    }

    /// For each one-to-one chat given, the member who is not `user`.
    pub async fn direct_partners(
        &self,
        user: &User,
        chats: &[Chat],
    ) -> Result<std::collections::HashMap<ObjectId, User>> {
        let ids: Vec<ObjectId> = chats.iter().map(|c| c.id).collect();
        let filter = doc! { "chat_id": { "$in": ids }, "user_id": { "$ne": user.id } };
        let others: Vec<Participant> = self.participants_where(filter).await?;
        let user_ids: Vec<ObjectId> = others.iter().map(|p| p.user_id).collect();
        let users = self.users_by_id(&user_ids).await?;
        Ok(others
            .into_iter()
            .filter_map(|p| users.get(&p.user_id).map(|u| (p.chat_id, u.clone())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::pair_key;
    use bson::oid::ObjectId;

    #[test]
    fn a_pair_has_one_key_whatever_the_order() {
        let (a, b) = (ObjectId::new(), ObjectId::new());
        assert_eq!(pair_key(&a, &b), pair_key(&b, &a));
        assert_ne!(pair_key(&a, &b), pair_key(&a, &ObjectId::new()));
    }
}
