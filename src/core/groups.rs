//! Group chats: creating, changing and deleting them.

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;

use super::chats::Membership;
use super::events::Origin;
use super::{ChatEvent, Core};
use crate::error::{Error, Result};
use crate::store::{Chat, ChatFile, ChatKind, GroupDetails, InsertNew, Participant, User, to_bson};

pub const NAME_MAX_CHARS: usize = 100;
pub const CATEGORY_MAX_CHARS: usize = 50;
/// The largest chat photo accepted.
pub const PHOTO_MAX_BYTES: usize = 5 * 1024 * 1024;

pub struct NewGroup {
    pub name: String,
    pub category: String,
    pub participants: Vec<ObjectId>,
    pub restricted: bool,
    /// Any member may add anyone, and the group goes when fewer than two remain (see
    /// `GroupDetails`). Its first members need not be followed by or connected with the
    /// creator.
    pub open_invites: bool,
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

pub(super) fn valid_text(raw: &str, field: &str, max: usize) -> Result<String> {
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

impl Core {
    /// A group in one of the open categories (which the dialects name) is never restricted.
    fn restricted_in(&self, category: &str, asked: bool) -> bool {
        asked
            && !self
                .publisher
                .open_categories()
                .any(|open| open == category)
    }

    pub async fn create_group(
        &self,
        creator: &User,
        new: NewGroup,
        origin: Origin,
    ) -> Result<Membership> {
        let name = valid_text(&new.name, "name", NAME_MAX_CHARS)?;
        let category = valid_text(&new.category, "category", CATEGORY_MAX_CHARS)?;
        let others = if new.open_invites {
            self.other_users(creator, &new.participants).await?
        } else {
            self.reachable_users(creator, &new.participants).await?
        };
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
                restricted: self.restricted_in(&category, new.restricted),
                name,
                category,
                allow_public_post: true,
                photo: None,
                open_invites: new.open_invites,
            }),
            request: None,
            tags: Vec::new(),
            created_at: now,
            updated_at: Some(now),
        };
        self.store.chats.insert_new(&chat, chat.id).await?;
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
        group.restricted = self.restricted_in(&group.category, group.restricted);
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

    /// Delete a group with its messages, files, event, join requests and photo.
    pub async fn delete_group(&self, user: &User, id: ObjectId, origin: Origin) -> Result<Chat> {
        let membership = self.membership(id).await?;
        membership.admin(user)?;
        membership.group()?;
        self.erase_chat(membership, user, origin).await
    }

    /// Delete a chat with everything in it, on `by`'s word (already checked), and say so.
    pub(super) async fn erase_chat(
        &self,
        membership: Membership,
        by: &User,
        origin: Origin,
    ) -> Result<Chat> {
        self.erase(&membership, by).await?;
        self.publish(ChatEvent::ChatDeleted {
            chat: membership.chat.clone(),
            members: membership.member_ids(),
            origin,
        })
        .await;
        Ok(membership.chat)
    }

    /// Delete a chat with everything in it (the rules were checked), saying nothing yet.
    pub(super) async fn erase(&self, membership: &Membership, by: &User) -> Result<()> {
        let id = membership.chat.id;
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
            .meetups
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
            let photo = membership.chat.group.as_ref().and_then(|g| g.photo.clone());
            let urls: Vec<String> = photo
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
        tracing::info!(chat = %id, by = %by.id, "chat deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(valid_text("  Math 101 ", "name", 100).unwrap(), "Math 101");
        assert!(valid_text("   ", "name", 100).is_err());
        assert!(valid_text(&"x".repeat(101), "name", 100).is_err());
    }
}
