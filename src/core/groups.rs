//! Group chats: creating, changing and deleting them, who is in them, and who runs them.

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;

use super::chats::default_tags;
use super::events::Origin;
use super::scores::JOIN_GROUP_CHAT;
use super::{ChatEvent, Core};
use crate::error::{Error, Result, UniqueWrite};
use crate::store::{
    Answer, Chat, ChatFile, ChatKind, Event, GroupDetails, JoinRequest, Participant, User, to_bson,
};

pub const NAME_MAX_CHARS: usize = 100;
pub const CATEGORY_MAX_CHARS: usize = 50;
/// The largest chat photo accepted.
pub const PHOTO_MAX_BYTES: usize = 5 * 1024 * 1024;
/// In this category a group is always open to everyone.
pub const OPEN_CATEGORY: &str = "Courses";

pub struct NewGroup {
    pub name: String,
    pub category: String,
    pub participants: Vec<ObjectId>,
    pub restricted: bool,
}

/// Changes to a group; `None` leaves a field as it is.
#[derive(Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub category: Option<String>,
    pub restricted: Option<bool>,
    pub allow_public_post: Option<bool>,
    pub photo: Option<Vec<u8>>,
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

    fn other_admins(&self, user: &ObjectId) -> usize {
        self.participants
            .iter()
            .filter(|p| p.is_admin && p.user_id != *user)
            .count()
    }
}

fn valid_text(raw: &str, field: &str, max: usize) -> Result<String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    if text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field} must be at most {max} characters, without control characters"
        )));
    }
    Ok(text.to_owned())
}

/// Courses are open to everyone, whatever the creator asked.
fn restricted_in(category: &str, asked: bool) -> bool {
    asked && category != OPEN_CATEGORY
}

