//! Messages: posting and deleting them (their numbering is `sequence.rs`'s, reading them
//! back `history.rs`'s).

use bson::oid::ObjectId;
use bson::{DateTime, doc};

use super::object_id;
use super::publisher::Published;
use super::{ChatEvent, Core};
use crate::error::{Error, Result};
use crate::store::{
    Attachment, Chat, ChatFile, FileKind, Message, NotificationKind, RequestStatus, User,
};

pub const CONTENT_MAX_CHARS: usize = 4000;
/// The start of a message, as a push or a list shows it: at most 100 characters.
pub fn preview(content: &str) -> String {
    const MAX: usize = 100;
    match content.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &content[..cut]),
        None => content.to_owned(),
    }
}

pub fn valid_content(raw: &str) -> Result<&str> {
    // Whitespace and control characters alone (NUL included) say nothing.
    if raw.chars().all(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid("content must not be empty"));
    }
    if raw.chars().count() > CONTENT_MAX_CHARS {
        return Err(Error::invalid(format!(
            "content is longer than {CONTENT_MAX_CHARS} characters"
        )));
    }
    Ok(raw)
}

/// The longest link a message may carry, and the longest id a client may give its copy.
pub const LINK_MAX_CHARS: usize = 2048;
pub const CLIENT_ID_MAX_CHARS: usize = 128;

/// A message as its author wrote it, before it is stored.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// May be empty when files come with it.
    pub content: String,
    /// Files, each filed under a kind and a tag (one of the chat's, or `others`) so the
    /// chat's media can be browsed.
    pub files: Vec<(FileKind, String, Attachment)>,
    pub link: Option<String>,
    pub client_id: Option<String>,
}

impl Draft {
    pub fn text(content: &str) -> Self {
        Self {
            content: content.to_owned(),
            ..Self::default()
        }
    }

    /// The draft as it may be stored: content present (or files), everything bounded.
    fn checked(self) -> Result<Self> {
        if self.files.is_empty() {
            valid_content(&self.content)?;
        } else if self.content.chars().count() > CONTENT_MAX_CHARS {
            return Err(Error::invalid(format!(
                "content is longer than {CONTENT_MAX_CHARS} characters"
            )));
        }
        if let Some(link) = &self.link {
            let web = link.starts_with("https://") || link.starts_with("http://");
            if !web || link.chars().count() > LINK_MAX_CHARS || link.contains(char::is_whitespace) {
                return Err(Error::invalid(format!(
                    "a link must be an http(s) URL of at most {LINK_MAX_CHARS} characters"
                )));
            }
        }
        if let Some(id) = &self.client_id
            && (id.chars().count() > CLIENT_ID_MAX_CHARS || id.contains(char::is_control))
        {
            return Err(Error::invalid(format!(
                "a client's id for a message is at most {CLIENT_ID_MAX_CHARS} characters"
            )));
        }
        Ok(self)
    }
}

/// What posting may do besides storing the message.
enum Posting {
    Plain,
    /// The asked user writes in a pending request: that accepts it.
    Accepts,
}

/// A message stored, and what delivering it did (`None` if it could not be delivered).
#[derive(Debug)]
pub struct Posted {
    pub message: Message,
    pub published: Option<Published>,
}

impl Core {
    /// Whether `author` may post in `chat` now: a member; in a one-to-one chat, neither
    /// blocked the other, and not the asker of a declined request; in a group that allows no
    /// public posts, an admin. Asked for every message, from the chat as it is now, so an open
    /// socket loses the right when its user does.
    pub async fn may_post(&self, author: &User, chat: &Chat) -> Result<()> {
        self.posting(author, chat).await.map(|_| ())
    }

    async fn posting(&self, author: &User, chat: &Chat) -> Result<Posting> {
        let members = self.members(chat).await?;
        if !members.ids.contains(&author.id) {
            return Err(Error::NotFound("chat"));
        }
        let now = self.chat_by_num(chat.num).await?;
        if !chat.is_group() {
            let other = members.ids.iter().find(|m| **m != author.id);
            if let Some(other) = other
                && self.blocked_between(&author.id, other).await?
            {
                return Err(Error::Forbidden(
                    "you cannot post in this chat: one of you blocked the other".into(),
                ));
            }
            return match &now.request {
                Some(r) if r.status == RequestStatus::Declined && r.from == author.id => {
                    Err(Error::Forbidden("your chat request was declined".into()))
                }
                Some(r) if r.status == RequestStatus::Pending && r.to == author.id => {
                    Ok(Posting::Accepts)
                }
                _ => Ok(Posting::Plain),
            };
        }
        let public = now.group.as_ref().is_none_or(|g| g.allow_public_post);
        if !public && !members.admins.contains(&author.id) {
            return Err(Error::Forbidden("only admins may post in this chat".into()));
        }
        Ok(Posting::Plain)
    }

