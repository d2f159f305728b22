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
        let roster = self.roster(&membership.participants).await;
        self.publish(ChatEvent::ParticipantsJoined {
            chat: membership.chat,
            participants: membership.participants,
            joined,
            by: by.clone(),
            roster,
            origin,
        })
        .await;
    }

    /// The users of these participants, in their order. The events that carry them are sent
    /// whatever happens here: a failed read is logged and leaves the list empty.
    async fn roster(&self, participants: &[Participant]) -> Vec<User> {
        let ids: Vec<ObjectId> = participants.iter().map(|p| p.user_id).collect();
        match self.users_by_id(&ids).await {
            Ok(users) => ids.iter().filter_map(|id| users.get(id).cloned()).collect(),
            Err(e) => {
                tracing::error!("could not read the members of a chat for its event: {e}");
                Vec::new()
            }
        }
    }

    /// Add `user` to a group on the word of `by`, one of its members. In a group with open
    /// invites any member adds anyone; in others, as `add_to_group`. Someone already in stays
    /// in, and that is no error.
    pub async fn invite(&self, by: &User, id: ObjectId, user: &User) -> Result<()> {
        let membership = self.membership(id).await?;
        membership.me(by)?;
        if !membership.group()?.open_invites {
            if user.id != by.id {
                self.add_to_group(by, id, &[user.id]).await?;
            }
            return Ok(());
        }
        if membership.of(&user.id).is_some() {
            return Ok(());
        }
        let newcomer = Participant::new(id, user.id, false);
        let added = self
            .add_participants(&membership.chat, std::slice::from_ref(&newcomer))
            .await?;
        if !added.is_empty() {
            self.announce_joined(membership, added, by, None).await;
        }
        Ok(())
    }

    /// The user leaves a chat. A one-to-one chat goes with them, as does a group with open
    /// invites once fewer than two remain, each with everything in it; from other groups they
    /// leave as `remove_participant` says.
    pub async fn leave_chat(&self, user: &User, id: ObjectId, origin: Origin) -> Result<()> {
        let membership = self.membership(id).await?;
        let me = membership.me(user)?.clone();
        let open = match &membership.chat.group {
            None => {
                self.leave_and_erase(membership, me, user, origin).await?;
                return Ok(());
            }
            Some(group) => group.open_invites,
        };
        if !open {
            self.remove_participant(user, id, me.user_id, origin)
                .await?;
            return Ok(());
        }
        // A group needs two members: the last-but-one leaving ends it.
        if membership.participants.len() <= 2 {
            self.leave_and_erase(membership, me, user, origin).await?;
            return Ok(());
        }
        self.drop_participant(membership, me, user, origin).await?;
        Ok(())
    }

    /// The one leaving a chat that cannot go on without them: once it is deleted, the others
    /// hear that they left, and who remains, then that the chat is gone.
    async fn leave_and_erase(
        &self,
        membership: Membership,
        me: Participant,
        user: &User,
        origin: Origin,
    ) -> Result<()> {
        self.erase(&membership, user).await?;
        let members = membership.member_ids();
        let chat = membership.chat.clone();
        self.announce_removal(membership, me, user, origin.clone())
            .await;
        self.publish(ChatEvent::ChatDeleted {
            members,
            chat,
            origin,
        })
        .await;
        Ok(())
    }

    /// Tell the chat's members, `removed` included, that `removed` is out, and who remains:
    /// the membership as it is now.
    async fn announce_removal(
        &self,
        mut membership: Membership,
        removed: Participant,
        by: &User,
        origin: Origin,
    ) -> Membership {
        let members = membership.member_ids();
        membership.participants.retain(|p| p.id != removed.id);
        let roster = self.roster(&membership.participants).await;
        self.publish(ChatEvent::ParticipantRemoved {
            members,
            chat: membership.chat.clone(),
            removed,
            by: by.clone(),
            roster,
            origin,
        })
        .await;
        membership
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
        self.drop_participant(membership, removed.clone(), user, origin)
            .await?;
        Ok(removed)
    }

    /// Take a participant out of the chat (the rules were checked) and say so; the chat and
    /// everyone still in it.
    async fn drop_participant(
        &self,
        membership: Membership,
        removed: Participant,
        by: &User,
        origin: Origin,
    ) -> Result<Membership> {
        let deleted = self
            .store
            .participants
            .delete_one(doc! { "_id": removed.id })
            .await?;
        self.forget_chat(&membership.chat).await;
        if deleted.deleted_count == 0 {
            return Err(Error::NotFound("participant"));
        }
        Ok(self.announce_removal(membership, removed, by, origin).await)
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
