//! Asking to join a restricted group, and an admin's answer.

use bson::oid::ObjectId;
use bson::{DateTime, doc};

use super::Core;
use crate::error::{Error, Result};
use crate::store::{Answer, InsertNew, JoinRequest, Participant, User};

impl Core {
    /// Ask to join a restricted group; one pending request per user and chat.
    pub async fn request_to_join(&self, user: &User, id: ObjectId) -> Result<JoinRequest> {
        let membership = self.membership(id).await?;
        if !membership.group()?.restricted {
            return Err(Error::invalid("this group is open: join it directly"));
        }
        if membership.of(&user.id).is_some() {
            return Err(Error::Conflict(
                "you are already a participant of this chat".into(),
            ));
        }
        let filter = doc! { "chat_id": id, "user_id": user.id, "status": "pending" };
        if self.store.join_requests.find_one(filter).await?.is_some() {
            return Err(Error::Conflict(
                "you already asked to join this chat".into(),
            ));
        }
        let request = JoinRequest {
            id: ObjectId::new(),
            user_id: user.id,
            chat_id: id,
            status: Answer::Pending,
            created_at: DateTime::now(),
        };
        self.store
            .join_requests
            .insert_new(&request, request.id)
            .await?;
        Ok(request)
    }

    /// An admin accepts (adding the user) or rejects a pending join request.
    pub async fn answer_join_request(
        &self,
        admin: &User,
        id: ObjectId,
        request: ObjectId,
        answer: Answer,
    ) -> Result<JoinRequest> {
        let status = answer.verdict()?;
        let membership = self.membership(id).await?;
        membership.admin(admin)?;
        let request = self
            .store
            .join_requests
            .find_one_and_update(
                doc! { "_id": request, "chat_id": id, "status": "pending" },
                doc! { "$set": { "status": status } },
            )
            .await?
            .ok_or(Error::NotFound("pending request"))?;
        if answer == Answer::Accepted && membership.of(&request.user_id).is_none() {
            let participant = Participant::new(id, request.user_id, false);
            let added = self
                .add_participants(&membership.chat, &[participant])
                .await?;
            self.announce_joined(membership, added, admin, None).await;
        }
        Ok(JoinRequest {
            status: answer,
            ..request
        })
    }
}
