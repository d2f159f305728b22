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

use axum::Router;
use rooms::{Outgoing, Room};

use crate::core::{App, ChatEvent, Dialect, Rendered};
use crate::store::Chat;

const DIALECT: &str = "hooks";

fn chat_room(chat: &Chat) -> Room {
    Room::chat(DIALECT, &chat.id.to_hex())
}

pub fn router() -> Router<App> {
    Router::new()
        .merge(accounts::router())
        .merge(profiles::router())
        .merge(follows::router())
        .merge(communication::router())
        .merge(devices::router())
        .merge(live::router())
}

/// Renders the core's events as frames of the hooks dialect's WebSockets: messages of
/// one-to-one chats to `ws/chat/` sockets, notifications to `ws/notification/` sockets.
pub struct Hooks;

impl Dialect for Hooks {
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
                Outgoing::new(chat_room(chat), "message", frame)
            }
            ChatEvent::Notified { notification, .. } => Outgoing::new(
                Room::user(DIALECT, &notification.user_id.to_hex()),
                "notification",
                views::notification(notification),
            ),
            // A blocked user's open `ws/chat/` socket stops hearing the session (and what it
            // sends is refused). Lifting the block does not bring it back: it reconnects.
            ChatEvent::Blocked { chat, blocked, .. } => {
                return Rendered {
                    leaves: vec![(Room::account(&blocked.to_hex()), chat_room(chat))],
                    ..Rendered::default()
                };
            }
            _ => return Rendered::default(),
        };
        Rendered::events(vec![outgoing])
    }
}
