//! The chats dialect (`community-chats.txt`): one-to-one and group chats, communities,
//! participants and admins, over REST and Socket.IO, with pushes to offline devices.

mod devices;
mod participants;
mod pushes;
mod routes;
mod social;
pub mod views;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use bson::oid::ObjectId;
use rooms::PushText;
use rooms::{Outgoing, Room};
use serde_json::{Value, json};

use crate::auth::TokenForm;
use crate::core::HubUser;
use crate::core::{App, ChatEvent, Dialect, Origin, Rendered};
use crate::kit::{Clients, Kit};
use crate::realtime::{self, SocketDialect};
use views::{chat_document, participant};

const DIALECT: &str = "chats";

/// The dialect, as `lib.rs` serves it.
pub fn kit() -> Kit {
    Kit {
        renderer: Arc::new(Chats),
        routes: router(),
        clients: Clients::SocketIo {
            path: realtime::DEFAULT_PATH,
            handlers: Arc::new(ChatsSocket),
        },
    }
}

fn router() -> Router<App> {
    Router::new()
        .merge(routes::router())
        .merge(participants::router())
        .merge(social::router())
        .merge(devices::router())
        .method_not_allowed_fallback(crate::http::method_not_allowed::<wire::ChatsWire>)
}

/// The chats dialect on a Socket.IO path: every socket of a user hears this dialect's events
/// in their personal room (its connection's own room, joined by the realtime layer, lets an
/// event leave out the socket a change came from).
struct ChatsSocket;

impl SocketDialect for ChatsSocket {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn token_forms(&self) -> &'static [TokenForm] {
        &[
            TokenForm::Auth,
            TokenForm::Bearer("authorization"),
            TokenForm::Query("token"),
        ]
    }
}

fn user_room(user: &ObjectId) -> Room {
    Room::user(DIALECT, user.hub_user())
}

fn rooms_of<'a>(users: impl IntoIterator<Item = &'a ObjectId>) -> Vec<Room> {
    users.into_iter().map(user_room).collect()
}

fn except(origin: &Origin) -> Option<Room> {
    origin.as_deref().map(Room::connection)
}

fn to(users: Vec<Room>, event: &'static str, payload: Value, origin: &Origin) -> Outgoing {
    Outgoing::to_all(users, event, payload).except(except(origin))
}

/// Renders the core's events as the spec's Socket.IO events, sent to users' personal rooms.
struct Chats;

/// "If category is Courses, then restricted field will always be false."
const OPEN_CATEGORIES: &[&str] = &["Courses"];

impl Dialect for Chats {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn open_categories(&self) -> &'static [&'static str] {
        OPEN_CATEGORIES
    }

    fn push(&self, event: &ChatEvent, user: &ObjectId) -> Option<PushText> {
        pushes::push(event, user)
    }

    fn render(&self, event: &ChatEvent) -> Rendered {
        let outgoing = match event {
            ChatEvent::ChatCreated {
                chat,
                members,
                participants,
                origin,
                ..
            } => vec![to(
                rooms_of(members.iter().map(|m| &m.id)),
                "chat-created",
                json!({ "chat": chat_document(chat, participants) }),
                origin,
            )],
            ChatEvent::ChatUpdated {
                chat,
                participants,
                origin,
            } => vec![to(
                rooms_of(participants.iter().map(|p| &p.user_id)),
                "chat-updated",
                json!({ "chat": chat_document(chat, participants) }),
                origin,
            )],
            ChatEvent::ChatDeleted {
                chat,
                members,
                origin,
            } => vec![to(
                rooms_of(members),
                "chat-deleted",
                json!({ "chat": chat.id.to_hex() }),
                origin,
            )],
            ChatEvent::ParticipantsJoined {
                chat,
                participants,
                joined,
                origin,
                ..
            } => {
                let document = chat_document(chat, participants);
                joined
                    .iter()
                    .map(|p| {
                        to(
                            vec![user_room(&p.user_id)],
                            "chat-joined",
                            json!({ "chat": document, "participant": participant(p) }),
                            origin,
                        )
                    })
                    .collect()
            }
            ChatEvent::ParticipantRemoved {
                chat,
                removed,
                by,
                members,
                origin,
                ..
            } => {
                let by_admin = removed.user_id != by.id;
                // Everyone else hears of it; the one who left, on their other devices.
                let told = members
                    .iter()
                    .filter(|m| **m != removed.user_id || !by_admin);
                let payload =
                    json!({ "chat": chat.id.to_hex(), "participant": participant(removed) });
                let mut out = vec![to(
                    rooms_of(told),
                    "chat-participant-removed",
                    payload,
                    origin,
                )];
                if by_admin {
                    out.push(to(
                        vec![user_room(&removed.user_id)],
                        "chat-access-removed",
                        json!({ "chat": chat.id.to_hex(), "by": by.id.to_hex() }),
                        origin,
                    ));
                }
                out
            }
            ChatEvent::AdminAccessChanged {
                chat,
                participant: p,
                ..
            } => {
                let event = if p.is_admin {
                    "chat-admin-access-granted"
                } else {
                    "chat-admin-access-removed"
                };
                vec![Outgoing::new(
                    user_room(&p.user_id),
                    event,
                    json!({ "chat": chat.id.to_hex(), "participant": participant(p) }),
                )]
            }
            ChatEvent::ParticipantAnswered {
                chat,
                participant: p,
                ..
            } => vec![Outgoing::new(
                user_room(&p.user_id),
                "chat-participant-status-updated",
                json!({ "chat": chat.id.to_hex(), "participant": participant(p) }),
            )],
            ChatEvent::ScoreUpdated {
                user,
                score,
                action,
                points,
            } => vec![Outgoing::new(
                user_room(user),
                "score-updated",
                json!({
                    "score": score.total,
                    "action": action,
                    "points": points,
                    "actions": score.actions,
                }),
            )],
            // The chats spec has no message, notification or block events.
            ChatEvent::MessagePosted { .. }
            | ChatEvent::MessageDeleted { .. }
            | ChatEvent::Notified { .. }
            | ChatEvent::Blocked { .. }
            | ChatEvent::Unblocked { .. }
            | ChatEvent::RequestAnswered { .. }
            | ChatEvent::TotalsChanged { .. } => Vec::new(),
        };
        Rendered::events(outgoing)
    }
}
