//! Chats and who belongs to them.

use std::sync::Arc;

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;

use super::{ChatEvent, Core};
use crate::error::{Error, Result, is_duplicate_key};
use crate::store::{Chat, ChatKind, Participant, User};

/// The outcome of opening a one-to-one chat.
#[derive(Debug)]
pub enum Opened {
    Created(Chat),
    /// A one-to-one chat between these users already existed.
    Existing(Chat),
}

fn pair_key(a: &ObjectId, b: &ObjectId) -> String {
    let (a, b) = if a.bytes() <= b.bytes() {
        (a, b)
    } else {
        (b, a)
    };
    format!("{}:{}", a.to_hex(), b.to_hex())
}

impl Core {
    /// The one-to-one chat between `creator` and `other`: created, or the one that exists.
    pub async fn open_direct(&self, creator: &User, other: &User) -> Result<Opened> {
        if creator.id == other.id {
            return Err(Error::invalid("you cannot open a chat with yourself"));
        }
        let key = pair_key(&creator.id, &other.id);
        let chat = Chat {
            id: ObjectId::new(),
            num: self.store.ids.next("chats").await?,
            kind: ChatKind::Direct,
            pair_key: Some(key.clone()),
            created_by: Some(creator.id),
            created_at: DateTime::now(),
        };
        let opened = match self.store.chats.insert_one(&chat).await {
            Ok(_) => Opened::Created(chat),
            Err(e) if is_duplicate_key(&e) => {
                let existing = self.store.chats.find_one(doc! { "pair_key": &key }).await?;
                Opened::Existing(existing.ok_or(Error::NotFound("chat"))?)
            }
            Err(e) => return Err(e.into()),
        };
        // Idempotent, so a creation cut short by a crash is completed by the next attempt.
        let chat = match &opened {
            Opened::Created(chat) | Opened::Existing(chat) => chat,
        };
        self.add_participants(chat, &[creator.id, other.id]).await?;
        if let Opened::Created(chat) = &opened {
            let event = ChatEvent::ChatCreated {
                chat: chat.clone(),
                creator: creator.clone(),
                members: vec![creator.clone(), other.clone()],
            };
            self.publish(event).await;
        }
        Ok(opened)
    }

    async fn add_participants(&self, chat: &Chat, users: &[ObjectId]) -> Result<()> {
        for user in users {
            let participant = Participant {
                id: ObjectId::new(),
                chat_id: chat.id,
                user_id: *user,
                joined_at: DateTime::now(),
            };
            let mut fields =
                bson::serialize_to_document(&participant).map_err(|e| Error::Internal(e.into()))?;
            fields.remove("chat_id");
            fields.remove("user_id");
            self.store
                .participants
                .update_one(
                    doc! { "chat_id": chat.id, "user_id": user },
                    doc! { "$setOnInsert": fields },
                )
                .upsert(true)
                .await?;
        }
        self.members.remove(&chat.id);
        Ok(())
    }

    /// The user's welcome chat with the system user, opened on first ask.
    pub async fn welcome_chat(&self, user: &User) -> Result<Chat> {
        match self.open_direct(user, self.system_user()).await? {
            Opened::Created(chat) | Opened::Existing(chat) => Ok(chat),
        }
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

    async fn participants_where(&self, filter: bson::Document) -> Result<Vec<Participant>> {
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
