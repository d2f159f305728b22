//! The Socket.IO Admin UI (`@socket.io/admin-ui`) for operators, off unless configured: on
//! each Socket.IO path an `/admin` namespace speaking what the official page expects, as
//! Node's `instrument()` does in development mode, and the page itself (`page.rs`).
//!
//! What the page gets:
//! - a sign-in with the operator's name and password (checked against a bcrypt hash), then a
//!   session it keeps to come back without the password, good on every node for a day;
//! - `config` (what it may do), then `all_sockets`: every socket of the path on every node,
//!   with its handshake (credentials left out) and rooms;
//! - every 2 s each node's `server_stats`, under that node's own server id;
//! - live: `socket_connected`, `socket_disconnected`, `socket_updated` (an upgrade),
//!   `room_joined` and `room_left`;
//! - its actions, on whatever node the sockets are: disconnect sockets, make them join or
//!   leave a room; each for one socket, a room's sockets, or the namespace's.
//!
//! While no operator watches this costs nothing per message or connection: pages hold a
//! presence key, which each node looks at every 2 s. Rooms change in many places (a socket's
//! own handlers, another node's word through the adapter), so a watched node compares each
//! of its sockets' rooms with what it last told the operators, every second, and tells them
//! the difference.

mod nodes;
pub mod page;
mod sockets;

use std::collections::{BTreeSet, HashMap};
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ConnectInfo;
use governor::{DefaultKeyedRateLimiter, Quota};
use rooms::{PresenceGuard, Present, Room};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{Data, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::DisconnectReason;

use super::{IoAdapter, Socket};
use crate::core::App;
use nodes::Nodes;
pub use sockets::Since;

/// The namespace the page connects to.
const NAMESPACE: &str = "/admin";
/// What the page may ask for. `EMIT` (sending any event to clients) is left out: the page
/// offers it nowhere, and an operator has no business speaking for the server.
const FEATURES: [&str; 8] = [
    "JOIN",
    "LEAVE",
    "DISCONNECT",
    "MJOIN",
    "MLEAVE",
    "MDISCONNECT",
    "AGGREGATED_EVENTS",
    "ALL_EVENTS",
];
/// How long a session lasts (as the admin's Redis store keeps one).
const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// Sign-in attempts per client address: a burst, then this many a minute.
const ATTEMPTS_PER_MINUTE: NonZeroU32 = NonZeroU32::new(10).unwrap();
/// Client addresses kept by that limit before idle ones are dropped.
const ATTEMPT_KEYS: usize = 10_000;
/// How often a watched node compares its sockets with what operators were told...
const CHANGES_EVERY: Duration = Duration::from_secs(1);
/// ...and every how many of those it sends its stats (and looks whether anyone watches).
const STATS_EVERY: u32 = 2;

/// The operator, from the settings (`ADMIN_USERNAME`, `ADMIN_PASSWORD_HASH`).
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    pub username: String,
    pub password_hash: String,
}

/// The operators' door, shared by every path: their credentials and this node's name.
pub struct Operators {
    config: OperatorConfig,
    attempts: DefaultKeyedRateLimiter<IpAddr>,
    server: Server,
}

/// This node as the page names it.
struct Server {
    id: String,
    hostname: String,
    pid: u32,
    started: Instant,
}

/// A connection the page is refused; its message is what the page shows.
#[derive(Debug)]
pub struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A session to hand the page once it is connected (it signed in with its password).
#[derive(Clone)]
struct NewSession(String);

/// An operator's page holds this while connected: every node then knows someone watches.
#[derive(Clone)]
struct Watching {
    _presence: Arc<PresenceGuard>,
}

impl Operators {
    pub fn new(config: OperatorConfig) -> Arc<Self> {
        let hostname = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let pid = std::process::id();
        Arc::new(Self {
            config,
            attempts: DefaultKeyedRateLimiter::keyed(Quota::per_minute(ATTEMPTS_PER_MINUTE)),
            server: Server {
                id: format!("{hostname}#{pid}"),
                hostname,
                pid,
                started: Instant::now(),
            },
        })
    }

