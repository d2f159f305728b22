//! Who is connected, fan-out to rooms, and the deliver-or-push decision.
//!
//! Every chat is a room and every user has a personal room holding all of their sockets and
//! sessions. Transports (Socket.IO, plain WebSocket) do the actual sending; a user with no live
//! connection gets a push intent instead. Nothing here knows HTTP or the database.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use futures::future::BoxFuture;

mod sessions;
pub use sessions::{SESSION_QUEUE, Session, Sessions};

/// A user's id as the core knows it (a 24-hex ObjectId in Palaver).
pub type UserId = String;

/// A named group of connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Room(pub String);

impl Room {
    /// The personal room of a user: every live connection of that user.
    pub fn user(dialect: &str, user: &str) -> Self {
        Self(format!("{dialect}/user:{user}"))
    }

    pub fn chat(dialect: &str, chat: &str) -> Self {
        Self(format!("{dialect}/chat:{chat}"))
    }

    /// One connection on its own, so an event can leave it out.
    pub fn connection(id: &str) -> Self {
        Self(format!("connection:{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One event for the connections in some rooms, already rendered in its dialect's shape.
/// A connection in several of the rooms gets it once.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub rooms: Vec<Room>,
    /// Connections in this room are left out (e.g. the device that made the change).
    pub except: Option<Room>,
    pub event: Cow<'static, str>,
    pub payload: serde_json::Value,
}

impl Outgoing {
    pub fn new(
        room: Room,
        event: impl Into<Cow<'static, str>>,
        payload: serde_json::Value,
    ) -> Self {
        Self::to_all(vec![room], event, payload)
    }

    pub fn to_all(
        rooms: Vec<Room>,
        event: impl Into<Cow<'static, str>>,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            rooms,
            except: None,
            event: event.into(),
            payload,
        }
    }

    pub fn except(mut self, room: Option<Room>) -> Self {
        self.except = room;
        self
    }
}

/// Something that can send to rooms: a Socket.IO server, a set of WebSocket sessions.
pub trait Transport: Send + Sync + 'static {
    /// Send the event to every connection in its room.
    fn emit<'a>(&'a self, outgoing: &'a Outgoing) -> BoxFuture<'a, ()>;
    /// Make every connection currently in `members_of` also join `room`.
    fn join<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()>;
}

/// What a user with no live connection should be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushIntent {
    pub user: UserId,
    pub title: String,
    pub body: String,
    pub data: BTreeMap<String, String>,
}

/// Takes push intents. It must not block: delivery happens elsewhere.
pub trait PushSink: Send + Sync + 'static {
    fn push(&self, intent: PushIntent);
}

/// Counts live connections per user.
#[derive(Debug, Default)]
pub struct Presence {
    live: Mutex<HashMap<UserId, usize>>,
}

impl Presence {
    pub fn connected(&self, user: &str) {
        *self
            .live
            .lock()
            .unwrap()
            .entry(user.to_owned())
            .or_default() += 1;
    }

    pub fn disconnected(&self, user: &str) {
        let mut live = self.live.lock().unwrap();
        if let Some(count) = live.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                live.remove(user);
            }
        }
    }

    pub fn is_online(&self, user: &str) -> bool {
        self.live.lock().unwrap().contains_key(user)
    }

    pub fn online_users(&self) -> usize {
        self.live.lock().unwrap().len()
    }
}

/// What `deliver_or_push` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub online: Vec<UserId>,
    pub pushed: Vec<UserId>,
}

pub struct Hub {
    presence: Presence,
    sessions: Arc<Sessions>,
    transports: RwLock<Vec<Arc<dyn Transport>>>,
    push: Arc<dyn PushSink>,
}

impl Hub {
    /// A hub whose first transport is its own plain WebSocket sessions.
    pub fn new(push: Arc<dyn PushSink>) -> Self {
        let sessions = Arc::new(Sessions::default());
        let transports: Vec<Arc<dyn Transport>> = vec![sessions.clone()];
        Self {
            presence: Presence::default(),
            sessions,
            transports: RwLock::new(transports),
            push,
        }
    }

    /// The plain WebSocket sessions.
    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// Transports are added once their servers exist, which is after the hub.
    pub fn add_transport(&self, transport: Arc<dyn Transport>) {
        self.transports.write().unwrap().push(transport);
    }

    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    fn transports(&self) -> Vec<Arc<dyn Transport>> {
        self.transports.read().unwrap().clone()
    }

    /// Send every event through every transport.
    pub async fn deliver(&self, outgoing: &[Outgoing]) {
        for transport in self.transports() {
            for out in outgoing {
                transport.emit(out).await;
            }
        }
    }

