//! Chats and who belongs to them.

use std::sync::Arc;

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;

use super::events::Origin;
use super::{ChatEvent, Core};
use crate::error::{Error, Result, UniqueWrite};
use crate::store::{Chat, ChatKind, Participant, Tag, User};

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

/// Tags every new chat starts with, for sorting its files.
pub fn default_tags() -> Vec<Tag> {
    [("exams", "Exams"), ("lectures", "Lectures & Summaries")]
        .into_iter()
        .map(|(tag, label)| Tag {
            tag: tag.into(),
            label: label.into(),
        })
        .collect()
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
            tags: default_tags(),
            created_at: now,
            updated_at: Some(now),
        };
        let opened = match self
            .store
            .chats
            .insert_one(&chat)
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

    /// The one-to-one chat between two users whose connection was accepted (a hooks "chat
    /// session"), opened if need be.
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

    /// Add participants who are not in the chat yet; returns those who were added.
    pub(super) async fn add_participants(
        &self,
        chat: &Chat,
        participants: &[Participant],
    ) -> Result<Vec<Participant>> {
        let mut added = Vec::new();
        for participant in participants {
            let mut fields = crate::store::to_document(participant)?;
            fields.remove("chat_id");
            fields.remove("user_id");
            let result = self
                .store
                .participants
                .update_one(
                    doc! { "chat_id": chat.id, "user_id": participant.user_id },
                    doc! { "$setOnInsert": fields },
                )
                .upsert(true)
                .await?;
            if result.upserted_id.is_some() {
                added.push(participant.clone());
            }
        }
        if !added.is_empty() {
            self.forget_chat(chat).await;
        }
        Ok(added)
    }

    /// Every participant of the chat, earliest first.
    pub async fn participants_of(&self, chat: &Chat) -> Result<Vec<Participant>> {
        let cursor = self
            .store
            .participants
            .find(doc! { "chat_id": chat.id })
            .sort(doc! { "joined_at": 1, "_id": 1 })
            .await?;
        Ok(cursor.try_collect().await?)
    }

    /// The user's welcome chat with the system user, opened on first ask.
    pub async fn welcome_chat(&self, user: &User) -> Result<Chat> {
        let opened = self
            .open_direct(user, self.system_user(), None, None)
            .await?;
        Ok(opened.chat().clone())
    }

    /// Ids of every chat the user belongs to.
    pub async fn chat_ids_of(&self, user: &User) -> Result<Vec<ObjectId>> {
        let participants = self.participants_where(doc! { "user_id": user.id }).await?;
        Ok(participants.into_iter().map(|p| p.chat_id).collect())
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

    /// Of the chats with these numeric ids, those the user belongs to.
    pub async fn member_chats_by_num(&self, user: &User, nums: &[i64]) -> Result<Vec<Chat>> {
        let cursor = self
            .store
            .chats
            .find(doc! { "num": { "$in": nums } })
            .await?;
        let chats: Vec<Chat> = cursor.try_collect().await?;
        let ids: Vec<ObjectId> = chats.iter().map(|c| c.id).collect();
        let filter = doc! { "user_id": user.id, "chat_id": { "$in": ids } };
        let member_of: Vec<Participant> = self.participants_where(filter).await?;
        Ok(chats
            .into_iter()
            .filter(|c| member_of.iter().any(|p| p.chat_id == c.id))
            .collect())
    }

    /// The chat with this numeric id, if the user belongs to it. Chats the user is not in are
    /// reported as not found, so their existence does not leak.
    pub async fn member_chat(&self, user: &User, num: i64) -> Result<Chat> {
        let chat = match self.chats_by_num.get(&num) {
            Some(chat) => chat,
            None => {
                let chat = self.store.chats.find_one(doc! { "num": num }).await?;
                let chat = chat.ok_or(Error::NotFound("chat"))?;
                self.chats_by_num.insert(num, chat.clone());
                chat
            }
        };
        if self.member_ids(&chat).await?.contains(&user.id) {
            Ok(chat)
        } else {
            Err(Error::NotFound("chat"))
        }
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

    pub(super) async fn participants_where(
        &self,
        filter: bson::Document,
    ) -> Result<Vec<Participant>> {
        let cursor = self.store.participants.find(filter).await?;
        Ok(cursor.try_collect().await?)
    }

    pub async fn member_ids(&self, chat: &Chat) -> Result<Arc<[ObjectId]>> {
        if let Some(members) = self.members.get(&chat.id) {
            return Ok(members);
        }
        let participants = self.participants_where(doc! { "chat_id": chat.id }).await?;
        let members: Arc<[ObjectId]> = participants.into_iter().map(|p| p.user_id).collect();
        self.members.insert(chat.id, members.clone());
        Ok(members)
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
