//! The hooks dialect (`hooks-backend.md`): a Django REST Framework backend's clients, with
//! its trailing slashes, integer ids and DRF error shapes, and two plain WebSockets.

mod accounts;
mod communication;
mod devices;
mod follows;
mod live;
mod profiles;
pub mod views;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use bson::oid::ObjectId;
use rooms::{Outgoing, PushText, Room};

use crate::core::HubUser;
use crate::core::messages::preview;
use crate::core::{App, ChatEvent, Dialect, Rendered};
use crate::kit::{Clients, Kit};
use crate::store::{Chat, NotificationKind};

const DIALECT: &str = "hooks";

fn chat_room(chat: &Chat) -> Room {
    Room::chat(DIALECT, &chat.id.to_hex())
}

/// The dialect, as `lib.rs` serves it.
pub fn kit() -> Kit {
    Kit {
        renderer: Arc::new(Hooks),
        routes: router(),
        clients: Clients::WebSocket,
    }
}

fn router() -> Router<App> {
    Router::new()
        .merge(accounts::router())
        .merge(profiles::router())
        .merge(follows::router())
        .merge(communication::router())
        .merge(devices::router())
        .merge(live::router())
        .method_not_allowed_fallback(crate::http::method_not_allowed::<wire::HooksWire>)
}

/// Renders the core's events as frames of the hooks dialect's WebSockets: messages of
/// one-to-one chats to `ws/chat/` sockets, notifications to `ws/notification/` sockets.
struct Hooks;

impl Dialect for Hooks {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn render(&self, event: &ChatEvent) -> Rendered {
        let outgoing = match event {
            ChatEvent::MessagePosted {
                chat,
                message,
                author,
                ..
            } if !chat.is_group() => {
                let mut frame = views::message(message, author);
                frame["session_id"] = chat.num.into();
                Outgoing::new(chat_room(chat), "message", frame).with_id(message.num)
            }
            ChatEvent::Notified {
                notification,
                actor,
                ..
            } => Outgoing::new(
                Room::user(DIALECT, notification.user_id.hub_user()),
                "notification",
                views::notification(notification, Some(actor)),
            ),
            // A blocked user's open `ws/chat/` socket stops hearing the session (and what it
            // sends is refused). Lifting the block does not bring it back: it reconnects.
            ChatEvent::Blocked { chat, blocked, .. } => {
                return Rendered {
                    leaves: vec![(Room::account(blocked.hub_user()), chat_room(chat))],
                    ..Rendered::default()
                };
            }
            _ => return Rendered::default(),
        };
        Rendered::events(vec![outgoing])
    }

    /// Notifications, titled by what happened (with `event: notification` and the
    /// notification's id), and one-to-one messages (with the session's id).
    fn push(&self, event: &ChatEvent, _user: &ObjectId) -> Option<PushText> {
        let (title, body, data) = match event {
            ChatEvent::Notified {
                notification,
                actor,
                ..
            } => {
                let title = match notification.kind {
                    NotificationKind::Followed => "New follower",
                    NotificationKind::LikeRequested => "New like",
                    NotificationKind::LikeAnswered => "Your like was answered",
                    NotificationKind::MessageWhileOffline => "New message",
                };
                (
                    title.to_owned(),
                    views::notification_text(notification, Some(actor)),
                    [
                        ("event", "notification".to_owned()),
                        ("notification_id", notification.num.to_string()),
                    ],
                )
            }
            ChatEvent::MessagePosted {
                chat,
                message,
                author,
                ..
            } if !chat.is_group() => (
                author.display_name().to_owned(),
                preview(&message.content),
                [
                    ("session_id", chat.num.to_string()),
                    ("message_id", message.num.to_string()),
                ],
            ),
            _ => return None,
        };
        let data = data.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Some(PushText { title, body, data })
    }
}
