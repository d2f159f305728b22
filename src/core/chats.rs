//! Chats of every kind: loading one and who is in it, the members every message is checked
//! against (cached), and read marks.

use std::sync::Arc;

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;

use super::Core;
use crate::error::{Error, Result};
use crate::store::{Chat, GroupDetails, Participant, User};

/// Who is in a chat, as every message checks it.
#[derive(Debug)]
pub struct Members {
    pub ids: Arc<[ObjectId]>,
    pub admins: Vec<ObjectId>,
}

/// A chat and everyone in it.
#[derive(Debug, Clone)]
pub struct Membership {
    pub chat: Chat,
    pub participants: Vec<Participant>,
}

impl Membership {
    pub fn of(&self, user: &ObjectId) -> Option<&Participant> {
        self.participants.iter().find(|p| p.user_id == *user)
    }

    /// The caller's place in the chat; outsiders are refused.
    pub fn me(&self, user: &User) -> Result<&Participant> {
        self.of(&user.id)
            .ok_or_else(|| Error::Forbidden("you are not a participant of this chat".into()))
    }

    pub fn admin(&self, user: &User) -> Result<&Participant> {
        let me = self.me(user)?;
        if !me.is_admin {
            return Err(Error::Forbidden(
                "only an admin of this chat may do this".into(),
            ));
        }
        Ok(me)
    }

    pub fn group(&self) -> Result<&GroupDetails> {
        self.chat
            .group
            .as_ref()
            .ok_or_else(|| Error::invalid("this is not a group chat"))
    }

    /// A participant named by their participant id or their user id.
    pub fn find(&self, reference: &ObjectId) -> Result<&Participant> {
        self.participants
            .iter()
            .find(|p| p.id == *reference || p.user_id == *reference)
            .ok_or(Error::NotFound("participant"))
    }

    pub fn member_ids(&self) -> Vec<ObjectId> {
        self.participants.iter().map(|p| p.user_id).collect()
    }

    pub(super) fn other_admins(&self, user: &ObjectId) -> usize {
        self.participants
            .iter()
            .filter(|p| p.is_admin && p.user_id != *user)
            .count()
    }
}

impl Core {
    pub async fn chat_by_id(&self, id: ObjectId) -> Result<Chat> {
        // Its last activity, gathering, is in place before it is read.
        self.store.chat_activity.settled_for(id).await?;
        self.store
            .chats
            .find_one(doc! { "_id": id })
            .await?
            .ok_or(Error::NotFound("chat"))
    }

    pub async fn membership(&self, id: ObjectId) -> Result<Membership> {
        let chat = self.chat_by_id(id).await?;
        let participants = self.participants_of(&chat).await?;
        Ok(Membership { chat, participants })
    }

    /// A chat the user belongs to, with everyone in it.
    pub async fn member_view(&self, user: &User, id: ObjectId) -> Result<Membership> {
        let membership = self.membership(id).await?;
        membership.me(user)?;
        Ok(membership)
    }

    /// Add participants who are not in the chat yet; returns those who were added.
    pub(super) async fn add_participants(
        &self,
        chat: &Chat,
        participants: &[Participant],
    ) -> Result<Vec<Participant>> {
        let mut added = Vec::new();
        // What was said before someone joined is neither unread nor owed to them.
        let newest = self.newest_seq(chat).await?;
        for participant in participants {
            let mut fields = crate::store::to_document(&Participant {
                last_read_seq: newest,
                delivered_seq: newest,
                ..participant.clone()
            })?;
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

    /// Every chat the user belongs to, oldest first, each with everyone in it.
    pub async fn chats_with_members(&self, user: &User) -> Result<Vec<(Chat, Vec<User>)>> {
        let ids = self.chat_ids_of(user).await?;
        let chats: Vec<Chat> = self
            .store
            .chats
            .find(doc! { "_id": { "$in": &ids } })
            .sort(doc! { "num": 1 })
            .await?
            .try_collect()
            .await?;
        let participants = self
            .participants_where(doc! { "chat_id": { "$in": &ids } })
            .await?;
        let user_ids: Vec<ObjectId> = participants.iter().map(|p| p.user_id).collect();
        let users = self.users_by_id(&user_ids).await?;
        Ok(chats
            .into_iter()
            .map(|chat| {
                let members = participants
                    .iter()
                    .filter(|p| p.chat_id == chat.id)
                    .filter_map(|p| users.get(&p.user_id).cloned())
                    .collect();
                (chat, members)
            })
            .collect())
    }

    /// Ids of every chat the user belongs to.
    pub async fn chat_ids_of(&self, user: &User) -> Result<Vec<ObjectId>> {
        let participants = self.participants_where(doc! { "user_id": user.id }).await?;
        Ok(participants.into_iter().map(|p| p.chat_id).collect())
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

    /// The chat with this numeric id as it is now (from the cache its changes drop).
    pub(super) async fn chat_by_num(&self, num: i64) -> Result<Chat> {
        if let Some(chat) = self.chats_by_num.get(&num) {
            return Ok(chat);
        }
        let chat = self.store.chats.find_one(doc! { "num": num }).await?;
        let chat = chat.ok_or(Error::NotFound("chat"))?;
        self.chats_by_num.insert(num, chat.clone());
        Ok(chat)
    }

    /// The chat with this numeric id, if the user belongs to it. Chats the user is not in are
    /// reported as not found, so their existence does not leak.
    pub async fn member_chat(&self, user: &User, num: i64) -> Result<Chat> {
        let chat = self.chat_by_num(num).await?;
        if self.member_ids(&chat).await?.contains(&user.id) {
            Ok(chat)
        } else {
            Err(Error::NotFound("chat"))
        }
    }

    pub(super) async fn participants_where(
        &self,
        filter: bson::Document,
    ) -> Result<Vec<Participant>> {
        let cursor = self.store.participants.find(filter).await?;
        Ok(cursor.try_collect().await?)
    }

    /// Who is in the chat, and who runs it (cached).
    pub async fn members(&self, chat: &Chat) -> Result<Arc<Members>> {
        if let Some(members) = self.members.get(&chat.id) {
            return Ok(members);
        }
        let participants = self.participants_where(doc! { "chat_id": chat.id }).await?;
        let members = Arc::new(Members {
            ids: participants.iter().map(|p| p.user_id).collect(),
            admins: participants
                .iter()
                .filter(|p| p.is_admin)
                .map(|p| p.user_id)
                .collect(),
        });
        self.members.insert(chat.id, members.clone());
        Ok(members)
    }

    pub async fn member_ids(&self, chat: &Chat) -> Result<Arc<[ObjectId]>> {
        Ok(self.members(chat).await?.ids.clone())
    }

    /// Mark everything in the chat read for the user.
    pub async fn mark_read(&self, user: &User, id: ObjectId) -> Result<Participant> {
        let membership = self.member_view(user, id).await?;
        let me = membership.me(user)?.clone();
        let now = DateTime::now();
        let newest = self.newest_seq(&membership.chat).await?;
        self.store
            .participants
            .update_one(
                doc! { "_id": me.id },
                doc! { "$set": { "last_read_at": now }, "$max": { "last_read_seq": newest } },
            )
            .await?;
        self.refresh_totals(vec![user.id]);
        Ok(Participant {
            last_read_at: Some(now),
            last_read_seq: newest.max(me.last_read_seq),
            ..me
        })
    }
}
