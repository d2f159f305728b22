//! The publisher: what the core does with an event. Each dialect renders it, each rendering
//! goes through the transport its dialect's clients use, and recipients with no live
//! connection get a push; the publisher keeps the count.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::sync::Arc;

use bson::DateTime;
use bson::oid::ObjectId;
use rooms::{Audience, DialectTransports, PushIntent, PushText, Report, Route, Transport, UserId};

use super::Core;
use super::events::{ChatEvent, Dialect, Rendered};
use super::{HubUser, object_id};
use crate::store::Chat;
use crate::telemetry;

/// Every dialect with the transport its clients hear it through, fixed when the node starts.
pub struct Publisher {
    dialects: Vec<(Arc<dyn Dialect>, Arc<dyn Transport>)>,
}

impl Publisher {
    pub fn new(dialects: Vec<(Arc<dyn Dialect>, Arc<dyn Transport>)>) -> Self {
        Self { dialects }
    }

    /// Each dialect's transport by the dialect's name, to which what other nodes raise is
    /// handed.
    pub fn transports(&self) -> DialectTransports {
        let by_name = self.dialects.iter();
        by_name.map(|(d, t)| (d.name(), t.clone())).collect()
    }

    /// Categories in which groups are always open, as the dialects name them.
    pub fn open_categories(&self) -> impl Iterator<Item = &'static str> + '_ {
        let dialects = self.dialects.iter();
        dialects.flat_map(|(dialect, _)| dialect.open_categories().iter().copied())
    }
}

impl ChatEvent {
    /// Which nodes hear of this: those holding a member of its chat, and those holding a user
    /// it concerns who is not (or no longer, or not yet known as) a member; and whose
    /// membership it changes, so that their nodes start or stop hearing the chat.
    fn audience(&self) -> Audience {
        let hex = |id: &ObjectId| id.to_hex();
        let member = |user: &ObjectId, chat: &Chat| (user.hub_user(), chat.id.to_hex());
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
                users: members.iter().map(|m| m.id.hub_user()).collect(),
                joined: members.iter().map(|m| member(&m.id, chat)).collect(),
                ..Audience::default()
            },
            Self::ParticipantsJoined { chat, joined, .. } => Audience {
                chats: vec![hex(&chat.id)],
                users: joined.iter().map(|p| p.user_id.hub_user()).collect(),
                joined: joined.iter().map(|p| member(&p.user_id, chat)).collect(),
                ..Audience::default()
            },
            Self::ParticipantRemoved { chat, removed, .. } => Audience {
                chats: vec![hex(&chat.id)],
                users: vec![removed.user_id.hub_user()],
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
                users: chat.request.iter().map(|r| r.from.hub_user()).collect(),
                ..Audience::default()
            },
            Self::ScoreUpdated { user, .. } | Self::TotalsChanged { user, .. } => {
                Audience::user(user.hub_user())
            }
            Self::Notified { notification, .. } => Audience::user(notification.user_id.hub_user()),
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
    /// Each dialect's rendering, by the dialect's type.
    rendered: Vec<(TypeId, Rendered)>,
}

impl Published {
    /// What dialect `D` rendered as its answer to the client that caused the event, if it
    /// answers with the event.
    pub fn answer<D: Dialect>(&self) -> Option<&serde_json::Value> {
        let (_, rendered) = self
            .rendered
            .iter()
            .find(|(by, _)| *by == TypeId::of::<D>())?;
        Some(&rendered.outgoing.get(rendered.answer?)?.payload)
    }
}

/// `dialect`'s rendering of `event`, by the dialect's type (its concrete type's, through the
/// trait object).
fn rendering(dialect: &dyn Dialect, event: &ChatEvent) -> (TypeId, Rendered) {
    (Any::type_id(dialect), dialect.render(event))
}

impl Core {
    /// Render the event for every dialect, send each rendering through its dialect's transport
    /// only, and push to recipients with no live connection on any node, in the words of the
    /// dialects whose apps their devices run.
    pub async fn publish(&self, event: ChatEvent) -> Published {
        let dialects = &self.publisher.dialects;
        let rendered: Vec<(TypeId, Rendered)> = dialects
            .iter()
            .map(|(dialect, _)| rendering(dialect.as_ref(), &event))
            .collect();
        let routes: Vec<Route<'_>> = dialects
            .iter()
            .zip(&rendered)
            .map(|((dialect, transport), (_, r))| Route {
                dialect: dialect.name(),
                transport: transport.as_ref(),
                joins: &r.joins,
                leaves: &r.leaves,
                outgoing: &r.outgoing,
            })
            .collect();
        let recipients: Vec<UserId> = event
            .push_recipients()
            .iter()
            .filter(|id| **id != self.system_user().id)
            .map(HubUser::hub_user)
            .collect();
        let push = |user: UserId| {
            let id = object_id(user);
            let texts: BTreeMap<String, PushText> = dialects
                .iter()
                .filter_map(|(d, _)| Some((d.name().to_owned(), d.push(&event, &id)?)))
                .collect();
            (!texts.is_empty()).then_some(PushIntent { user, texts })
        };
        let audience = event.audience();
        let report = self
            .hub
            .deliver_or_push(&routes, &audience, &recipients, push)
            .await;
        for ((dialect, _), (_, r)) in dialects.iter().zip(&rendered) {
            let dialect = dialect.name();
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

#[cfg(test)]
mod tests {
    use rooms::{Outgoing, Room};
    use serde_json::json;

    use super::*;

    struct Answers;
    struct Silent;

    impl Dialect for Answers {
        fn name(&self) -> &'static str {
            "answers"
        }
        fn render(&self, _: &ChatEvent) -> Rendered {
            let said = Outgoing::new(Room::chat("answers", "c1"), "said", json!({ "n": 1 }));
            Rendered::answered(said)
        }
    }

    impl Dialect for Silent {
        fn name(&self) -> &'static str {
            "silent"
        }
        fn render(&self, _: &ChatEvent) -> Rendered {
            let said = Outgoing::new(Room::chat("silent", "c1"), "said", json!({ "n": 2 }));
            Rendered::events(vec![said])
        }
    }

    #[test]
    fn a_dialect_finds_its_own_answer_by_its_type() {
        let event = ChatEvent::TotalsChanged {
            user: ObjectId::new(),
            totals: Default::default(),
        };
        let dialects: [Arc<dyn Dialect>; 2] = [Arc::new(Silent), Arc::new(Answers)];
        let published = Published {
            report: Report::default(),
            rendered: dialects
                .iter()
                .map(|d| rendering(d.as_ref(), &event))
                .collect(),
        };
        assert_eq!(published.answer::<Answers>(), Some(&json!({ "n": 1 })));
        assert_eq!(published.answer::<Silent>(), None, "it renders no answer");
    }
}
