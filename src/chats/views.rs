//! The chats dialect's response and event shapes: 24-hex ids, camelCase, ISO dates with
//! milliseconds, and users populated as `{_id, name, username, photo, isOnline}`.

use std::collections::{HashMap, HashSet};

use bson::oid::ObjectId;
use rooms::UserId;
use serde::Serialize;
use serde_json::{Value, json};

use crate::core::App;
use crate::core::HubUser;
use crate::core::chats::Membership;
use crate::core::communities::Community;
use crate::core::listing::ChatSummary;
use crate::store::{
    Answer, Attachment, Chat, ChatFile, Connection, JoinRequest, Meetup, Message, Participant,
    Reel, Score, Tag, User,
};

/// `2025-09-22T11:37:29.500Z`, as the spec's clients parse dates.
pub use crate::http::time::iso_millis as iso;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    #[serde(rename = "_id")]
    id: String,
    name: String,
    username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    photo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_online: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_followed: Option<bool>,
}

impl UserView {
    pub fn new(user: &User) -> Self {
        Self {
            id: user.id.to_hex(),
            name: user.username.clone(),
            username: user.username.clone(),
            photo: Some(user.avatar_url.clone()).filter(|p| !p.is_empty()),
            is_online: None,
            is_followed: None,
        }
    }

    fn online(mut self, online: bool) -> Self {
        self.is_online = Some(online);
        self
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantView<U: Serialize> {
    user: U,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    is_admin: bool,
    #[serde(rename = "_id")]
    id: String,
    last_read_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Answer>,
}

/// A participant with the user as an id, as in write responses and events.
pub fn participant(p: &Participant) -> ParticipantView<String> {
    ParticipantView {
        user: p.user_id.to_hex(),
        is_admin: p.is_admin,
        id: p.id.to_hex(),
        last_read_at: iso(p.last_read_at()),
        status: p.status,
    }
}

/// The chat as stored, with ids for users: the shape of write responses and events.
pub fn chat_document(chat: &Chat, participants: &[Participant]) -> Value {
    let mut view = json!({
        "_id": chat.id.to_hex(),
        "creator": chat.created_by.map(|c| c.to_hex()),
        "isGroup": chat.is_group(),
        "participants": participants.iter().map(participant).collect::<Vec<_>>(),
        "tags": if chat.tags.is_empty() { default_tags() } else { chat.tags.clone() },
        "createdAt": iso(chat.created_at),
        "updatedAt": iso(chat.updated_at()),
    });
    let fields = view.as_object_mut().expect("an object");
    if let Some(group) = &chat.group {
        fields.insert("name".into(), json!(group.name));
        fields.insert("category".into(), json!(group.category));
        fields.insert("restricted".into(), json!(group.restricted));
        fields.insert("allowPublicPost".into(), json!(group.allow_public_post));
        if let Some(photo) = &group.photo {
            fields.insert("photo".into(), json!(photo));
        }
    }
    if let Some(user) = chat.addressee {
        fields.insert("user".into(), json!(user.to_hex()));
    }
    if let Some(meet_me) = chat.meet_me {
        fields.insert("meetMe".into(), json!(meet_me.to_hex()));
    }
    view
}

/// The spec's example tags, shown for chats that have none of their own, to file media under
/// (files with none of them are tagged `others`).
fn default_tags() -> Vec<Tag> {
    [("exams", "Exams"), ("lectures", "Lectures & Summaries")]
        .into_iter()
        .map(|(tag, label)| Tag {
            tag: tag.into(),
            label: label.into(),
        })
        .collect()
}

/// Renders what the reads return, for one caller.
pub struct Viewer<'a> {
    pub me: &'a User,
    pub users: &'a HashMap<ObjectId, User>,
    /// Which of `users` have a live connection on any node.
    pub online: HashSet<UserId>,
}

impl<'a> Viewer<'a> {
    pub async fn new(app: &App, me: &'a User, users: &'a HashMap<ObjectId, User>) -> Self {
        let ids: Vec<UserId> = users.keys().map(HubUser::hub_user).collect();
        Self {
            me,
            users,
            online: app.hub.online_among(&ids).await,
        }
    }

    fn user(&self, id: &ObjectId) -> Value {
        match self.users.get(id) {
            Some(user) => json!(UserView::new(user)),
            None => json!(id.to_hex()),
        }
    }

    fn online_user(&self, id: &ObjectId) -> Value {
        match self.users.get(id) {
            Some(user) => {
                let online = self.online.contains(&user.id.hub_user());
                json!(UserView::new(user).online(online))
            }
            None => json!(id.to_hex()),
        }
    }

    /// A chat in a list or on its own: users populated, unread count and last message.
    pub fn summary(&self, summary: &ChatSummary) -> Value {
        let Membership { chat, participants } = &summary.membership;
        let mut view = chat_document(chat, participants);
        let fields = view.as_object_mut().expect("an object");
        let populated: Vec<_> = participants
            .iter()
            .map(|p| ParticipantView {
                user: self.online_user(&p.user_id),
                is_admin: p.is_admin,
                id: p.id.to_hex(),
                last_read_at: iso(p.last_read_at()),
                status: p.status,
            })
            .collect();
        fields.insert("participants".into(), json!(populated));
        if let Some(creator) = &chat.created_by {
            fields.insert("creator".into(), self.user(creator));
        }
        // One-to-one chats are shown as the other person; groups show the caller as `user`.
        let other = participants
            .iter()
            .find(|p| p.user_id != self.me.id)
            .map(|p| p.user_id);
        let shown = if chat.is_group() {
            Some(self.me.id)
        } else {
            other
        };
        if let Some(shown) = shown {
            fields.insert("user".into(), self.online_user(&shown));
        }
        let partner = other.and_then(|id| self.users.get(&id));
        if let (false, Some(other)) = (chat.is_group(), partner) {
            fields.insert("name".into(), json!(other.username));
            if !other.avatar_url.is_empty() {
                fields.insert("photo".into(), json!(other.avatar_url));
            }
        }
        fields.insert("unread".into(), json!(summary.unread));
        fields.insert(
            "lastMessage".into(),
            summary
                .last_message
                .as_ref()
                .map_or(Value::Null, |m| self.message(m)),
        );
        self.standing(fields, participants);
        view
    }

