//! What the chats dialect's apps show when a user with no live connection is pushed: the
//! message, or the chat event addressed to them, with `chat_id` and the socket event's name so
//! the app can route it.

use std::collections::BTreeMap;

use bson::oid::ObjectId;
use rooms::PushText;

use crate::core::ChatEvent;
use crate::core::messages::preview;
use crate::store::{Answer, Chat};

pub fn push(event: &ChatEvent, _user: &ObjectId) -> Option<PushText> {
    let (title, body, data) = match event {
        ChatEvent::MessagePosted {
            chat,
            message,
            author,
            ..
        } => (
            author.username.clone(),
            preview(&message.content),
            [
                ("chat_id", chat.id.to_hex()),
                ("message_id", message.id.to_hex()),
            ],
        ),
        ChatEvent::ChatCreated { chat, creator, .. } => match &chat.group {
            Some(group) => (
                group.name.clone(),
                format!("{} added you to {}", creator.username, group.name),
                about(chat, "chat-created"),
            ),
            None => (
                "New chat".to_owned(),
                format!("{} started a chat with you", creator.username),
                about(chat, "chat-created"),
            ),
        },
        ChatEvent::ParticipantsJoined { chat, by, .. } => (
            chat_name(chat),
            format!("{} added you to {}", by.username, chat_name(chat)),
            about(chat, "chat-joined"),
        ),
        ChatEvent::ParticipantRemoved { chat, by, .. } => (
            chat_name(chat),
            format!("{} removed you from {}", by.username, chat_name(chat)),
            about(chat, "chat-access-removed"),
        ),
        ChatEvent::AdminAccessChanged {
            chat, participant, ..
        } => {
            let (event, body) = if participant.is_admin {
                ("chat-admin-access-granted", "You are now an admin of")
            } else {
                ("chat-admin-access-removed", "You are no longer an admin of")
            };
            (
                chat_name(chat),
                format!("{body} {}", chat_name(chat)),
                about(chat, event),
            )
        }
        ChatEvent::ParticipantAnswered {
            chat, participant, ..
        } => {
            let verdict = match participant.status {
                Some(Answer::Accepted) => "accepted",
                _ => "declined",
            };
            (
                chat_name(chat),
                format!("Your place at {} was {verdict}", chat_name(chat)),
                about(chat, "chat-participant-status-updated"),
            )
        }
        _ => return None,
    };
    let data = data
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect::<BTreeMap<_, _>>();
    Some(PushText { title, body, data })
}

fn about(chat: &Chat, event: &str) -> [(&'static str, String); 2] {
    [("chat_id", chat.id.to_hex()), ("event", event.to_owned())]
}

fn chat_name(chat: &Chat) -> String {
    chat.group
        .as_ref()
        .map_or_else(|| "A chat".to_owned(), |g| g.name.clone())
}
