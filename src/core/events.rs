//! What happened, in the core's terms. Each dialect renders an event for its own clients;
//! the hub delivers it and pushes to recipients who are offline.

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::DateTime;
use bson::oid::ObjectId;
use rooms::{Audience, Outgoing, PushIntent, PushText, Report, Room, Route};

use super::Core;
use super::requests::Totals;
use crate::store::{Chat, Message, Notification, Participant, Score, User};
use crate::telemetry;

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
}

impl Rendered {
    pub fn events(outgoing: Vec<Outgoing>) -> Self {
        Self {
            outgoing,
            ..Self::default()
        }
    }
}

/// A dialect: how the core's events look to its clients. It says what happened in its own
/// words; the core decides who is told and who is pushed.
pub trait Dialect: Send + Sync + 'static {
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

impl ChatEvent {
    /// Which nodes hear of this: those holding a member of its chat, and those holding a user
    /// it concerns who is not (or no longer, or not yet known as) a member; and whose
    /// membership it changes, so that their nodes start or stop hearing the chat.
    fn audience(&self) -> Audience {
        let hex = |id: &ObjectId| id.to_hex();
        let member = |user: &ObjectId, chat: &Chat| (user.to_hex(), chat.id.to_hex());
        match self {
            Self::MessagePosted { chat, .. }
            | Self::MessageDeleted { chat, .. }
            | Self::ChatUpdated { chat, .. }
            | Self::AdminAccessChanged { chat, .. }
            | Self::ParticipantAnswered { chat, .. }
            | Self::Blocked { chat, .. }
            | Self::Unblocked { chat, .. } => Audience::chat(hex(&chat.id)),
            // Nobody hears the new chat yet: each member's node is told, and listens on it.
            Self::ChatCreated { chat, members, .. } => Audience {
                users: members.iter().map(|m| hex(&m.id)).collect(),
                joined: members.iter().map(|m| member(&m.id, chat)).collect(),
                ..Audience::default()
            },
            Self::ParticipantsJoined { chat, joined, .. } => Audience {
                chats: vec![hex(&chat.id)],
                users: joined.iter().map(|p| hex(&p.user_id)).collect(),
                joined: joined.iter().map(|p| member(&p.user_id, chat)).collect(),
                ..Audience::default()
            },
            Self::ParticipantRemoved { chat, removed, .. } => Audience {
                chats: vec![hex(&chat.id)],
                users: vec![hex(&removed.user_id)],
                left: vec![member(&removed.user_id, chat)],
                ..Audience::default()
            },
            Self::ChatDeleted { chat, members, .. } => Audience {
                chats: vec![hex(&chat.id)],
                left: members.iter().map(|m| member(m, chat)).collect(),
                ..Audience::default()
            },
            Self::RequestAnswered { chat, .. } => Audience {
                chats: vec![hex(&chat.id)],
                users: chat.request.iter().map(|r| hex(&r.from)).collect(),
                ..Audience::default()
            },
            Self::ScoreUpdated { user, .. } | Self::TotalsChanged { user, .. } => {
                Audience::user(hex(user))
            }
            Self::Notified { notification, .. } => Audience::user(hex(&notification.user_id)),
        }
    }

    /// Who should hear of this even when offline.
    fn push_recipients(&self) -> Vec<ObjectId> {
        match self {
            Self::MessagePosted {
                author, members, ..
            } => members
                .iter()
                .filter(|m| **m != author.id)
                .copied()
                .collect(),
            Self::ChatCreated {
                creator, members, ..
            } => members
                .iter()
                .map(|m| m.id)
                .filter(|m| *m != creator.id)
                .collect(),
            Self::ParticipantsJoined { joined, by, .. } => joined
                .iter()
                .map(|p| p.user_id)
                .filter(|u| *u != by.id)
                .collect(),
            Self::ParticipantRemoved { removed, by, .. } if removed.user_id != by.id => {
                vec![removed.user_id]
            }
            Self::AdminAccessChanged {
                participant, by, ..
            }
            | Self::ParticipantAnswered {
                participant, by, ..
            } if participant.user_id != by.id => vec![participant.user_id],
            Self::Notified {
                notification,
                push: true,
                ..
            } => vec![notification.user_id],
            Self::RequestAnswered {
                chat,
                accepted: true,
                ..
            } => chat.request.iter().map(|r| r.from).collect(),
            _ => Vec::new(),
        }
    }
}

/// What publishing an event did: who was online, offline or pushed, and what each dialect
/// rendered (so a reply to the client that caused it need not render it again).
#[derive(Debug)]
pub struct Published {
    pub report: Report,
    rendered: Vec<(&'static str, Rendered)>,
}

impl Published {
    /// The payload `dialect` rendered for its `event`.
    pub fn payload(&self, dialect: &str, event: &str) -> Option<&serde_json::Value> {
        self.rendered
            .iter()
            .filter(|(name, _)| *name == dialect)
            .flat_map(|(_, rendered)| &rendered.outgoing)
            .find(|out| out.event == event)
            .map(|out| &out.payload)
    }
}

impl Core {
    /// Render the event for every dialect, send each rendering through its dialect's transport
    /// only, and push to recipients with no live connection on any node, in the words of the
    /// dialects whose apps their devices run.
    pub async fn publish(&self, event: ChatEvent) -> Published {
        let dialects = self.dialects.read().unwrap().clone();
        let rendered: Vec<_> = dialects
            .iter()
            .map(|(dialect, _)| (dialect.name(), dialect.render(&event)))
            .collect();
        let routes: Vec<Route<'_>> = dialects
            .iter()
            .zip(&rendered)
            .map(|((_, transport), (dialect, r))| Route {
                dialect,
                transport: transport.as_ref(),
                joins: &r.joins,
                leaves: &r.leaves,
                outgoing: &r.outgoing,
            })
            .collect();
        let recipients: Vec<String> = event
            .push_recipients()
            .iter()
            .filter(|id| **id != self.system_user().id)
            .map(|id| id.to_hex())
            .collect();
        let push = |user: &String| {
            let id = ObjectId::parse_str(user).ok()?;
            let texts: BTreeMap<String, PushText> = dialects
                .iter()
                .filter_map(|(d, _)| Some((d.name().to_owned(), d.push(&event, &id)?)))
                .collect();
            (!texts.is_empty()).then(|| PushIntent {
                user: user.clone(),
                texts,
            })
        };
        let audience = event.audience();
        let report = self
            .hub
            .deliver_or_push(&routes, &audience, &recipients, push)
            .await;
        for (dialect, r) in &rendered {
            let dialect = *dialect;
            let count = r.outgoing.len() as u64;
            metrics::counter!(telemetry::EVENTS_OUT, "dialect" => dialect).increment(count);
        }
        if let ChatEvent::MessagePosted { message, .. } = &event {
            let stored = message.created_at.timestamp_millis();
            let waited = DateTime::now().timestamp_millis().saturating_sub(stored);
            metrics::histogram!(telemetry::DELIVERY_SECONDS).record(waited as f64 / 1000.0);
        }
        if !report.pushed.is_empty() {
            tracing::debug!(
                pushed = report.pushed.len(),
                "offline recipients get a push"
            );
        }
        Published { report, rendered }
    }
}
