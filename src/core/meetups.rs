//! Meetups: a happening a group is about, one per group; while it lasts, an admin lets each
//! participant in or not.

use bson::oid::ObjectId;
use bson::{DateTime, doc};

use super::Core;
use super::groups::{NAME_MAX_CHARS, valid_text};
use crate::error::{Error, Result, UniqueWrite};
use crate::store::{Chat, InsertNew, Meetup, User};

impl Core {
    pub async fn meetup_of(&self, chat: &Chat) -> Result<Option<Meetup>> {
        Ok(self
            .store
            .meetups
            .find_one(doc! { "chat_id": chat.id })
            .await?)
    }

    /// An admin attaches an event to a group; one per chat.
    pub async fn create_meetup(
        &self,
        user: &User,
        id: ObjectId,
        name: &str,
        starts_at: DateTime,
        ends_at: DateTime,
    ) -> Result<Meetup> {
        let membership = self.membership(id).await?;
        membership.admin(user)?;
        membership.group()?;
        if ends_at <= starts_at {
            return Err(Error::invalid("endsAt must be after startsAt"));
        }
        let meetup = Meetup {
            id: ObjectId::new(),
            chat_id: id,
            name: valid_text(name, "name", NAME_MAX_CHARS)?,
            starts_at,
            ends_at,
            created_at: DateTime::now(),
        };
        self.store
            .meetups
            .insert_new(&meetup, meetup.id)
            .await
            .unless_duplicate()?
            .ok_or_else(|| Error::Conflict("this chat already has a meetup".into()))?;
        Ok(meetup)
    }
}