    /// Let a page in with a session of its own, or the operator's name and password (then
    /// with a new session to keep).
    async fn sign_in(
        &self,
        app: &App,
        auth: &Value,
        address: Option<IpAddr>,
    ) -> Result<Option<NewSession>, Refused> {
        let field = |name: &str| auth.get(name).and_then(Value::as_str);
        if let Some(session) = field("sessionId")
            && app
                .tokens
                .operator_session(session)
                .is_ok_and(|name| name == self.config.username)
        {
            return Ok(None);
        }
        if self.attempts.len() > ATTEMPT_KEYS {
            self.attempts.retain_recent();
        }
        if address.is_some_and(|a| self.attempts.check_key(&a).is_err()) {
            return Err(Refused("too many attempts; try again in a minute"));
        }
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            return Err(Refused("invalid credentials"));
        };
        let password = password.to_owned();
        let hash = self.config.password_hash.clone();
        let matches =
            crate::core::secrets::hashing(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .map_err(|_| Refused("busy; try again shortly"))?;
        if !matches || username != self.config.username {
            tracing::info!(?address, "operator sign-in refused");
            return Err(Refused("invalid credentials"));
        }
        let session = app
            .tokens
            .issue_operator_session(username, SESSION_TTL)
            .map_err(|_| Refused("internal error"))?;
        tracing::info!(?address, "operator signed in to the admin UI");
        Ok(Some(NewSession(session)))
    }
}

/// What operators were last told of one of this node's sockets.
struct Told {
    nsp: String,
    transport: &'static str,
    rooms: BTreeSet<String>,
}

/// Events counted since the last stats (Node's aggregated events).
#[derive(Default)]
struct Tally(HashMap<(i64, &'static str, Option<&'static str>), u64>);

impl Tally {
    fn add(&mut self, kind: &'static str, sub: Option<&'static str>) {
        let second = now_ms() / 1000 * 1000;
        *self.0.entry((second, kind, sub)).or_default() += 1;
    }

    fn take(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.0)
            .into_iter()
            .map(|((timestamp, kind, sub), count)| {
                json!({ "timestamp": timestamp, "type": kind, "subType": sub, "count": count })
            })
            .collect()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

fn now() -> String {
    crate::http::time::iso_millis(bson::DateTime::now())
}

/// Why a socket went, in the words of Node's server (the page shows them).
fn reason(why: DisconnectReason) -> &'static str {
    match why {
        DisconnectReason::TransportClose => "transport close",
        DisconnectReason::TransportError => "transport error",
        DisconnectReason::HeartbeatTimeout => "ping timeout",
        DisconnectReason::ClientNSDisconnect => "client namespace disconnect",
        DisconnectReason::ServerNSDisconnect => "server namespace disconnect",
        DisconnectReason::ClosingServer => "server shutting down",
        DisconnectReason::MultipleHttpPollingError | DisconnectReason::PacketParsingError => {
            "parse error"
        }
    }
}

/// One Socket.IO path, instrumented for the Admin UI.
pub struct Instrument {
    path: &'static str,
    io: SocketIo<IoAdapter>,
    app: App,
    operators: Arc<Operators>,
    /// Whether an operator watches, here or on another node.
    watched: AtomicBool,
    told: Mutex<HashMap<String, Told>>,
    tally: Mutex<Tally>,
    nodes: OnceLock<Arc<Nodes>>,
}

