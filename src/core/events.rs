//! What happened, in the core's terms. Each dialect renders an event for its own clients;
//! the hub delivers it and pushes to recipients who are offline.

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::oid::ObjectId;
use rooms::{Outgoing, PushIntent, Report, Room, Route};

use super::Core;
use crate::store::{Chat, Message, Notification, NotificationKind, Participant, Score, User};

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
        origin: Origin,
    },
    ParticipantRemoved {
        chat: Chat,
        removed: Participant,
        by: User,
        /// Everyone who was in the chat, the removed participant included.
        members: Vec<ObjectId>,
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
    /// A notification was stored for its user; `push` says whether to push it when offline.
    Notified {
        notification: Notification,
        push: bool,
    },
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

pub trait Dialect: Send + Sync + 'static {
    fn render(&self, event: &ChatEvent) -> Rendered;

    /// Group categories this dialect's clients expect to be always open to everyone.
    fn open_categories(&self) -> &'static [&'static str] {
        &[]
    }
}

impl ChatEvent {
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
            } => vec![notification.user_id],
            _ => Vec::new(),
        }
    }

    fn push_intent(&self, user: &str) -> Option<PushIntent> {
        let (title, body, data) = match self {
            Self::MessagePosted {
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
            Self::ChatCreated { chat, creator, .. } => match &chat.group {
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
            Self::ParticipantsJoined { chat, by, .. } => (
                chat_name(chat),
                format!("{} added you to {}", by.username, chat_name(chat)),
                about(chat, "chat-joined"),
            ),
            Self::ParticipantRemoved { chat, by, .. } => (
                chat_name(chat),
                format!("{} removed you from {}", by.username, chat_name(chat)),
                about(chat, "chat-access-removed"),
            ),
            Self::AdminAccessChanged {
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
            Self::ParticipantAnswered {
                chat, participant, ..
            } => {
                let verdict = match participant.status {
                    Some(crate::store::Answer::Accepted) => "accepted",
                    _ => "declined",
                };
                (
                    chat_name(chat),
                    format!("Your place at {} was {verdict}", chat_name(chat)),
                    about(chat, "chat-participant-status-updated"),
                )
            }
            Self::Notified { notification, .. } => {
                let title = match notification.kind {
                    NotificationKind::Followed => "New follower",
                    NotificationKind::LikeRequested => "New like",
                    NotificationKind::LikeAnswered => "Your like was answered",
                    NotificationKind::MessageWhileOffline => "New message",
                };
                (
                    title.to_owned(),
                    notification.message.clone(),
                    [
                        ("event", "notification".to_owned()),
                        ("notification_id", notification.num.to_string()),
                    ],
                )
            }
            _ => return None,
        };
        let data = data
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<BTreeMap<_, _>>();
        Some(PushIntent {
            user: user.to_owned(),
            title,
            body,
            data,
        })
    }
}

fn about(chat: &Chat, event: &str) -> [(&'static str, String); 2] {
    [("chat_id", chat.id.to_hex()), ("event", event.to_owned())]
}

fn chat_name(chat: &Chat) -> String {
    chat.group
        .as_ref()
        .map_or_else(|| "A chat".to_owned(), |g| g.name.clone())
}

fn preview(content: &str) -> String {
    const MAX: usize = 100;
    match content.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &content[..cut]),
        None => content.to_owned(),
    }
}

impl Core {
    /// Render the event for every dialect, send each rendering through its dialect's transport
    /// only, and push to recipients with no live connection on any node.
    pub async fn publish(&self, event: ChatEvent) -> Report {
        let rendered: Vec<_> = self
            .dialects
            .read()
            .unwrap()
            .iter()
            .map(|(dialect, transport)| (transport.clone(), dialect.render(&event)))
            .collect();
        let routes: Vec<Route<'_>> = rendered
            .iter()
            .map(|(transport, r)| Route {
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
        let report = self
            .hub
            .deliver_or_push(&routes, &recipients, |u| event.push_intent(u))
            .await;
        if !report.pushed.is_empty() {
            tracing::debug!(
                pushed = report.pushed.len(),
                "offline recipients get a push"
            );
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::preview;

    #[test]
    fn previews_cut_long_content_on_a_char_boundary() {
        assert_eq!(preview("hi"), "hi");
        let long = "é".repeat(150);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), 101);
        assert!(cut.ends_with('…'));
    }
}