    /// The caller's standing in a chat, and the chat's size.
    fn standing(&self, fields: &mut serde_json::Map<String, Value>, participants: &[Participant]) {
        let me = participants.iter().find(|p| p.user_id == self.me.id);
        fields.insert("isJoined".into(), json!(me.is_some()));
        fields.insert("areYouAdmin".into(), json!(me.is_some_and(|p| p.is_admin)));
        fields.insert("participantsCount".into(), json!(participants.len()));
    }

    pub fn message(&self, message: &Message) -> Value {
        json!({
            "_id": message.id.to_hex(),
            "user": self.user(&message.author_id),
            "chat": message.chat_id.to_hex(),
            "content": message.content,
            "files": message.files.iter().map(attachment).collect::<Vec<_>>(),
            "at": iso(message.created_at),
        })
    }

    /// A community as explore shows it: participants as ids, its reels and the caller's request.
    pub fn community(&self, community: &Community, followed: &HashSet<ObjectId>) -> Value {
        let Membership { chat, participants } = &community.membership;
        let mut view = chat_document(chat, participants);
        let fields = view.as_object_mut().expect("an object");
        if let Some(creator) = &chat.created_by {
            fields.insert("creator".into(), self.user(creator));
        }
        if let Some(event) = &community.meetup {
            fields.insert("event".into(), json!(event.id.to_hex()));
        }
        fields.insert("reelsCount".into(), json!(community.reels_count));
        fields.insert("unread".into(), json!(community.unread));
        if let Some(request) = &community.request {
            fields.insert("request".into(), join_request(request));
        }
        let reels: Vec<Value> = community
            .reels
            .iter()
            .map(|r| self.reel(r, followed))
            .collect();
        fields.insert("reels".into(), json!(reels));
        self.standing(fields, participants);
        view
    }

    fn reel(&self, reel: &Reel, followed: &HashSet<ObjectId>) -> Value {
        // An anonymous reel names its author to nobody but the author.
        let user = if reel.is_anonymous && reel.user_id != self.me.id {
            Value::Null
        } else {
            match self.users.get(&reel.user_id) {
                Some(user) => json!(UserView {
                    is_followed: Some(followed.contains(&reel.user_id)),
                    ..UserView::new(user)
                }),
                None => json!(reel.user_id.to_hex()),
            }
        };
        json!({
            "_id": reel.id.to_hex(),
            "user": user,
            "chat": reel.chat_id.to_hex(),
            "description": reel.description,
            "tag": reel.tag,
            "video": reel.video,
            "hashtags": reel.hashtags,
            "isAnonymous": reel.is_anonymous,
            "views": reel.views,
            "likes": reel.likes,
            "superLikes": reel.super_likes,
            "shares": reel.shares,
            "comments": reel.comments,
            "createdAt": iso(reel.created_at),
            "updatedAt": iso(reel.updated_at),
            // Reel reactions are not kept by Palaver yet, so nobody has reacted.
            "isLiked": false,
            "isSuperLiked": false,
            "isFavorite": false,
        })
    }
}

pub fn attachment(file: &Attachment) -> Value {
    let mut view = json!({ "url": file.url, "_id": file.id.to_hex() });
    let fields = view.as_object_mut().expect("an object");
    if let Some(cover) = &file.cover {
        fields.insert("cover".into(), json!(cover));
    }
    if let Some(meta) = &file.meta {
        fields.insert("meta".into(), meta.clone().into_relaxed_extjson());
    }
    view
}

pub fn chat_file(file: &ChatFile) -> Value {
    json!({
        "_id": file.id.to_hex(),
        "user": file.user_id.to_hex(),
        "chat": file.chat_id.to_hex(),
        "at": iso(file.at),
        "message": file.message_id.to_hex(),
        "file": attachment(&file.file),
    })
}

pub fn join_request(request: &JoinRequest) -> Value {
    json!({
        "_id": request.id.to_hex(),
        "user": request.user_id.to_hex(),
        "chat": request.chat_id.to_hex(),
        "status": request.status,
        "createdAt": iso(request.created_at),
    })
}

pub fn connection(connection: &Connection) -> Value {
    json!({
        "_id": connection.id.to_hex(),
        "from": connection.from.to_hex(),
        "to": connection.to.to_hex(),
        "status": connection.status,
        "createdAt": iso(connection.created_at),
    })
}

pub fn event(event: &Meetup) -> Value {
    json!({
        "_id": event.id.to_hex(),
        "chat": event.chat_id.to_hex(),
        "name": event.name,
        "startsAt": iso(event.starts_at),
        "endsAt": iso(event.ends_at),
        "active": event.is_active(),
        "createdAt": iso(event.created_at),
    })
}

pub fn score(score: &Score) -> Value {
    json!({ "user": score.user_id.to_hex(), "total": score.total, "actions": score.actions })
}

#[cfg(test)]
mod tests {
    use super::iso;

    #[test]
    fn dates_have_milliseconds_and_a_z() {
        let at = bson::DateTime::from_millis(1_758_541_049_500);
        assert_eq!(iso(at), "2025-09-22T11:37:29.500Z");
    }
}
