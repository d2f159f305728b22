//! What happened, in the core's terms, and how a dialect says it: each dialect renders an
//! event for its own clients; the publisher (`publisher.rs`) delivers it and pushes to
//! recipients who are offline.

use std::any::Any;
use std::sync::Arc;

use bson::oid::ObjectId;
use rooms::{Outgoing, PushText, Room};

use crate::store::{Chat, Message, Notification, Participant, Score, User};

/// The connection (a Socket.IO socket id) a change came from; that device already knows.
pub type Origin = Option<String>;

#[derive(Debug, Clone)]
pub enum ChatEvent {
    MessagePosted {
        chat: Chat,
        message: Message,
        author: User,
        members: Arc<[ObjectId]>,
    },
    MessageDeleted {
        chat: Chat,
        message: Message,
        members: Arc<[ObjectId]>,
    },
    ChatCreated {
        chat: Chat,
        creator: User,
        members: Vec<User>,
        participants: Vec<Participant>,
        origin: Origin,
    },
    ChatUpdated {
        chat: Chat,
        participants: Vec<Participant>,
        origin: Origin,
    },
    ChatDeleted {
        chat: Chat,
        members: Vec<ObjectId>,
        origin: Origin,
    },
    /// Users joined a group: by themselves (`by` is the one who joined) or added by an admin.
    ParticipantsJoined {
        chat: Chat,
        participants: Vec<Participant>,
        joined: Vec<Participant>,
        by: User,
        /// Everyone in the group now, as users.
        roster: Vec<User>,
        origin: Origin,
    },
    ParticipantRemoved {
        chat: Chat,
        removed: Participant,
        by: User,
        /// Everyone who was in the chat, the removed participant included.
        members: Vec<ObjectId>,
        /// Everyone still in the chat, as users.
        roster: Vec<User>,
        origin: Origin,
    },
    AdminAccessChanged {
        chat: Chat,
        participant: Participant,
        by: User,
    },
    /// An admin let a participant into the group's meetup, or did not.
    ParticipantAnswered {
        chat: Chat,
        participant: Participant,
        by: User,
    },
    ScoreUpdated {
        user: ObjectId,
        score: Score,
        action: &'static str,
        points: i64,
    },
    /// A notification was stored for its user, caused by `actor`; `push` says whether to push
    /// it when they are offline.
    Notified {
        notification: Notification,
        actor: User,
        push: bool,
    },
    /// The user asked for a chat answered the request.
    RequestAnswered {
        chat: Chat,
        by: User,
        accepted: bool,
    },
    /// What a user's badges count changed (sent only when some connection watches them).
    TotalsChanged { user: ObjectId, totals: Totals },
    /// One user of a one-to-one chat blocked the other, who stops hearing the chat.
    Blocked {
        chat: Chat,
        blocker: ObjectId,
        blocked: ObjectId,
    },
    /// The block was lifted: the chat is heard again.
    Unblocked {
        chat: Chat,
        blocker: ObjectId,
        blocked: ObjectId,
    },
}

/// A dialect's rendering of one event: rooms to join and leave first, then events to send.
#[derive(Debug, Default)]
pub struct Rendered {
    /// (every connection in this room, joins this room)
    pub joins: Vec<(Room, Room)>,
    /// (every connection in this room, leaves this room)
    pub leaves: Vec<(Room, Room)>,
    pub outgoing: Vec<Outgoing>,
    /// Which of `outgoing` also answers the client whose request caused the event, for a
    /// dialect that answers with the event itself (see `Published::answer`).
    pub answer: Option<usize>,
}

impl Rendered {
    pub fn events(outgoing: Vec<Outgoing>) -> Self {
        Self {
            outgoing,
            ..Self::default()
        }
    }

    /// One event, which is also the answer to the client that caused it.
    pub fn answered(outgoing: Outgoing) -> Self {
        Self {
            outgoing: vec![outgoing],
            answer: Some(0),
            ..Self::default()
        }
    }
}

/// A dialect: how the core's events look to its clients. It says what happened in its own
/// words; the core decides who is told and who is pushed.
pub trait Dialect: Any + Send + Sync {
    /// Its name, which devices registered by its apps carry.
    fn name(&self) -> &'static str;

    fn render(&self, event: &ChatEvent) -> Rendered;

    /// What to push to `user` (who has no live connection) about the event, in words its
    /// apps show; `None` when it has none for this event.
    fn push(&self, _event: &ChatEvent, _user: &ObjectId) -> Option<PushText> {
        None
    }

    /// Group categories this dialect's clients expect to be always open to everyone.
    fn open_categories(&self) -> &'static [&'static str] {
        &[]
    }
}

/// What a user's badges count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Chat requests asked of them, not answered.
    pub pending_requests: u64,
    /// Messages of others in their one-to-one chats after their read marks.
    pub unread_messages: u64,
    /// One-to-one chats with such messages.
    pub unread_chats: u64,
}
