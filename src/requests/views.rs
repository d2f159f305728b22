//! The requests dialect's shapes, as its mobile client reads them: string ids for chats and
//! messages, numeric ids for users, ISO 8601 dates.

use bson::oid::ObjectId;
use rooms::PushText;
use serde_json::{Value, json};

use crate::core::events::Totals;
use crate::http::time::iso_millis;
use crate::store::{Attachment, Chat, Message, Participant, RequestStatus, User};

pub fn user(user: &User) -> Value {
    let picture = user
        .profile
        .display_pic
        .clone()
        .or_else(|| Some(user.avatar_url.clone()).filter(|a| !a.is_empty()));
    json!({
        "id": user.num,
        "userId": user.num,
        "username": user.username,
        "displayName": user.display_name(),
        "profilePictureKey": picture,
    })
}

fn attachment(file: &Attachment, at: &str) -> Value {
    let mut meta = match file.meta.as_ref().map(|m| m.clone().into_relaxed_extjson()) {
        Some(Value::Object(meta)) => meta,
        _ => serde_json::Map::new(),
    };
    meta.insert("url".into(), json!(file.url));
    json!({
        "id": file.id.to_hex(),
        "value": file.url,
        "type": "image",
        "createdAt": at,
        "updatedAt": at,
        "meta": meta,
    })
}

pub fn message(message: &Message, author: &User) -> Value {
    let at = iso_millis(message.created_at);
    let mut view = json!({
        "id": message.id.to_hex(),
        "chatId": message.chat_id.to_hex(),
        "userId": author.num,
        "text": message.content,
        "linkPreviewUrl": message.link,
        "createdAt": at,
        "updatedAt": at,
        "user": user(author),
        "attachments": message.files.iter().map(|f| attachment(f, &at)).collect::<Vec<_>>(),
    });
    if let Some(id) = &message.client_id {
        view["matchId"] = json!(id);
    }
    view
}

pub fn status(chat: &Chat) -> &'static str {
    match chat.request_status() {
        RequestStatus::Pending => "pending",
        RequestStatus::Active => "active",
        RequestStatus::Declined => "declined",
    }
}

/// A chat as the caller (`me`, their place in it) sees it, with both users.
pub fn chat(
    chat: &Chat,
    users: &[&User],
    last: Option<(&Message, &User)>,
    me: Option<&Participant>,
    unread: u64,
) -> Value {
    json!({
        "id": chat.id.to_hex(),
        "users": users.iter().map(|u| user(u)).collect::<Vec<_>>(),
        "lastMessage": last.map(|(m, a)| message(m, a)),
        "isPinned": false,
        "lastMessageReadAt": me.and_then(|p| p.last_read_at).map(iso_millis),
        "totalUnreadMessages": unread,
        "status": status(chat),
        "createdAt": iso_millis(chat.created_at),
        "updatedAt": iso_millis(chat.updated_at()),
    })
}

/// A request in the pending or rejected list: the other user, and the latest message (one is
/// made up when the asker has written nothing yet: the client reads its text).
pub fn request(chat: &Chat, other: &User, last: Option<(&Message, &User)>, unread: u64) -> Value {
    let message = match last {
        Some((m, author)) => message(m, author),
        None => {
            let at = iso_millis(chat.created_at);
            json!({
                "id": chat.id.to_hex(),
                "chatId": chat.id.to_hex(),
                "userId": other.num,
                "text": ASKED,
                "linkPreviewUrl": null,
                "createdAt": at,
                "updatedAt": at,
                "user": user(other),
                "attachments": [],
            })
        }
    };
    json!({
        "chatId": chat.id.to_hex(),
        "createdAt": iso_millis(chat.created_at),
        "updatedAt": iso_millis(chat.updated_at()),
        "totalUnreadMessages": unread,
        "message": message,
        "user": user(other),
    })
}

/// The text of a request the asker has not written in yet.
const ASKED: &str = "Wants to chat with you";

pub fn totals(totals: &Totals) -> Value {
    json!({
        "totalPendingRequest": totals.pending_requests,
        "totalPendingRequests": totals.pending_requests,
        "totalUnreadMessages": totals.unread_messages,
        "totalUnreadChats": totals.unread_chats,
    })
}

/// A push this dialect's app routes by `chatId` and `type`.
pub fn push(title: String, body: String, chat: &ObjectId, kind: &str) -> PushText {
    let data = [("chatId", chat.to_hex()), ("type", kind.to_owned())];
    PushText {
        title,
        body,
        data: data.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}