impl Instrument {
    /// Open the `/admin` namespace on `io` and start reporting (when someone watches).
    pub async fn start(
        app: &App,
        io: &SocketIo<IoAdapter>,
        path: &'static str,
        operators: Arc<Operators>,
    ) -> anyhow::Result<Arc<Self>> {
        let instrument = Arc::new(Self {
            path,
            io: io.clone(),
            app: app.clone(),
            operators,
            watched: AtomicBool::new(false),
            told: Mutex::default(),
            tally: Mutex::default(),
            nodes: OnceLock::new(),
        });
        if let Some(link) = app.hub.cluster() {
            let nodes = Nodes::start(link.clone(), path, Arc::downgrade(&instrument)).await?;
            let _ = instrument.nodes.set(nodes);
        }
        let weak = Arc::downgrade(&instrument);
        let admit = {
            let weak = weak.clone();
            async move |socket: Socket, TryData(auth): TryData<Value>| -> Result<(), Refused> {
                let instrument = weak.upgrade().ok_or(Refused("server stopping"))?;
                let address = socket
                    .req_parts()
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(peer)| peer.ip());
                let auth = auth.unwrap_or(Value::Null);
                let app = &instrument.app;
                if let Some(session) = instrument.operators.sign_in(app, &auth, address).await? {
                    socket.extensions.insert(session);
                }
                Ok(())
            }
        };
        let connected = async move |socket: Socket| {
            if let Some(instrument) = weak.upgrade() {
                instrument.operator_connected(socket).await;
            }
        };
        io.ns(NAMESPACE, connected.with(admit))
            .await
            .map_err(|e| anyhow::anyhow!("opening {NAMESPACE} at {path}: {e:?}"))?;
        tokio::spawn(report(Arc::downgrade(&instrument)));
        tracing::info!(
            path,
            "the Socket.IO Admin UI may connect to the {NAMESPACE} namespace"
        );
        Ok(instrument)
    }

    /// What an operator's connection counts for in presence, on every node.
    fn watch(&self) -> Present {
        Present::Watch(format!("admin:{}", self.path))
    }

    fn is_watched(&self) -> bool {
        self.watched.load(Ordering::Relaxed)
    }

    async fn operator_connected(self: Arc<Self>, socket: Socket) {
        let watching = self.app.hub.connect(self.watch()).await;
        socket.extensions.insert(Watching {
            _presence: Arc::new(watching),
        });
        socket.extensions.insert(Since(SystemTime::now()));
        socket.join(Room::connection(&socket.id.to_string()).as_str().to_owned());
        if let Some(NewSession(session)) = socket.extensions.remove::<NewSession>() {
            let _ = socket.emit("session", &session);
        }
        let _ = socket.emit("config", &json!({ "supportedFeatures": FEATURES }));
        socket.on("join", join);
        socket.on("leave", leave);
        socket.on("_disconnect", disconnect);
        let sockets = self.all_sockets().await;
        let _ = socket.emit("all_sockets", &sockets);
        self.connected(&socket).await;
        let instrument = Arc::downgrade(&self);
        socket.on_disconnect(async move |socket: Socket, why: DisconnectReason| {
            socket.extensions.remove::<Watching>();
            if let Some(instrument) = instrument.upgrade() {
                instrument.disconnected(&socket, why).await;
            }
        });
    }

    /// A socket of this path connected here: operators watching are told.
    pub async fn connected(&self, socket: &Socket) {
        if !self.is_watched() {
            return;
        }
        self.tally.lock().unwrap().add("rawConnection", None);
        let described = self.remember(socket);
        self.tell("socket_connected", &(described, now())).await;
    }

    /// A socket of this path went away here.
    pub async fn disconnected(&self, socket: &Socket, why: DisconnectReason) {
        let id = socket.id.to_string();
        let was_told = self.told.lock().unwrap().remove(&id).is_some();
        if !self.is_watched() {
            return;
        }
        self.tally
            .lock()
            .unwrap()
            .add("rawDisconnection", Some(reason(why)));
        if was_told {
            self.tell(
                "socket_disconnected",
                &(socket.ns(), id, reason(why), now()),
            )
            .await;
        }
    }

    /// Describe a socket to the operators, and remember what they were told.
    fn remember(&self, socket: &Socket) -> Value {
        let described = sockets::describe(socket, &self.operators.server.id);
        let told = Told {
            nsp: socket.ns().to_owned(),
            transport: sockets::transport_name(socket.transport_type()),
            rooms: sockets::rooms(socket).into_iter().collect(),
        };
        self.told
            .lock()
            .unwrap()
            .insert(socket.id.to_string(), told);
        described
    }

    fn local_sockets(&self) -> Vec<Socket> {
        self.io
            .nsps()
            .into_iter()
            .flat_map(|nsp| nsp.local().sockets())
            .collect()
    }

    /// An operator watches from now on (one just connected, here or elsewhere): this node's
    /// sockets, as they are now told.
    fn watch_from_now(&self) -> Vec<Value> {
        self.watched.store(true, Ordering::Relaxed);
        self.told.lock().unwrap().clear();
        let local = self.local_sockets();
        local.iter().map(|socket| self.remember(socket)).collect()
    }

    /// Every socket of the path, on this node and the others.
    async fn all_sockets(&self) -> Vec<Value> {
        let mut sockets = self.watch_from_now();
        if let Some(nodes) = self.nodes.get() {
            sockets.extend(nodes.sockets().await);
        }
        sockets
    }

    /// Send an event to every operator's page, on every node.
    async fn tell<T: Serialize + ?Sized>(&self, event: &'static str, data: &T) {
        let Some(operators) = self.io.of(NAMESPACE) else {
            return;
        };
        if let Err(e) = operators.emit(event, data).await {
            tracing::debug!(event, "could not tell the operators: {e}");
        }
    }

    /// Whether anyone watches, on any node.
    async fn look_for_operators(&self) {
        let key = self.watch();
        let watched = self
            .app
            .hub
            .present_among(std::slice::from_ref(&key))
            .await
            .contains(&key);
        let was = self.watched.swap(watched, Ordering::Relaxed);
        if was && !watched {
            self.told.lock().unwrap().clear();
            self.tally.lock().unwrap().take();
        }
    }

    /// Tell the operators how this node's sockets changed since they were last told.
    async fn tell_changes(&self) {
        let mut changes: Vec<(&'static str, Args)> = Vec::new();
        let mut unseen = Vec::new();
        {
            let mut told = self.told.lock().unwrap();
            for socket in self.local_sockets() {
                let id = socket.id.to_string();
                let Some(was) = told.get_mut(&id) else {
                    unseen.push(socket);
                    continue;
                };
                let transport = sockets::transport_name(socket.transport_type());
                if transport != was.transport {
                    was.transport = transport;
                    let update = json!({ "id": id, "nsp": was.nsp, "transport": transport });
                    changes.push(("socket_updated", Args(vec![update])));
                }
                let rooms: BTreeSet<String> = sockets::rooms(&socket).into_iter().collect();
                let change = |room: &String| {
                    Args(vec![json!(was.nsp), json!(room), json!(id), json!(now())])
                };
                changes.extend(
                    rooms
                        .difference(&was.rooms)
                        .map(|r| ("room_joined", change(r))),
                );
                changes.extend(
                    was.rooms
                        .difference(&rooms)
                        .map(|r| ("room_left", change(r))),
                );
                was.rooms = rooms;
            }
        }
        for socket in unseen {
            // Connected while nobody watched, and still unknown to the operators.
            let described = self.remember(&socket);
            changes.push(("socket_connected", Args(vec![described, json!(now())])));
        }
        for (event, args) in changes {
            self.tell(event, &args).await;
        }
    }

    /// This node's stats, as Node's server sends them.
    fn stats(&self) -> Value {
        let server = &self.operators.server;
        let mut clients = 0;
        let mut polling = 0;
        let mut namespaces = Vec::new();
        for nsp in self.io.nsps() {
            let sockets = nsp.clone().local().sockets();
            clients += sockets.len();
            polling += sockets
                .iter()
                .filter(|s| s.transport_type() == socketioxide::TransportType::Polling)
                .count();
            namespaces.push(json!({ "name": nsp.ns_path(), "socketsCount": sockets.len() }));
        }
        // Plain WebSocket sessions have no Socket.IO namespace: each dialect's show as one.
        for (dialect, open) in self.app.hub.sessions().counts() {
            clients += open;
            let name = format!("{dialect} (plain WebSocket)");
            namespaces.push(json!({ "name": name, "socketsCount": open }));
        }
        json!({
            "serverId": server.id,
            "hostname": server.hostname,
            "pid": server.pid,
            "uptime": server.started.elapsed().as_secs_f64(),
            "clientsCount": clients,
            "pollingClientsCount": polling,
            "aggregatedEvents": self.tally.lock().unwrap().take(),
            "namespaces": namespaces,
        })
    }
}