    /// Move the chat's last activity (what chat lists sort by) to `at`. Queued, not waited
    /// for: a chat's moves gather for a moment and are written as one, to the latest time, so
    /// a busy chat does not double the writes of its messages. Chat lists have what is queued
    /// written before they read, and a stopping node all of it.
    async fn touch_chat(&self, chat: &Chat, at: DateTime) -> Result<()> {
        self.store.chat_activity.move_forward(chat.id, at).await
    }

    /// Store a message of `author` in `chat`, after the rules of posting, and deliver it to
    /// everyone who can see it. Every message of every dialect and transport comes here.
    pub async fn post(&self, author: &User, chat: &Chat, draft: Draft) -> Result<Posted> {
        let _under_way = self.posts_under_way.token();
        let draft = draft.checked()?;
        if let Posting::Accepts = self.posting(author, chat).await? {
            let now = self.chat_by_num(chat.num).await?;
            match self.settle_request(&now, author, true).await {
                // Answered meanwhile (accepted by another of their devices): write on.
                Ok(_) | Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut message = Message {
            id: ObjectId::new(),
            num: self.store.ids.next("messages").await?,
            chat_id: chat.id,
            seq: 0,
            author_id: author.id,
            content: draft.content,
            files: draft
                .files
                .iter()
                .map(|(_, _, file)| file.clone())
                .collect(),
            link: draft.link,
            client_id: draft.client_id,
            created_at: DateTime::now(),
        };
        let at = message.created_at;
        self.insert_numbered(chat, &mut message).await?;
        self.touch_chat(chat, at).await?;
        if !draft.files.is_empty() {
            let filed: Vec<ChatFile> = draft
                .files
                .into_iter()
                .map(|(kind, tag, file)| ChatFile {
                    id: file.id,
                    chat_id: chat.id,
                    user_id: author.id,
                    message_id: message.id,
                    kind,
                    tag,
                    file,
                    at,
                })
                .collect();
            self.store.files.insert_many(&filed).await?;
        }
        let published = self.announce_message(author, chat, &message).await;
        Ok(Posted { message, published })
    }

    /// A message of text only.
    pub async fn post_message(&self, author: &User, chat: &Chat, content: &str) -> Result<Posted> {
        self.post(author, chat, Draft::text(content)).await
    }

    /// A message carrying files.
    pub async fn post_files(
        &self,
        author: &User,
        chat: &Chat,
        content: &str,
        files: Vec<(FileKind, String, Attachment)>,
    ) -> Result<Posted> {
        if files.is_empty() {
            return Err(Error::invalid(
                "a message with files needs at least one file",
            ));
        }
        let draft = Draft {
            content: content.to_owned(),
            files,
            ..Draft::default()
        };
        self.post(author, chat, draft).await
    }

    /// Deliver a stored message. In a one-to-one chat, a recipient with no live connection
    /// also finds a notification of it later (the message's own push has already gone out);
    /// those are written after the sender has their answer, which waits for the sender's work
    /// only.
    async fn announce_message(
        &self,
        author: &User,
        chat: &Chat,
        message: &Message,
    ) -> Option<Published> {
        let members = match self.member_ids(chat).await {
            Ok(members) => members,
            Err(e) => {
                tracing::error!(chat = %chat.id, message = %message.id, "stored but not delivered: {e}");
                return None;
            }
        };
        let event = ChatEvent::MessagePosted {
            chat: chat.clone(),
            message: message.clone(),
            author: author.clone(),
            members: members.clone(),
        };
        let published = self.publish(event).await;
        let offline: Vec<ObjectId> = published
            .report
            .offline
            .iter()
            .map(|user| object_id(*user))
            .collect();
        if !chat.is_group() {
            let others: Vec<ObjectId> = members
                .iter()
                .filter(|m| **m != author.id)
                .copied()
                .collect();
            self.refresh_totals(others);
            if !offline.is_empty()
                && let Some(app) = self.app()
            {
                let author = author.clone();
                tokio::spawn(async move {
                    for recipient in offline {
                        let kind = NotificationKind::MessageWhileOffline;
                        app.notify(recipient, kind, &author, None, false).await;
                    }
                });
            }
        }
        Some(published)
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

    /// The message with this id in `chat`.
    pub async fn message_in(&self, chat: &Chat, id: ObjectId) -> Result<Message> {
        let filter = doc! { "_id": id, "chat_id": chat.id };
        let message = self.store.messages.find_one(filter).await?;
        message.ok_or(Error::NotFound("message"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_cut_long_content_on_a_char_boundary() {
        assert_eq!(preview("hi"), "hi");
        let long = "é".repeat(150);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), 101);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn content_must_be_present_and_bounded() {
        assert!(valid_content("hello").is_ok());
        assert!(valid_content("  \n").is_err());
        assert!(valid_content("\0\u{1}\t").is_err());
        assert!(valid_content(&"x".repeat(CONTENT_MAX_CHARS)).is_ok());
        assert!(valid_content(&"x".repeat(CONTENT_MAX_CHARS + 1)).is_err());
    }
}
