//! The requests dialect (`chat-requests.txt`): a developer community app's "Chat" API. A
//! user asks another to chat; the other accepts or declines; they exchange messages, mark them
//! read and read their totals, over REST, with a listen-only Socket.IO feed at `/chat/socket`.

mod routes;
mod views;
mod wire;

use std::sync::Arc;

use bson::oid::ObjectId;
use rooms::{Outgoing, Present, PushText, Room};

use crate::auth::TokenForm;
use crate::core::HubUser;
use crate::core::messages::preview;
use crate::core::requests::totals_watch;
use crate::core::{ChatEvent, Dialect, Rendered};
use crate::kit::{Clients, Kit};
use crate::realtime::SocketDialect;
use crate::store::{RequestStatus, User};

const DIALECT: &str = "requests";

/// Where its Socket.IO clients connect.
const SOCKET_PATH: &str = "/chat/socket";

/// The dialect, as `lib.rs` serves it.
pub fn kit() -> Kit {
    Kit {
        renderer: Arc::new(Requests),
        routes: routes::router(),
        clients: Clients::SocketIo {
            path: SOCKET_PATH,
            handlers: Arc::new(RequestsSocket),
        },
    }
}

fn user_room(user: &ObjectId) -> Room {
    Room::user(DIALECT, user.hub_user())
}

/// Renders the core's events for the feed: `message` to both users of a one-to-one chat (all
/// their sockets), and `totals` to a user whose totals changed.
struct Requests;

impl Dialect for Requests {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn render(&self, event: &ChatEvent) -> Rendered {
        let outgoing = match event {
            ChatEvent::MessagePosted {
                chat,
                message,
                author,
                members,
            } if !chat.is_group() => Outgoing::to_all(
                members.iter().map(user_room).collect(),
                "message",
                views::message(message, author),
            ),
            ChatEvent::TotalsChanged { user, totals } => {
                Outgoing::new(user_room(user), "totals", views::totals(totals))
            }
            _ => return Rendered::default(),
        };
        Rendered::events(vec![outgoing])
    }

    /// A new request, its acceptance, and a new message, routed by `chatId` and `type`.
    fn push(&self, event: &ChatEvent, _user: &ObjectId) -> Option<PushText> {
        match event {
            ChatEvent::ChatCreated { chat, creator, .. }
                if chat.request_status() == RequestStatus::Pending =>
            {
                let body = format!("{} wants to chat with you", creator.display_name());
                Some(views::push(
                    "New chat request".into(),
                    body,
                    &chat.id,
                    "chat_request",
                ))
            }
            ChatEvent::RequestAnswered {
                chat,
                by,
                accepted: true,
            } => {
                let body = format!("{} accepted your chat request", by.display_name());
                let title = "Chat request accepted".to_owned();
                Some(views::push(title, body, &chat.id, "chat_request_accepted"))
            }
            ChatEvent::MessagePosted {
                chat,
                message,
                author,
                ..
            } if !chat.is_group() => {
                let body = if message.content.trim().is_empty() {
                    "Sent a photo".to_owned()
                } else {
                    preview(&message.content)
                };
                let title = author.display_name().to_owned();
                Some(views::push(title, body, &chat.id, "message"))
            }
            _ => None,
        }
    }
}

/// The feed: the client connects with the raw JWT in `auth.token` and only listens.
struct RequestsSocket;

impl SocketDialect for RequestsSocket {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn token_forms(&self) -> &'static [TokenForm] {
        &[TokenForm::Auth, TokenForm::Query("token")]
    }

    /// Nothing to hear without an account: refused.
    fn allows_anonymous(&self) -> bool {
        false
    }

    /// Its user's totals are sent whenever they change.
    fn watches(&self, user: &User) -> Vec<Present> {
        vec![totals_watch(&user.id)]
    }
}