/// The page's actions, each on the sockets it names on whatever node they are.
async fn join(io: SocketIo<IoAdapter>, Data(action): Data<Action<String>>) {
    if let Some(sockets) = action.sockets(&io)
        && let Err(e) = sockets.join(action.what).await
    {
        tracing::warn!("an operator's join failed: {e:?}");
    }
}

async fn leave(io: SocketIo<IoAdapter>, Data(action): Data<Action<String>>) {
    if let Some(sockets) = action.sockets(&io)
        && let Err(e) = sockets.leave(action.what).await
    {
        tracing::warn!("an operator's leave failed: {e:?}");
    }
}

/// Whether to close the whole connection or only leave the namespace is not up to the
/// server here: socketioxide disconnects sockets from their namespace only.
async fn disconnect(io: SocketIo<IoAdapter>, Data(action): Data<Action<bool>>) {
    tracing::info!(nsp = %action.nsp, filter = ?action.filter, "an operator disconnects sockets");
    if let Some(sockets) = action.sockets(&io)
        && let Err(e) = sockets.disconnect().await
    {
        tracing::warn!("an operator's disconnect failed: {e:?}");
    }
}

/// The arguments of one event, sent as a tuple is (a JSON array would be one argument).
struct Args(Vec<Value>);

impl Serialize for Args {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut args = serializer.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            args.serialize_element(arg)?;
        }
        args.end()
    }
}

