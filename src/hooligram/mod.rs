//! The hooligram dialect (`hooligram-protocol-v2.txt`): a React Native client's JSON frames
//! over one plain WebSocket at `/v2`. A phone proves itself with a code sent by SMS and signs
//! in with that code; groups are named by number, people by their phone (`sid`).

mod commands;
mod frames;
mod socket;

use std::sync::Arc;

use bson::oid::ObjectId;
use rooms::{Outgoing, Room};
use serde_json::{Value, json};

use crate::core::HubUser;
use crate::core::phones::phone_name;
use crate::core::{ChatEvent, Dialect, Rendered};
use crate::kit::{Clients, Kit};
use crate::store::{Chat, Message, User};

const DIALECT: &str = "hooligram";

/// The dialect, as `lib.rs` serves it.
pub fn kit() -> Kit {
    Kit {
        renderer: Arc::new(Hooligram),
        routes: socket::router(),
        clients: Clients::WebSocket,
    }
}

/// Group chats made here: one category of the core's, so other dialects can list them.
const GROUP_CATEGORY: &str = "chat";

/// A group's type as the client compares it (`===`): a standard group, or a direct message.
const STANDARD: i64 = 0;
const DIRECT: i64 = 1;

fn user_room(user: &ObjectId) -> Room {
    Room::user(DIALECT, user.hub_user())
}

/// `GROUP_DELIVER_REQUEST`: the group as it is now, with everyone in it.
fn group_delivery(chat: &Chat, members: &[User]) -> Value {
    let (name, group_type) = match &chat.group {
        Some(group) => (group.name.as_str(), STANDARD),
        // The client names a direct message after the other member.
        None => ("", DIRECT),
    };
    let sids: Vec<String> = members.iter().map(phone_name).collect();
    frames::delivery(
        "GROUP_DELIVER_REQUEST",
        json!({
            "date_created": frames::date(chat.created_at),
            "group_id": chat.num,
            "group_name": name,
            "group_type": group_type,
            "member_sids": sids,
        }),
    )
}

/// `MESSAGING_DELIVER_REQUEST`: one message, acknowledged by `MESSAGING_DELIVER_SUCCESS`.
fn message_delivery(chat: &Chat, message: &Message, author: &User) -> Value {
    frames::delivery(
        "MESSAGING_DELIVER_REQUEST",
        json!({
            "content": message.content,
            "date_created": frames::date(message.created_at),
            "group_id": chat.num,
            "message_id": message.num,
            "sender_sid": phone_name(author),
        }),
    )
}

/// Renders the core's events as deliveries to every signed-in socket of each member: groups
/// when they are made or change hands, and messages.
struct Hooligram;

impl Dialect for Hooligram {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn render(&self, event: &ChatEvent) -> Rendered {
        let to_each = |members: &[User], frame: Value| {
            let rooms = members.iter().map(|u| user_room(&u.id)).collect();
            Rendered::events(vec![Outgoing::to_all(rooms, "delivery", frame)])
        };
        match event {
            ChatEvent::ChatCreated { chat, members, .. } => {
                to_each(members, group_delivery(chat, members))
            }
            ChatEvent::ParticipantsJoined { chat, roster, .. }
            | ChatEvent::ParticipantRemoved { chat, roster, .. } => {
                to_each(roster, group_delivery(chat, roster))
            }
            ChatEvent::MessagePosted {
                chat,
                message,
                author,
                members,
            } => {
                let rooms = members.iter().map(user_room).collect();
                let frame = message_delivery(chat, message, author);
                let delivery = Outgoing::to_all(rooms, "delivery", frame).with_id(message.num);
                Rendered::events(vec![delivery])
            }
            _ => Rendered::default(),
        }
    }
}
