//! Who is connected, fan-out to rooms, and the deliver-or-push decision.
//!
//! Every chat is a room and every user has personal rooms holding all of their connections.
//! Transports (a Socket.IO server, the plain WebSocket sessions) do the actual sending, each to
//! its own connections; a user with no live connection anywhere gets a push intent instead.
//! Presence and fan-out work on one node by themselves, and across nodes on Redis
//! ([`cluster`]), each node hearing only what concerns its own users ([`routing`]). Nothing
//! here knows HTTP or the database.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub mod budget;
pub mod cluster;
mod connection;
mod presence;
pub mod routing;
mod sessions;

pub use presence::{LocalPresence, Presence, PresenceGuard};
pub use routing::Audience;
pub use sessions::{Counted, Ended, Frame, SESSION_QUEUE, Session, Sessions};

/// A user: the 12 bytes of their id (a MongoDB ObjectId's, in Palaver). It is copied, hashed
/// and compared without allocating; Redis keys, channel names, rooms and logs write it as 24
/// lowercase hex digits, as an ObjectId is written.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId([u8; 12]);

impl UserId {
    pub const fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }

    pub const fn bytes(self) -> [u8; 12] {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0u8; 24];
        hex::encode_to_slice(self.0, &mut text).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for UserId {
    type Err = hex::FromHexError;

    /// 24 hex digits, either case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 12];
        hex::decode_to_slice(text, &mut bytes)?;
        Ok(Self(bytes))
    }
}

/// Between nodes a user travels as text, as it did when ids were strings.
impl Serialize for UserId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a live connection counts for in presence: its user, or something it watches on their
/// behalf, named by the caller (e.g. a user's totals), so that the core knows someone on some
/// node is watching for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Present {
    User(UserId),
    Watch(String),
}

impl fmt::Display for Present {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(user) => user.fmt(f),
            Self::Watch(name) => f.write_str(name),
        }
    }
}

/// A named group of connections. Its name is this crate's business: callers build rooms
/// with the constructors below and never parse one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Room(String);

impl Room {
    /// A user's connections that speak `dialect`.
    pub fn user(dialect: &str, user: UserId) -> Self {
        Self(format!("{dialect}/user:{user}"))
    }

    /// The connections of `dialect` that follow a chat.
    pub fn chat(dialect: &str, chat: &str) -> Self {
        Self(format!("{dialect}/chat:{chat}"))
    }

    /// One connection on its own, so an event can leave it out or an operator reach it.
    /// Named by the connection's id alone, as Socket.IO names a socket's own room (ids hold
    /// no `:`, so no other room is named alike).
    pub fn connection(id: &str) -> Self {
        Self(id.to_owned())
    }

    /// Every connection signed in as this user, whatever its dialect: what a sign-out closes
    /// and what a membership change moves.
    pub fn account(user: UserId) -> Self {
        Self(format!("account:{user}"))
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    pub rooms: Vec<Room>,
    /// Connections in this room are left out (e.g. the device that made the change).
    pub except: Option<Room>,
    pub event: Cow<'static, str>,
    pub payload: serde_json::Value,
    /// The id of what the event carries (a message's), by which a connection that was already
    /// sent it another way drops a repeat (see `Frame::id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
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
            id: None,
        }
    }

    /// The event carries the thing with this id (see `id`).
    pub fn with_id(mut self, id: i64) -> Self {
        self.id = Some(id);
        self
    }

    pub fn except(mut self, room: Option<Room>) -> Self {
        self.except = room;
        self
    }
}

/// Why a transport closes connections it was told to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Closing {
    /// The user signed out, or their sessions were revoked.
    SignedOut,
    /// The server is stopping.
    Shutdown,
    /// The node could not keep up with what concerns these connections: their clients should
    /// reconnect and catch up.
    FellBehind,
}