/// An action's arguments as the page sends them: the namespace, what to do (a room, or
/// whether to close the connection too), and which sockets: one socket's id or a room's
/// name, or none for the whole namespace.
struct Action<T> {
    nsp: String,
    what: T,
    filter: Option<String>,
}

impl<T> Action<T> {
    fn sockets(&self, io: &SocketIo<IoAdapter>) -> Option<BroadcastOperators<IoAdapter>> {
        let nsp = io.of(&self.nsp)?;
        Some(match &self.filter {
            Some(filter) => nsp.to(filter.clone()),
            None => nsp,
        })
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Action<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Arguments<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Arguments<T> {
            type Value = Action<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a namespace, the action's argument, and maybe a filter")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Action<T>, A::Error> {
                let nsp = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let what = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let filter = seq.next_element::<Option<String>>()?.flatten();
                Ok(Action { nsp, what, filter })
            }
        }
        // A tuple, so that Socket.IO hands over every argument, not the first alone.
        deserializer.deserialize_tuple(3, Arguments(PhantomData))
    }
}

/// Every second while watched: what changed; every other second, whether anyone still
/// watches, and this node's stats.
async fn report(instrument: Weak<Instrument>) {
    let mut every = tokio::time::interval(CHANGES_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        every.tick().await;
        let Some(instrument) = instrument.upgrade() else {
            return;
        };
        if instrument.app.is_stopping() {
            return;
        }
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(STATS_EVERY) {
            instrument.look_for_operators().await;
            if instrument.is_watched() {
                let stats = instrument.stats();
                instrument.tell("server_stats", &stats).await;
            }
        }
        if instrument.is_watched() {
            instrument.tell_changes().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_take_an_optional_filter() {
        let one: Action<String> = serde_json::from_str(r#"["/", "room", "socket-id"]"#).unwrap();
        assert_eq!((one.nsp.as_str(), one.what.as_str()), ("/", "room"));
        assert_eq!(one.filter.as_deref(), Some("socket-id"));
        let all: Action<bool> = serde_json::from_str(r#"["/", true]"#).unwrap();
        assert!(all.what);
        assert_eq!(all.filter, None);
        let null: Action<String> = serde_json::from_str(r#"["/", "room", null]"#).unwrap();
        assert_eq!(null.filter, None);
        assert!(serde_json::from_str::<Action<String>>(r#"["/"]"#).is_err());
    }

    #[test]
    fn several_arguments_go_as_a_tuple() {
        let args = Args(vec![json!("/"), json!("room")]);
        assert_eq!(serde_json::to_value(&args).unwrap(), json!(["/", "room"]));
    }

    #[test]
    fn aggregated_events_are_counted_per_second_and_taken_once() {
        let mut tally = Tally::default();
        tally.add("rawConnection", None);
        tally.add("rawConnection", None);
        tally.add("rawDisconnection", Some("transport close"));
        let mut taken = tally.take();
        taken.sort_by_key(|e| e["type"].as_str().unwrap_or_default().to_owned());
        assert_eq!(taken[0]["type"], "rawConnection");
        assert_eq!(taken[0]["count"], 2);
        assert_eq!(taken[1]["subType"], "transport close");
        assert_eq!(taken[0]["timestamp"].as_i64().unwrap() % 1000, 0);
        assert!(tally.take().is_empty());
    }
}
