//! Messages: posting, deleting and reading history.

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;

use super::{ChatEvent, Core};
use crate::error::{Error, Result};
use crate::store::{Attachment, Chat, ChatFile, FileKind, Message, NotificationKind, User};

pub const CONTENT_MAX_CHARS: usize = 4000;

/// Which slice of a chat's history to read; results are always oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryPage {
    /// Only messages older than this numeric id (paging back).
    pub before: Option<i64>,
    /// Only messages newer than this numeric id (catching up after a reconnect).
    pub after: Option<i64>,
    pub limit: i64,
}

pub fn valid_content(raw: &str) -> Result<&str> {
    if raw.trim().is_empty() {
        return Err(Error::invalid("content must not be empty"));
    }
    if raw.chars().count() > CONTENT_MAX_CHARS {
        return Err(Error::invalid(format!(
            "content is longer than {CONTENT_MAX_CHARS} characters"
        )));
    }
    Ok(raw)
}

impl Core {
    /// Store a message from a member of the chat and deliver it to everyone who can see it.
    pub async fn post_message(&self, author: &User, chat: &Chat, content: &str) -> Result<Message> {
        let message = Message {
            id: ObjectId::new(),
            num: self.store.ids.next("messages").await?,
            chat_id: chat.id,
            author_id: author.id,
            content: valid_content(content)?.to_owned(),
            files: Vec::new(),
            created_at: DateTime::now(),
        };
        let insert = async { Ok::<_, Error>(self.store.messages.insert_one(&message).await?) };
        tokio::try_join!(insert, self.touch_chat(chat, message.created_at))?;
        self.announce_message(author, chat, &message).await?;
        Ok(message)
    }

    /// Store a message carrying files, each filed under its kind and one of the chat's tags
    /// (or `others`) so the chat's media can be browsed. Delivered like any message.
    pub async fn post_files(
        &self,
        author: &User,
        chat: &Chat,
        content: &str,
        files: Vec<(FileKind, String, Attachment)>,
    ) -> Result<Message> {
        if files.is_empty() {
            return Err(Error::invalid(
                "a message with files needs at least one file",
            ));
        }
        let now = DateTime::now();
        let message = Message {
            id: ObjectId::new(),
            num: self.store.ids.next("messages").await?,
            chat_id: chat.id,
            author_id: author.id,
            content: content.to_owned(),
            files: files.iter().map(|(_, _, file)| file.clone()).collect(),
            created_at: now,
        };
        let filed: Vec<ChatFile> = files
            .into_iter()
            .map(|(kind, tag, file)| ChatFile {
                id: file.id,
                chat_id: chat.id,
                user_id: author.id,
                message_id: message.id,
                kind,
                tag,
                file,
                at: now,
            })
            .collect();
        self.store.messages.insert_one(&message).await?;
        self.store.files.insert_many(&filed).await?;
        self.touch_chat(chat, now).await?;
        self.announce_message(author, chat, &message).await?;
        Ok(message)
    }

    /// Deliver a stored message. In a one-to-one chat, a recipient with no live connection
    /// also finds a notification of it later (the message's own push has already gone out).
    async fn announce_message(&self, author: &User, chat: &Chat, message: &Message) -> Result<()> {
        let members = self.member_ids(chat).await?;
        let event = ChatEvent::MessagePosted {
            chat: chat.clone(),
            message: message.clone(),
            author: author.clone(),
            members: members.clone(),
        };
        self.publish(event).await;
        if chat.is_group() {
            return Ok(());
        }
        let offline = members.iter().filter(|m| {
            **m != author.id
                && **m != self.system_user().id
                && !self.hub.presence().is_online(&m.to_hex())
        });
        for recipient in offline {
            let text = format!("{} sent you a message.", author.display_name());
            self.notify(
                *recipient,
                NotificationKind::MessageWhileOffline,
                text,
                false,
            )
            .await;
        }
        Ok(())
    }

    /// Move the chat's last activity (what chat lists sort by) to `at`. At most once a second
    /// per chat: a busy chat would otherwise double the writes of every message.
    async fn touch_chat(&self, chat: &Chat, at: DateTime) -> Result<()> {
        if self.recently_touched.get(&chat.id).is_some() {
            return Ok(());
        }
        self.recently_touched.insert(chat.id, ());
        self.store
            .chats
            .update_one(
                doc! { "_id": chat.id },
                doc! { "$max": { "updated_at": at } },
            )
            .await?;
        Ok(())
    }

    /// Delete a message; only its author may.
    pub async fn delete_message(&self, user: &User, chat: &Chat, num: i64) -> Result<Message> {
        let message = self
            .store
            .messages
            .find_one(doc! { "num": num, "chat_id": chat.id })
            .await?
            .ok_or(Error::NotFound("message"))?;
        if message.author_id != user.id {
            return Err(Error::Forbidden(
                "only the author may delete a message".into(),
            ));
        }
        let deleted = self
            .store
            .messages
            .delete_one(doc! { "_id": message.id })
            .await?;
        if deleted.deleted_count == 0 {
            // Someone else deleted it between our read and our write: theirs was announced.
            return Err(Error::NotFound("message"));
        }
        let members = self.member_ids(chat).await?;
        let event = ChatEvent::MessageDeleted {
            chat: chat.clone(),
            message: message.clone(),
            members,
        };
        self.publish(event).await;
        Ok(message)
    }

    pub async fn history(&self, chat: &Chat, page: HistoryPage) -> Result<Vec<Message>> {
        let mut filter = doc! { "chat_id": chat.id };
        let mut range = doc! {};
        if let Some(before) = page.before {
            range.insert("$lt", before);
        }
        if let Some(after) = page.after {
            range.insert("$gt", after);
        }
        if !range.is_empty() {
            filter.insert("num", range);
        }
        // Catching up reads forward from `after`; everything else reads back from the newest.
        let forward = page.after.is_some() && page.before.is_none();
        let order = if forward { 1 } else { -1 };
        let cursor = self
            .store
            .messages
            .find(filter)
            .sort(doc! { "chat_id": 1, "num": order })
            .limit(page.limit)
            .await?;
        let mut messages: Vec<Message> = cursor.try_collect().await?;
        if !forward {
            messages.reverse();
        }
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_must_be_present_and_bounded() {
        assert!(valid_content("hello").is_ok());
        assert!(valid_content("  \n").is_err());
        assert!(valid_content(&"x".repeat(CONTENT_MAX_CHARS)).is_ok());
        assert!(valid_content(&"x".repeat(CONTENT_MAX_CHARS + 1)).is_err());
    }
}
