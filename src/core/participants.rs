//! Who is in a group: joining, being added and removed, admin access, and answers to
//! participants of a group's meetup.

use bson::doc;
use bson::oid::ObjectId;

use super::chats::Membership;
use super::events::Origin;
use super::scores::JOIN_GROUP_CHAT;
use super::{ChatEvent, Core};
use crate::error::{Error, Result};
use crate::store::{Answer, Participant, User};

impl Core {
    /// The user joins an open group by themselves, and is credited for it.
    pub async fn join_group(
        &self,
        user: &User,
        id: ObjectId,
        origin: Origin,
    ) -> Result<Participant> {
        let membership = self.membership(id).await?;
        let group = membership.group()?;
        if group.restricted {
            return Err(Error::Forbidden(
                "this group is restricted: ask an admin to add you".into(),
            ));
        }
        if membership.of(&user.id).is_some() {
            return Err(Error::Conflict(
                "you are already a participant of this chat".into(),
            ));
        }
        let mut participant = Participant::new(id, user.id, false);
        if self.meetup_of(&membership.chat).await?.is_some() {
            participant.status = Some(Answer::Pending);
        }
        let added = self
            .add_participants(&membership.chat, std::slice::from_ref(&participant))
            .await?;
        if added.is_empty() {
            return Err(Error::Conflict(
                "you are already a participant of this chat".into(),
            ));
        }
        self.announce_joined(membership, added, user, origin).await;
        self.award(user, JOIN_GROUP_CHAT).await?;
        Ok(participant)
    }

    /// An admin adds people they follow or are connected with; those already in are skipped.
    pub async fn add_to_group(
        &self,
        admin: &User,
        id: ObjectId,
        users: &[ObjectId],
    ) -> Result<Vec<Participant>> {
        let membership = self.membership(id).await?;
        membership.admin(admin)?;
        membership.group()?;
        if users.is_empty() {
            return Err(Error::invalid("participants must list at least one user"));
        }
        let users = self.reachable_users(admin, users).await?;
        let newcomers: Vec<Participant> = users
            .iter()
            .filter(|u| membership.of(&u.id).is_none())
            .map(|u| Participant::new(id, u.id, false))
            .collect();
        let added = self.add_participants(&membership.chat, &newcomers).await?;
        if !added.is_empty() {
            self.announce_joined(membership, added.clone(), admin, None)
                .await;
        }
        Ok(added)
    }

    pub(super) async fn announce_joined(
        &self,
        mut membership: Membership,
        joined: Vec<Participant>,
        by: &User,
        origin: Origin,
    ) {
        membership.participants.extend(joined.iter().cloned());
        self.publish(ChatEvent::ParticipantsJoined {
            chat: membership.chat,
            participants: membership.participants,
            joined,
            by: by.clone(),
            origin,
        })
        .await;
    }

    /// Remove a participant: oneself, or anyone when an admin. An admin always remains.
    pub async fn remove_participant(
        &self,
        user: &User,
        id: ObjectId,
        reference: ObjectId,
        origin: Origin,
    ) -> Result<Participant> {
        let membership = self.membership(id).await?;
        let me = membership.me(user)?;
        membership.group()?;
        let removed = membership.find(&reference)?.clone();
        if removed.user_id != user.id && !me.is_admin {
            return Err(Error::Forbidden(
                "only an admin may remove other participants".into(),
            ));
        }
        if removed.is_admin && membership.other_admins(&removed.user_id) == 0 {
            return Err(Error::Conflict(
                "at least one admin must remain: make someone else an admin first".into(),
            ));
        }
        let deleted = self
            .store
            .participants
            .delete_one(doc! { "_id": removed.id })
            .await?;
        self.forget_chat(&membership.chat).await;
        if deleted.deleted_count == 0 {
            return Err(Error::NotFound("participant"));
        }
        self.publish(ChatEvent::ParticipantRemoved {
            members: membership.member_ids(),
            chat: membership.chat,
            removed: removed.clone(),
            by: user.clone(),
            origin,
        })
        .await;
        Ok(removed)
    }

    /// Grant or remove a participant's admin access. Admins cannot demote themselves.
    pub async fn set_admin(
        &self,
        user: &User,
        id: ObjectId,
        reference: ObjectId,
        admin: bool,
    ) -> Result<Participant> {
        let membership = self.membership(id).await?;
        membership.admin(user)?;
        membership.group()?;
        let target = membership.find(&reference)?.clone();
        if admin && target.is_admin {
            return Err(Error::Conflict(
                "this participant is already an admin".into(),
            ));
        }
        if !admin {
            if target.user_id == user.id {
                return Err(Error::Forbidden(
                    "you cannot remove your own admin access".into(),
                ));
            }
            if !target.is_admin {
                return Err(Error::Conflict("this participant is not an admin".into()));
            }
            if membership.other_admins(&target.user_id) == 0 {
                return Err(Error::Conflict("at least one admin must remain".into()));
            }
        }
        self.store
            .participants
            .update_one(
                doc! { "_id": target.id },
                doc! { "$set": { "is_admin": admin } },
            )
            .await?;
        self.forget_chat(&membership.chat).await;
        let participant = Participant {
            is_admin: admin,
            ..target
        };
        self.publish(ChatEvent::AdminAccessChanged {
            chat: membership.chat,
            participant: participant.clone(),
            by: user.clone(),
        })
        .await;
        Ok(participant)
    }

    /// An admin accepts or rejects a participant of the chat's event while it is active.
    pub async fn answer_participant(
        &self,
        user: &User,
        id: ObjectId,
        reference: ObjectId,
        answer: Answer,
    ) -> Result<Participant> {
        let status = answer.verdict()?;
        let membership = self.membership(id).await?;
        membership.me(user)?;
        membership.group()?;
        let target = membership.find(&reference)?.clone();
        let event = self
            .meetup_of(&membership.chat)
            .await?
            .ok_or_else(|| Error::invalid("this chat has no event"))?;
        membership.admin(user)?;
        if !event.is_active() {
            return Err(Error::invalid("the event is over"));
        }
        self.store
            .participants
            .update_one(
                doc! { "_id": target.id },
                doc! { "$set": { "status": status } },
            )
            .await?;
        let participant = Participant {
            status: Some(answer),
            ..target
        };
        self.publish(ChatEvent::ParticipantAnswered {
            chat: membership.chat,
            participant: participant.clone(),
            by: user.clone(),
        })
        .await;
        Ok(participant)
    }
}
