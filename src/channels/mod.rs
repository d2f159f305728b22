//! The channels dialect (`channels-socketio.md`): DM channels over REST and Socket.IO.

mod routes;
mod socket;
pub mod wire;

use rooms::{Outgoing, Room};

use crate::core::{ChatEvent, Dialect, Rendered};
pub use routes::router;
pub use socket::register;
use wire::{DeletedView, MessageView};

const DIALECT: &str = "channels";

fn chat_room(chat: &str) -> Room {
    Room::chat(DIALECT, chat)
}

fn user_room(user: &str) -> Room {
    Room::user(DIALECT, user)
}

/// Renders the core's events in the channels spec's shapes.
pub struct Channels;

impl Dialect for Channels {
    fn render(&self, event: &ChatEvent) -> Rendered {
        match event {
            ChatEvent::MessagePosted {
                chat,
                message,
                author,
                ..
            } => Rendered {
                joins: Vec::new(),
                outgoing: vec![Outgoing {
                    room: chat_room(&chat.id.to_hex()),
                    event: "message".into(),
                    payload: json(MessageView::new(message, author, chat.num)),
                }],
            },
            ChatEvent::MessageDeleted { chat, message, .. } => Rendered {
                joins: Vec::new(),
                outgoing: vec![Outgoing {
                    room: chat_room(&chat.id.to_hex()),
                    event: "messageDeleted".into(),
                    payload: json(DeletedView {
                        channel: chat.num.to_string(),
                        id: message.num.to_string(),
                    }),
                }],
            },
            ChatEvent::ChatCreated {
                chat,
                creator,
                members,
            } => {
                let room = chat_room(&chat.id.to_hex());
                Rendered {
                    // Live sockets of both members start hearing the new channel at once.
                    joins: members
                        .iter()
                        .map(|m| (user_room(&m.id.to_hex()), room.clone()))
                        .collect(),
                    outgoing: members
                        .iter()
                        .filter(|m| m.id != creator.id)
                        .map(|m| Outgoing {
                            room: user_room(&m.id.to_hex()),
                            event: "channelCreate".into(),
                            payload: serde_json::json!({ "channel_id": chat.num.to_string() }),
                        })
                        .collect(),
                }
            }
        }
    }
}

fn json(view: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or_default()
}