/// Something that can reach this node's connections by room: a Socket.IO server, the
/// WebSocket sessions. The hub takes each operation to the other nodes concerned.
pub trait Transport: Send + Sync + 'static {
    /// Send the event to every connection in its rooms.
    fn emit<'a>(&'a self, outgoing: &'a Outgoing) -> BoxFuture<'a, ()>;
    /// Make every connection currently in `members_of` also join `room`.
    fn join<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()>;
    /// Make every connection currently in `members_of` leave `room`.
    fn leave<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()>;
    /// Close every connection in `members_of`.
    fn disconnect<'a>(&'a self, members_of: &'a Room, why: Closing) -> BoxFuture<'a, ()>;
}

/// What a push says, in the words of one dialect's apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushText {
    pub title: String,
    pub body: String,
    pub data: BTreeMap<String, String>,
}

/// What a user with no live connection should be told: the same news in the words of each
/// dialect that has words for it, keyed by dialect. Each device gets its own app's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushIntent {
    pub user: UserId,
    pub texts: BTreeMap<String, PushText>,
}

impl PushIntent {
    /// The text for a device of `dialect`'s app; a device of an app with no words for this
    /// news (or of an unknown app) gets another dialect's rather than nothing.
    pub fn text_for(&self, dialect: Option<&str>) -> Option<&PushText> {
        dialect
            .and_then(|d| self.texts.get(d))
            .or_else(|| self.texts.values().next())
    }
}

/// Takes push intents. It must not block: delivery happens elsewhere.
pub trait PushSink: Send + Sync + 'static {
    fn push(&self, intent: PushIntent);

    /// Pushes accepted but not yet sent, for a stopping node to wait on.
    fn pending(&self) -> usize {
        0
    }
}

/// What one dialect's transport should do for one event: rooms to join and leave first, then
/// events.
pub struct Route<'a> {
    /// The dialect rendered for, whose transport carries it on every node.
    pub dialect: &'static str,
    pub transport: &'a dyn Transport,
    /// (every connection in this room, joins this room)
    pub joins: &'a [(Room, Room)],
    /// (every connection in this room, leaves this room)
    pub leaves: &'a [(Room, Room)],
    pub outgoing: &'a [Outgoing],
}

/// Rooms to join and leave first, then events: what one transport does for one event, here.
async fn carry_out(
    transport: &dyn Transport,
    joins: &[(Room, Room)],
    leaves: &[(Room, Room)],
    outgoing: &[Outgoing],
) {
    for (members_of, room) in joins {
        transport.join(members_of, room).await;
    }
    for (members_of, room) in leaves {
        transport.leave(members_of, room).await;
    }
    for out in outgoing {
        transport.emit(out).await;
    }
}