    /// Send the events, and push to each recipient who has no live connection.
    pub async fn deliver_or_push(
        &self,
        recipients: &[UserId],
        outgoing: &[Outgoing],
        push: impl Fn(&UserId) -> Option<PushIntent>,
    ) -> Report {
        self.deliver(outgoing).await;
        let mut report = Report::default();
        for user in recipients {
            if self.presence.is_online(user) {
                report.online.push(user.clone());
            } else if let Some(intent) = push(user) {
                self.push.push(intent);
                report.pushed.push(user.clone());
            }
        }
        report
    }

    /// Make the live connections of each user join `room` (e.g. a chat that was just created).
    pub async fn join_users(&self, user_rooms: &[Room], room: &Room) {
        for transport in self.transports() {
            for user_room in user_rooms {
                transport.join(user_room, room).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recording {
        emitted: Mutex<Vec<Outgoing>>,
        joined: Mutex<Vec<(Room, Room)>>,
        pushed: Mutex<Vec<PushIntent>>,
    }

    impl Transport for Recording {
        fn emit<'a>(&'a self, outgoing: &'a Outgoing) -> BoxFuture<'a, ()> {
            self.emitted.lock().unwrap().push(outgoing.clone());
            Box::pin(async {})
        }
        fn join<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()> {
            self.joined
                .lock()
                .unwrap()
                .push((members_of.clone(), room.clone()));
            Box::pin(async {})
        }
    }

    impl PushSink for Recording {
        fn push(&self, intent: PushIntent) {
            self.pushed.lock().unwrap().push(intent);
        }
    }

    fn hub() -> (Hub, Arc<Recording>) {
        let recording = Arc::new(Recording::default());
        let hub = Hub::new(recording.clone());
        hub.add_transport(recording.clone());
        (hub, recording)
    }

    fn intent(user: &UserId) -> Option<PushIntent> {
        Some(PushIntent {
            user: user.clone(),
            title: "New message".into(),
            body: "hi".into(),
            data: BTreeMap::new(),
        })
    }

    fn hello(room: Room) -> Outgoing {
        Outgoing::new(room, "message", serde_json::json!({"content": "hi"}))
    }

    #[test]
    fn presence_counts_each_connection() {
        let presence = Presence::default();
        presence.connected("ada");
        presence.connected("ada");
        presence.disconnected("ada");
        assert!(presence.is_online("ada"));
        presence.disconnected("ada");
        assert!(!presence.is_online("ada"));
        assert_eq!(presence.online_users(), 0);
        // A stray disconnect does not underflow or resurrect the user.
        presence.disconnected("ada");
        assert!(!presence.is_online("ada"));
    }

    #[test]
    fn room_names_are_per_dialect() {
        assert_eq!(Room::chat("channels", "abc").as_str(), "channels/chat:abc");
        assert_eq!(
            Room::user("channels", "abc").to_string(),
            "channels/user:abc"
        );
        assert_ne!(Room::chat("channels", "abc"), Room::chat("chats", "abc"));
    }

    #[tokio::test]
    async fn online_users_get_the_event_and_offline_users_a_push() {
        let (hub, recording) = hub();
        hub.presence().connected("ada");
        let out = [hello(Room::chat("channels", "c1"))];
        let recipients = vec!["ada".to_string(), "bob".to_string()];

        let report = hub.deliver_or_push(&recipients, &out, intent).await;

        assert_eq!(report.online, vec!["ada".to_string()]);
        assert_eq!(report.pushed, vec!["bob".to_string()]);
        assert_eq!(*recording.emitted.lock().unwrap(), out.to_vec());
        let pushed = recording.pushed.lock().unwrap();
        assert_eq!(pushed.len(), 1);
        assert_eq!(pushed[0].user, "bob");
    }

    #[tokio::test]
    async fn no_push_when_the_event_does_not_warrant_one() {
        let (hub, recording) = hub();
        let report = hub
            .deliver_or_push(&["bob".to_string()], &[], |_| None)
            .await;
        assert!(report.pushed.is_empty() && report.online.is_empty());
        assert!(recording.pushed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn every_transport_gets_every_event() {
        let (hub, first) = hub();
        let second = Arc::new(Recording::default());
        hub.add_transport(second.clone());
        let out = [
            hello(Room::chat("channels", "c1")),
            hello(Room::user("channels", "u1")),
        ];
        hub.deliver(&out).await;
        assert_eq!(first.emitted.lock().unwrap().len(), 2);
        assert_eq!(*second.emitted.lock().unwrap(), out.to_vec());
    }

    #[tokio::test]
    async fn join_users_asks_every_transport() {
        let (hub, recording) = hub();
        let users = [Room::user("channels", "u1"), Room::user("channels", "u2")];
        hub.join_users(&users, &Room::chat("channels", "c1")).await;
        let joined = recording.joined.lock().unwrap();
        assert_eq!(joined.len(), 2);
        assert_eq!(joined[1], (users[1].clone(), Room::chat("channels", "c1")));
    }
}
