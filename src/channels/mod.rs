//! The channels dialect (`channels-socketio.md`): DM channels over REST and Socket.IO.

mod routes;
mod socket;
pub mod wire;

use std::sync::Arc;

use bson::oid::ObjectId;
use rooms::{Outgoing, Room};

use crate::core::HubUser;
use crate::core::{ChatEvent, Dialect, Rendered};
use crate::kit::{Clients, Kit};
use crate::realtime;
use crate::store::Chat;
use socket::ChannelsSocket;
use wire::{DeletedView, MessageView};

const DIALECT: &str = "channels";

/// The dialect, as `lib.rs` serves it.
pub fn kit() -> Kit {
    Kit {
        renderer: Arc::new(Channels),
        routes: routes::router(),
        clients: Clients::SocketIo {
            path: realtime::DEFAULT_PATH,
            handlers: Arc::new(ChannelsSocket),
        },
    }
}

fn chat_room(chat: &str) -> Room {
    Room::chat(DIALECT, chat)
}

fn user_room(user: &ObjectId) -> Room {
    Room::user(DIALECT, user.hub_user())
}

/// Renders the core's events in the channels spec's shapes.
struct Channels;

impl Dialect for Channels {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn render(&self, event: &ChatEvent) -> Rendered {
        match event {
            ChatEvent::MessagePosted {
                chat,
                message,
                author,
                ..
            } => Rendered::answered(Outgoing::new(
                chat_room(&chat.id.to_hex()),
                "message",
                json(MessageView::new(message, author, chat.num)),
            )),
            ChatEvent::MessageDeleted { chat, message, .. } => {
                Rendered::events(vec![Outgoing::new(
                    chat_room(&chat.id.to_hex()),
                    "messageDeleted",
                    json(DeletedView {
                        channel: chat.num.to_string(),
                        id: message.num.to_string(),
                    }),
                )])
            }
            // Channels are one-to-one; groups are for other dialects.
            ChatEvent::ChatCreated {
                chat,
                creator,
                members,
                ..
            } if !chat.is_group() => {
                let room = chat_room(&chat.id.to_hex());
                Rendered {
                    // Live sockets of both members start hearing the new channel at once.
                    joins: members
                        .iter()
                        .map(|m| (user_room(&m.id), room.clone()))
                        .collect(),
                    outgoing: members
                        .iter()
                        .filter(|m| m.id != creator.id)
                        .map(|m| {
                            Outgoing::new(
                                user_room(&m.id),
                                "channelCreate",
                                serde_json::json!({ "channel_id": chat.num.to_string() }),
                            )
                        })
                        .collect(),
                    ..Rendered::default()
                }
            }
            // Whoever can no longer see a chat stops hearing it, and whoever now can starts.
            ChatEvent::ParticipantsJoined { chat, joined, .. } => {
                moves(chat, joined.iter().map(|p| p.user_id), true)
            }
            ChatEvent::ParticipantRemoved { chat, removed, .. } => {
                moves(chat, [removed.user_id], false)
            }
            ChatEvent::ChatDeleted { chat, members, .. } => {
                moves(chat, members.iter().copied(), false)
            }
            ChatEvent::Blocked { chat, blocked, .. } => moves(chat, [*blocked], false),
            ChatEvent::Unblocked { chat, blocked, .. } => moves(chat, [*blocked], true),
            _ => Rendered::default(),
        }
    }
}

/// The channels sockets of `users` join (or leave) the chat's room.
fn moves(chat: &Chat, users: impl IntoIterator<Item = ObjectId>, join: bool) -> Rendered {
    let room = chat_room(&chat.id.to_hex());
    let pairs = users
        .into_iter()
        .map(|u| (user_room(&u), room.clone()))
        .collect();
    if join {
        Rendered {
            joins: pairs,
            ..Rendered::default()
        }
    } else {
        Rendered {
            leaves: pairs,
            ..Rendered::default()
        }
    }
}

fn json(view: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or_default()
}