impl Core {
    pub async fn chat_by_id(&self, id: ObjectId) -> Result<Chat> {
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

    pub async fn create_group(
        &self,
        creator: &User,
        new: NewGroup,
        origin: Origin,
    ) -> Result<Membership> {
        let name = valid_text(&new.name, "name", NAME_MAX_CHARS)?;
        let category = valid_text(&new.category, "category", CATEGORY_MAX_CHARS)?;
        let others = self.reachable_users(creator, &new.participants).await?;
        let now = DateTime::now();
        let chat = Chat {
            id: ObjectId::new(),
            num: self.store.ids.next("chats").await?,
            kind: ChatKind::Group,
            pair_key: None,
            created_by: Some(creator.id),
            addressee: None,
            meet_me: None,
            group: Some(GroupDetails {
                restricted: restricted_in(&category, new.restricted),
                name,
                category,
                allow_public_post: true,
                photo: None,
            }),
            tags: default_tags(),
            created_at: now,
            updated_at: Some(now),
        };
        self.store.chats.insert_one(&chat).await?;
        let mut participants: Vec<Participant> = others
            .iter()
            .map(|u| Participant::new(chat.id, u.id, false))
            .collect();
        participants.push(Participant::new(chat.id, creator.id, true));
        self.add_participants(&chat, &participants).await?;
        tracing::info!(chat = %chat.id, creator = %creator.id, members = participants.len(), "group created");
        let mut members = others;
        members.push(creator.clone());
        self.publish(ChatEvent::ChatCreated {
            chat: chat.clone(),
            creator: creator.clone(),
            members,
            participants: participants.clone(),
            origin,
        })
        .await;
        Ok(Membership { chat, participants })
    }

    pub async fn update_group(
        &self,
        user: &User,
        id: ObjectId,
        changes: GroupChanges,
        origin: Origin,
    ) -> Result<Membership> {
        let mut membership = self.membership(id).await?;
        membership.admin(user)?;
        let mut group = membership.group()?.clone();
        if let Some(name) = &changes.name {
            group.name = valid_text(name, "name", NAME_MAX_CHARS)?;
        }
        if let Some(category) = &changes.category {
            group.category = valid_text(category, "category", CATEGORY_MAX_CHARS)?;
        }
        if let Some(restricted) = changes.restricted {
            group.restricted = restricted;
        }
        group.restricted = restricted_in(&group.category, group.restricted);
        if let Some(allow) = changes.allow_public_post {
            group.allow_public_post = allow;
        }
        let changes_photo = changes.photo.is_some();
        let replaced_photo = match changes.photo {
            Some(bytes) => {
                let media = self.media.as_ref().ok_or_else(|| {
                    Error::Unavailable("photo storage is not configured on this server".into())
                })?;
                let prefix = format!("chats/{}", id.to_hex());
                let stored = media.put_image(&prefix, bytes, PHOTO_MAX_BYTES).await?;
                group.photo.replace(stored.url)
            }
            None => None,
        };
        let now = DateTime::now();
        let stored = to_bson(&group)?;
        let saved = self
            .store
            .chats
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "group": stored, "updated_at": now } },
            )
            .await;
        let new_photo = group.photo.clone().filter(|_| changes_photo);
        self.discard_unused_image(saved.is_ok(), replaced_photo, new_photo)
            .await;
        saved?;
        self.forget_chat(&membership.chat).await;
        membership.chat.group = Some(group);
        membership.chat.updated_at = Some(now);
        self.publish(ChatEvent::ChatUpdated {
            chat: membership.chat.clone(),
            participants: membership.participants.clone(),
            origin,
        })
        .await;
        Ok(membership)
    }

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
        if self.event_of(&membership.chat).await?.is_some() {
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

    async fn announce_joined(
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
            .event_of(&membership.chat)
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

    /// Mark everything in the chat read for the user.
    pub async fn mark_read(&self, user: &User, id: ObjectId) -> Result<Participant> {
        let membership = self.member_view(user, id).await?;
        let me = membership.me(user)?.clone();
        let now = DateTime::now();
        self.store
            .participants
            .update_one(
                doc! { "_id": me.id },
                doc! { "$set": { "last_read_at": now } },
            )
            .await?;
        Ok(Participant {
            last_read_at: Some(now),
            ..me
        })
    }

    /// Delete a group with its messages, files, event, join requests and photo.
    pub async fn delete_group(&self, user: &User, id: ObjectId, origin: Origin) -> Result<Chat> {
        let membership = self.membership(id).await?;
        membership.admin(user)?;
        let group = membership.group()?.clone();
        // Dependents first and the participants last, so an interrupted deletion can be
        // retried by the same admin and finishes the job.
        let files: Vec<ChatFile> = self
            .store
            .files
            .find(doc! { "chat_id": id })
            .await?
            .try_collect()
            .await?;
        self.store
            .messages
            .delete_many(doc! { "chat_id": id })
            .await?;
        self.store.files.delete_many(doc! { "chat_id": id }).await?;
        self.store
            .events
            .delete_many(doc! { "chat_id": id })
            .await?;
        self.store
            .join_requests
            .delete_many(doc! { "chat_id": id })
            .await?;
        self.store.chats.delete_one(doc! { "_id": id }).await?;
        self.store
            .participants
            .delete_many(doc! { "chat_id": id })
            .await?;
        self.forget_chat(&membership.chat).await;
        if let Some(media) = self.media.clone() {
            let urls: Vec<String> = group
                .photo
                .into_iter()
                .chain(
                    files
                        .into_iter()
                        .flat_map(|f| std::iter::once(f.file.url).chain(f.file.cover)),
                )
                .collect();
            // Objects are cleaned up off the request path; a failure is logged there.
            tokio::spawn(async move {
                for url in urls {
                    media.delete_by_url(&url).await;
                }
            });
        }
        tracing::info!(chat = %id, by = %user.id, "group deleted");
        self.publish(ChatEvent::ChatDeleted {
            chat: membership.chat.clone(),
            members: membership.member_ids(),
            origin,
        })
        .await;
        Ok(membership.chat)
    }

    pub async fn event_of(&self, chat: &Chat) -> Result<Option<Event>> {
        Ok(self
            .store
            .events
            .find_one(doc! { "chat_id": chat.id })
            .await?)
    }

    /// An admin attaches an event to a group; one per chat.
    pub async fn create_event(
        &self,
        user: &User,
        id: ObjectId,
        name: &str,
        starts_at: DateTime,
        ends_at: DateTime,
    ) -> Result<Event> {
        let membership = self.membership(id).await?;
        membership.admin(user)?;
        membership.group()?;
        if ends_at <= starts_at {
            return Err(Error::invalid("endsAt must be after startsAt"));
        }
        let event = Event {
            id: ObjectId::new(),
            chat_id: id,
            name: valid_text(name, "name", NAME_MAX_CHARS)?,
            starts_at,
            ends_at,
            created_at: DateTime::now(),
        };
        self.store
            .events
            .insert_one(&event)
            .await
            .unless_duplicate()?
            .ok_or_else(|| Error::Conflict("this chat already has an event".into()))?;
        Ok(event)
    }

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
        self.store.join_requests.insert_one(&request).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn courses_are_never_restricted() {
        assert!(!restricted_in("Courses", true));
        assert!(restricted_in("Study", true));
        assert!(!restricted_in("Study", false));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(valid_text("  Math 101 ", "name", 100).unwrap(), "Math 101");
        assert!(valid_text("   ", "name", 100).is_err());
        assert!(valid_text(&"x".repeat(101), "name", 100).is_err());
    }
}