/// Each dialect's transport on this node by the dialect's name, fixed when the hub is made.
pub(crate) struct Transports(Vec<(&'static str, Arc<dyn Transport>)>);

impl Transports {
    pub(crate) fn of(&self, dialect: &str) -> Option<&dyn Transport> {
        let found = self.0.iter().find(|(name, _)| *name == dialect);
        found.map(|(_, transport)| transport.as_ref())
    }

    /// Close the connections in `members_of`, through each transport once.
    pub(crate) async fn disconnect(&self, members_of: &Room, why: Closing) {
        let mut distinct: Vec<&Arc<dyn Transport>> = Vec::new();
        for (_, transport) in &self.0 {
            if !distinct.iter().any(|t| Arc::ptr_eq(t, transport)) {
                distinct.push(transport);
            }
        }
        for transport in distinct {
            transport.disconnect(members_of, why).await;
        }
    }
}

/// What `deliver_or_push` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub online: Vec<UserId>,
    /// Recipients with no live connection anywhere, pushed or not.
    pub offline: Vec<UserId>,
    pub pushed: Vec<UserId>,
}

/// Presence, pushes and this node's WebSocket sessions, on one node or many.
pub struct Hub {
    presence: Arc<dyn Presence>,
    push: Arc<dyn PushSink>,
    sessions: Arc<Sessions>,
    transports: Arc<Transports>,
    cluster: Option<Arc<cluster::RedisLink>>,
    router: Option<Arc<routing::Router>>,
    budgets: budget::UserBudgets,
}

/// A live connection of a user: their presence, and (clustered) this node hearing what
/// concerns them, until dropped.
pub struct Attendance {
    _presence: PresenceGuard,
    _routing: Option<routing::Attending>,
}

/// Each dialect's transport, by the dialect's name: what closes a user's connections here, and
/// what events from other nodes are handed to.
pub type DialectTransports = Vec<(&'static str, Arc<dyn Transport>)>;

impl Hub {
    /// A single node: presence is this process's connections, and nothing is shared. Its
    /// WebSocket sessions are `sessions`, which may be among `transports`.
    pub fn single_node(
        push: Arc<dyn PushSink>,
        sessions: Arc<Sessions>,
        transports: DialectTransports,
    ) -> Self {
        Self {
            presence: Arc::new(LocalPresence::default()),
            push,
            sessions,
            transports: Arc::new(Transports(transports)),
            cluster: None,
            router: None,
            budgets: budget::UserBudgets::new(None),
        }
    }

    /// One node of many sharing `link`: presence is cluster-wide, and this node hears the
    /// events that concern its users, raised on any node.
    pub async fn clustered(
        push: Arc<dyn PushSink>,
        link: Arc<cluster::RedisLink>,
        sessions: Arc<Sessions>,
        transports: DialectTransports,
    ) -> Self {
        Self::clustered_with_backlog(push, link, routing::BACKLOG, sessions, transports).await
    }

    /// As `clustered`, holding at most `backlog` messages from other nodes not yet handed to
    /// this node's connections.
    pub async fn clustered_with_backlog(
        push: Arc<dyn PushSink>,
        link: Arc<cluster::RedisLink>,
        backlog: usize,
        sessions: Arc<Sessions>,
        transports: DialectTransports,
    ) -> Self {
        let transports = Arc::new(Transports(transports));
        let router = routing::Router::start(link.clone(), transports.clone(), backlog);
        Self {
            presence: cluster::RedisPresence::start(link.clone()),
            push,
            sessions,
            budgets: budget::UserBudgets::new(Some(link.clone())),
            router: Some(router.await),
            transports,
            cluster: Some(link),
        }
    }

    /// How many messages this node heard from Redis about its users' events (0 alone).
    pub fn messages_heard(&self) -> u64 {
        self.router.as_ref().map_or(0, |r| r.heard_count())
    }

    /// How many Redis channels this node listens on (0 alone).
    pub fn channels_listened(&self) -> usize {
        self.router.as_ref().map_or(0, |r| r.listening())
    }

    /// This node's plain WebSocket sessions.
    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// Spend one event of `user`'s, shared by all their connections (see `budget`); false
    /// when they are sending too fast.
    pub fn spend_event(&self, user: UserId) -> bool {
        self.budgets.spend(user)
    }

    /// Pushes accepted but not yet sent.
    pub fn pushes_pending(&self) -> usize {
        self.push.pending()
    }

    /// The link to the other nodes, when there are any.
    pub fn cluster(&self) -> Option<&Arc<cluster::RedisLink>> {
        self.cluster.as_ref()
    }

    /// Count a live connection for `present` until the guard is dropped. Once this returns,
    /// every node sees it present.
    pub async fn connect(&self, present: Present) -> PresenceGuard {
        PresenceGuard::new(self.presence.clone(), present).await
    }

    /// A live connection of `user`, a member of `chats` (read only when needed): once this
    /// returns, every node sees the user online and this node hears what concerns them.
    pub async fn attend(
        &self,
        user: UserId,
        chats: impl Future<Output = Vec<String>>,
    ) -> Attendance {
        let routing = match &self.router {
            Some(router) => Some(router.attend(user, chats).await),
            None => None,
        };
        Attendance {
            _presence: self.connect(Present::User(user)).await,
            _routing: routing,
        }
    }

    /// Close every connection of `user`, here and on every node.
    pub async fn close_user(&self, user: UserId, why: Closing) {
        self.transports.disconnect(&Room::account(user), why).await;
        if let Some(router) = &self.router {
            router.close_user(user, why).await;
        }
    }

    /// Of `users`, those with a live connection on any node (one query at most).
    pub async fn online_among(&self, users: &[UserId]) -> HashSet<UserId> {
        let users: Vec<Present> = users.iter().copied().map(Present::User).collect();
        let online = self.present_among(&users).await;
        let user = |present| match present {
            Present::User(user) => Some(user),
            Present::Watch(_) => None,
        };
        online.into_iter().filter_map(user).collect()
    }

    /// Of `wanted`, those some live connection counts for on any node (one query at most).
    pub async fn present_among(&self, wanted: &[Present]) -> HashSet<Present> {
        if wanted.is_empty() {
            return HashSet::new();
        }
        self.presence.present_among(wanted).await
    }

    /// Carry out each route here and on the other nodes `audience` concerns, then push to
    /// each recipient who has no live connection anywhere.
    pub async fn deliver_or_push(
        &self,
        routes: &[Route<'_>],
        audience: &Audience,
        recipients: &[UserId],
        push: impl Fn(UserId) -> Option<PushIntent>,
    ) -> Report {
        for route in routes {
            carry_out(route.transport, route.joins, route.leaves, route.outgoing).await;
        }
        if let Some(router) = &self.router {
            let steps = routes
                .iter()
                .filter(|r| !(r.joins.is_empty() && r.leaves.is_empty() && r.outgoing.is_empty()))
                .map(|r| routing::StepOut {
                    dialect: r.dialect,
                    joins: r.joins,
                    leaves: r.leaves,
                    outgoing: r.outgoing,
                })
                .collect();
            router.publish(audience, steps, None).await;
        }
        let online = self.online_among(recipients).await;
        let mut report = Report::default();
        for user in recipients {
            if online.contains(user) {
                report.online.push(*user);
                continue;
            }
            report.offline.push(*user);
            if let Some(intent) = push(*user) {
                self.push.push(intent);
                report.pushed.push(*user);
            }
        }
        report
    }
}

/// A user for tests, by a letter of their name.
#[cfg(test)]
pub(crate) fn user(name: char) -> UserId {
    UserId::from_bytes([name as u8; 12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recording {
        emitted: Mutex<Vec<Outgoing>>,
        moves: Mutex<Vec<String>>,
        pushed: Mutex<Vec<PushIntent>>,
    }

    impl Transport for Recording {
        fn emit<'a>(&'a self, outgoing: &'a Outgoing) -> BoxFuture<'a, ()> {
            self.emitted.lock().unwrap().push(outgoing.clone());
            Box::pin(async {})
        }
        fn join<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()> {
            let said = format!("join {members_of} {room}");
            self.moves.lock().unwrap().push(said);
            Box::pin(async {})
        }
        fn leave<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()> {
            let said = format!("leave {members_of} {room}");
            self.moves.lock().unwrap().push(said);
            Box::pin(async {})
        }
        fn disconnect<'a>(&'a self, members_of: &'a Room, why: Closing) -> BoxFuture<'a, ()> {
            let said = format!("disconnect {members_of} {why:?}");
            self.moves.lock().unwrap().push(said);
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
        (
            Hub::single_node(recording.clone(), Arc::default(), Vec::new()),
            recording,
        )
    }

    fn intent(user: UserId) -> Option<PushIntent> {
        let text = PushText {
            title: "New message".into(),
            body: "hi".into(),
            data: BTreeMap::new(),
        };
        let texts = BTreeMap::from([("channels".to_owned(), text)]);
        Some(PushIntent { user, texts })
    }

    #[test]
    fn each_device_gets_its_apps_words_or_else_anyones() {
        let text = |title: &str| PushText {
            title: title.into(),
            body: String::new(),
            data: BTreeMap::new(),
        };
        let intent = PushIntent {
            user: user('a'),
            texts: BTreeMap::from([("chats".into(), text("a")), ("hooks".into(), text("b"))]),
        };
        assert_eq!(intent.text_for(Some("hooks")).unwrap().title, "b");
        assert_eq!(intent.text_for(Some("chats")).unwrap().title, "a");
        assert_eq!(intent.text_for(Some("requests")).unwrap().title, "a");
        assert_eq!(intent.text_for(None).unwrap().title, "a");
    }

    fn hello(room: Room) -> Outgoing {
        Outgoing::new(room, "message", serde_json::json!({"content": "hi"}))
    }

    fn route<'a>(transport: &'a Recording, outgoing: &'a [Outgoing]) -> Route<'a> {
        Route {
            dialect: "channels",
            transport,
            joins: &[],
            leaves: &[],
            outgoing,
        }
    }

    #[test]
    fn a_user_is_twelve_bytes_written_as_24_hex_digits() {
        let text = "652f1c0e9a0b4c3d2e1f0a9b";
        let ada: UserId = text.parse().unwrap();
        assert_eq!(ada.to_string(), text);
        assert_eq!(std::mem::size_of::<UserId>(), 12);
        let between_nodes = serde_json::to_string(&ada).unwrap();
        assert_eq!(between_nodes, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<UserId>(&between_nodes).unwrap(), ada);
        assert!("652f1c0e".parse::<UserId>().is_err());
        assert!("not an id at all, but 24".parse::<UserId>().is_err());
    }

    #[test]
    fn room_names_are_per_dialect() {
        assert_eq!(Room::chat("channels", "abc").as_str(), "channels/chat:abc");
        assert_eq!(
            Room::user("channels", user('c')).to_string(),
            format!("channels/user:{}", user('c'))
        );
        assert_ne!(Room::chat("channels", "abc"), Room::chat("chats", "abc"));
        assert_ne!(Room::account(user('c')), Room::user("channels", user('c')));
    }

    #[tokio::test]
    async fn online_users_get_the_event_and_offline_users_a_push() {
        let (hub, recording) = hub();
        let _ada = hub.connect(Present::User(user('a'))).await;
        let out = [hello(Room::chat("channels", "c1"))];
        let recipients = vec![user('a'), user('b')];

        let report = hub
            .deliver_or_push(
                &[route(&recording, &out)],
                &Audience::default(),
                &recipients,
                intent,
            )
            .await;

        assert_eq!(report.online, vec![user('a')]);
        assert_eq!(report.offline, vec![user('b')]);
        assert_eq!(report.pushed, vec![user('b')]);
        assert_eq!(*recording.emitted.lock().unwrap(), out.to_vec());
        let pushed = recording.pushed.lock().unwrap();
        assert_eq!(pushed.len(), 1);
        assert_eq!(pushed[0].user, user('b'));
    }

    #[tokio::test]
    async fn a_dropped_guard_makes_its_user_offline() {
        let (hub, _) = hub();
        let users = [user('a')];
        let first = hub.connect(Present::User(user('a'))).await;
        let second = hub.connect(Present::User(user('a'))).await;
        drop(first);
        assert!(hub.online_among(&users).await.contains(&user('a')));
        drop(second);
        assert!(hub.online_among(&users).await.is_empty());
    }

    #[tokio::test]
    async fn no_push_when_the_event_does_not_warrant_one() {
        let (hub, recording) = hub();
        let report = hub
            .deliver_or_push(&[], &Audience::default(), &[user('b')], |_| None)
            .await;
        assert!(report.pushed.is_empty() && report.online.is_empty());
        assert_eq!(report.offline, vec![user('b')]);
        assert!(recording.pushed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn each_route_goes_to_its_own_transport_only() {
        let (hub, first) = hub();
        let second = Recording::default();
        let to_first = [hello(Room::chat("channels", "c1"))];
        let to_second = [hello(Room::chat("hooks", "c1"))];
        let joins = [(Room::account(user('1')), Room::chat("hooks", "c1"))];
        let leaves = [(Room::account(user('2')), Room::chat("hooks", "c1"))];
        let routes = [
            route(&first, &to_first),
            Route {
                dialect: "hooks",
                transport: &second,
                joins: &joins,
                leaves: &leaves,
                outgoing: &to_second,
            },
        ];
        hub.deliver_or_push(&routes, &Audience::default(), &[], |_| None)
            .await;
        assert_eq!(*first.emitted.lock().unwrap(), to_first.to_vec());
        assert_eq!(*second.emitted.lock().unwrap(), to_second.to_vec());
        assert!(first.moves.lock().unwrap().is_empty());
        assert_eq!(
            *second.moves.lock().unwrap(),
            vec![
                format!("join account:{} hooks/chat:c1", user('1')),
                format!("leave account:{} hooks/chat:c1", user('2'))
            ]
        );
    }
}
