//! Socket.IO, set up once per path: its limits, its adapter (through Redis when clustered, for
//! the Admin UI's actions across nodes; chat events go through the hub's routing), the
//! handshake's authentication, and each connection's attendance and event budget. The
//! dialects attached to a path then add their handlers and rooms; they never see each other.

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use axum::http::request::Parts;
use futures::future::{BoxFuture, join_all};
use rooms::{Attendance, Closing, Outgoing, PresenceGuard, Present, Room, Transport};
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::{Adapter, Emitter};
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts, Value as PacketValue};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::{DisconnectReason, Socket as RawSocket};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use super::admin::{Instrument, Operators, Since};
use super::budget::EventBudget;
use super::driver::LinkDriver;
use crate::auth::TokenForm;
use crate::core::App;
use crate::core::HubUser;
use crate::error::Error;
use crate::store::User;
use crate::telemetry;

/// Every path's adapter: socketioxide-redis, publishing through the node's Redis link when
/// there is one, local only otherwise. Palaver's own transport uses it locally only; the Admin
/// UI's namespace reaches every node's sockets through it.
pub type IoAdapter = CustomRedisAdapter<Emitter, LinkDriver>;
pub type Socket = SocketRef<IoAdapter>;

/// Where Socket.IO clients connect unless told otherwise (the client's `path` option).
pub const DEFAULT_PATH: &str = "/socket.io";

/// Largest Socket.IO packet a client may send; a message is at most 4000 characters.
const MAX_PAYLOAD: u64 = 64 * 1024;
/// Packets queued per socket before it counts as too slow and is dropped.
const BUFFER: usize = 1024;

/// What a client said when connecting, from wherever it could put it.
pub struct Handshake<'a> {
    auth: Value,
    parts: &'a Parts,
}

impl<'a> Handshake<'a> {
    fn new(parts: &'a Parts, auth: Option<Value>) -> Self {
        Self {
            auth: auth.unwrap_or(Value::Null),
            parts,
        }
    }

    /// `auth.<name>` as sent.
    pub fn auth(&self, name: &str) -> Option<&Value> {
        self.auth.get(name).filter(|v| !v.is_null())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.parts.uri.query().unwrap_or_default();
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A field from `auth`, else the header of that name, else the query parameter.
    pub fn field(&self, name: &str) -> Option<Value> {
        self.auth(name)
            .cloned()
            .or_else(|| self.header(name).map(|v| Value::String(v.to_owned())))
            .or_else(|| self.query(name).map(Value::String))
    }

    fn token(&self, forms: &[TokenForm]) -> Option<String> {
        let parts = self.parts;
        crate::auth::token(forms, &parts.headers, parts.uri.query(), Some(&self.auth))
    }
}

/// A socket being set up, before its client is told it is connected.
pub struct Joining<'a> {
    pub app: &'a App,
    pub socket: &'a Socket,
    /// `None` for a socket that gave no valid token.
    pub user: Option<&'a User>,
    pub handshake: &'a Handshake<'a>,
}

/// A dialect spoken on a Socket.IO path. A signed-in socket is in its user's room of each
/// dialect on the path (`Room::user(name, user)`), where the dialect sends what is the user's.
pub trait SocketDialect: Send + Sync + 'static {
    /// The dialect's name, as its rooms carry it.
    fn name(&self) -> &'static str;

    /// Where this dialect's clients put their token, in the order looked at.
    fn token_forms(&self) -> &'static [TokenForm];

    /// Set up a socket before its client is told it is connected: handlers, and the rooms it
    /// hears at once besides its user's.
    fn attach<'a>(&'a self, _joining: &'a Joining<'a>) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }

    /// Once the client knows it is connected (events can be sent to it): e.g. what it missed.
    fn connected(&self, _app: App, _socket: Socket, _user: User) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    /// Whether a socket with no valid token may connect (and hear nothing).
    fn allows_anonymous(&self) -> bool {
        true
    }

    /// Presence keys (besides the user's own) the socket holds while connected, so the core
    /// knows that, on some node, someone is watching for this (e.g. a user's totals).
    fn watches(&self, _user: &User) -> Vec<Present> {
        Vec::new()
    }
}

/// What a connection counts as while it is open: its user's attendance, and what it watches.
#[derive(Clone)]
struct Held {
    _attendance: Arc<Attendance>,
    _watches: Arc<Vec<PresenceGuard>>,
}

/// Every token form any of a path's dialects accepts, each once, in their order.
fn accepted(dialects: &[Arc<dyn SocketDialect>]) -> Vec<TokenForm> {
    let mut forms: Vec<TokenForm> = Vec::new();
    for form in dialects.iter().flat_map(|d| d.token_forms()) {
        if !forms.contains(form) {
            forms.push(*form);
        }
    }
    forms
}

/// A connection refused with `connect_error` gets no detail of a server fault; the log does.
fn hide_fault(err: Error) -> Error {
    tracing::error!("socket connection failed: {err}");
    Error::Internal(anyhow::anyhow!("internal error"))
}

/// Socket.IO at `path`, speaking `dialects`: the layer to serve. From now on `transport`
/// reaches its sockets.
pub async fn serve(
    app: &App,
    path: &'static str,
    dialects: Vec<Arc<dyn SocketDialect>>,
    operators: Option<Arc<Operators>>,
    transport: &SocketIoTransport,
) -> anyhow::Result<SocketIoLayer<IoAdapter>> {
    let link = app.hub.cluster().cloned();
    // Each path's adapter talks on channels of its own.
    let config = RedisAdapterConfig::new().with_prefix(format!("palaver{path}"));
    let adapter = RedisAdapterCtr::new_with_driver(LinkDriver(link), config);
    let (layer, io) = SocketIo::builder()
        .req_path(path)
        .max_payload(MAX_PAYLOAD)
        .max_buffer_size(BUFFER)
        .ws_max_message_size(MAX_PAYLOAD as usize)
        .ws_read_buffer_size(super::READ_BUFFER)
        .with_state(app.clone())
        .with_adapter::<IoAdapter>(adapter)
        .build_layer();

    let admin = match operators {
        Some(operators) => Some(Instrument::start(app, &io, path, operators).await?),
        None => None,
    };
    let dialects: Arc<[Arc<dyn SocketDialect>]> = dialects.into();
    let forms = accepted(&dialects);
    let dialect_names: Vec<&str> = dialects.iter().map(|d| d.name()).collect();
    let dialect_names = dialect_names.join("+");
    let on_connect = {
        let dialects = dialects.clone();
        async move |socket: Socket, State(app): State<App>| {
            let Some(user) = socket.extensions.get::<User>() else {
                return;
            };
            // A sign-out while the socket was being set up found it in its rooms but not yet
            // connected, and passed it by: look once more, now that any later one reaches it.
            match app.revoked_since(&user).await {
                Ok(false) => {}
                Ok(true) => {
                    tracing::debug!(sid = %socket.id, user = %user.id, "signed out while connecting");
                    let _ = socket.disconnect();
                    return;
                }
                Err(e) => tracing::warn!(user = %user.id, "could not look for a sign-out: {e}"),
            }
            for dialect in dialects.iter() {
                dialect
                    .connected(app.clone(), socket.clone(), user.clone())
                    .await;
            }
        }
    };
    let middleware = async move |socket: Socket,
                                 TryData(auth): TryData<Value>,
                                 State(app): State<App>|
                -> Result<(), Error> {
        socket.extensions.insert(EventBudget::default());
        if admin.is_some() {
            socket.extensions.insert(Since(SystemTime::now()));
        }
        // Every socket is in a room of its own, as in Socket.IO, so that an event can leave
        // it out and an operator reach it on whatever node it is.
        socket.join(Room::connection(&socket.id.to_string()).as_str().to_owned());
        let parts = socket.req_parts();
        let handshake = Handshake::new(parts, auth.ok());
        let user = match handshake.token(&forms) {
            None => None,
            Some(token) => match app.authenticate(&token).await {
                Ok(user) => Some(user),
                Err(Error::Unauthorized) => None,
                Err(e) => return Err(hide_fault(e)),
            },
        };
        if user.is_none() && !dialects.iter().all(|d| d.allows_anonymous()) {
            return Err(Error::Unauthorized);
        }
        if let Some(user) = &user {
            let id = user.id.hub_user();
            let attendance = app.attend(user).await;
            let mut watches = Vec::new();
            for key in dialects.iter().flat_map(|d| d.watches(user)) {
                watches.push(app.hub.connect(key).await);
            }
            socket.extensions.insert(Held {
                _attendance: Arc::new(attendance),
                _watches: Arc::new(watches),
            });
            let mut rooms = vec![Room::account(id)];
            rooms.extend(dialects.iter().map(|d| Room::user(d.name(), id)));
            socket.join(
                rooms
                    .iter()
                    .map(|r| r.as_str().to_owned())
                    .collect::<Vec<_>>(),
            );
            socket.extensions.insert(user.clone());
        }
        let joining = Joining {
            app: &app,
            socket: &socket,
            user: user.as_ref(),
            handshake: &handshake,
        };
        for dialect in dialects.iter() {
            dialect.attach(&joining).await.map_err(hide_fault)?;
        }
        let open = metrics::gauge!(
            telemetry::CONNECTIONS,
            "transport" => "socketio",
            "dialect" => dialect_names.clone(),
        );
        open.increment(1.0);
        let admin = admin.clone();
        if let Some(admin) = &admin {
            admin.connected(&socket).await;
        }
        socket.on_disconnect(async move |socket: Socket, why: DisconnectReason| {
            socket.extensions.remove::<Held>();
            open.decrement(1.0);
            if let Some(admin) = &admin {
                admin.disconnected(&socket, why).await;
            }
        });
        tracing::debug!(sid = %socket.id, path, user = ?user.map(|u| u.id), "socket connected");
        Ok(())
    };
    io.ns("/", on_connect.with(middleware))
        .await
        .map_err(|e| anyhow::anyhow!("starting the Socket.IO adapter at {path}: {e:?}"))?;
    if transport.0.set(io).is_err() {
        anyhow::bail!("two Socket.IO servers at {path}");
    }
    Ok(layer)
}

/// A Socket.IO server as a transport, reaching this node's sockets: what other nodes must do
/// reaches them through the hub's routing, not the adapter. It is made before the server it
/// reaches, which needs the core, which needs its transports: until `serve` gives it its
/// server, there is no socket on its path to reach, and it reaches none.
#[derive(Default)]
pub struct SocketIoTransport(OnceLock<SocketIo<IoAdapter>>);

fn name(room: &Room) -> String {
    room.as_str().to_owned()
}

impl Transport for SocketIoTransport {
    fn emit<'a>(&'a self, outgoing: &'a Outgoing) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(io) = self.0.get() else { return };
            let rooms: Vec<String> = outgoing.rooms.iter().map(name).collect();
            let mut to = io.local().to(rooms);
            if let Some(except) = &outgoing.except {
                to = to.except(name(except));
            }
            if let Err(e) = to.emit(outgoing.event.as_ref(), &outgoing.payload).await {
                tracing::warn!(rooms = ?outgoing.rooms, event = %outgoing.event, "broadcast failed: {e}");
            }
        })
    }

    fn join<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(io) = self.0.get() else { return };
            if let Err(e) = io.local().to(name(members_of)).join(name(room)).await {
                tracing::warn!(%members_of, %room, "join failed: {e:?}");
            }
        })
    }

    fn leave<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(io) = self.0.get() else { return };
            if let Err(e) = io.local().to(name(members_of)).leave(name(room)).await {
                tracing::warn!(%members_of, %room, "leave failed: {e:?}");
            }
        })
    }

    fn disconnect<'a>(&'a self, members_of: &'a Room, why: Closing) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(io) = self.0.get() else { return };
            let sockets = io.local().to(name(members_of));
            if why == Closing::FellBehind {
                // Their clients must come back and catch up. A server disconnect would keep
                // socket.io clients away; a closed transport looks like a lost server, and
                // they reconnect by themselves.
                let sockets = sockets.sockets();
                join_all(sockets.iter().map(|s| s.close_underlying_transport())).await;
            } else if let Err(e) = sockets.disconnect().await {
                tracing::warn!(%members_of, ?why, "disconnect failed: {e:?}");
            }
        })
    }
}

/// The server's core and the signed-in user an event on `socket` comes from, once the event
/// is within the socket's budget and the user's; why it is refused otherwise. For a dialect's
/// caller extractor.
pub fn caller(
    socket: &Arc<RawSocket<IoAdapter>>,
    value: &mut PacketValue,
    ack_id: &Option<i64>,
) -> Result<(App, User), Error> {
    let user = socket.extensions.get::<User>();
    let budget = socket.extensions.get::<EventBudget>().unwrap_or_default();
    let State(app) = State::<App>::from_message_parts(socket, value, ack_id)
        .map_err(|_| Error::Internal(anyhow::anyhow!("no state on the Socket.IO server")))?;
    budget.spend(&app.hub, user.as_ref().map(|u| &u.id))?;
    Ok((app, user.ok_or(Error::Unauthorized)?))
}

/// The ack of an event, present only when the client asked for one.
pub struct Ack<A: Adapter = IoAdapter>(pub Option<AckSender<A>>);

impl<A: Adapter> FromMessageParts<A> for Ack<A> {
    type Error = std::convert::Infallible;

    fn from_message_parts(
        s: &Arc<RawSocket<A>>,
        v: &mut PacketValue,
        ack_id: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        match ack_id {
            Some(_) => AckSender::from_message_parts(s, v, ack_id).map(|a| Self(Some(a))),
            None => Ok(Self(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_from_auth_then_headers_then_query() {
        let request = axum::http::Request::builder()
            .uri("/socket.io/?token=q&channels=3")
            .header("authorisation", "Bearer h")
            .header("channels", "2")
            .body(())
            .unwrap();
        let (parts, _) = request.into_parts();
        let forms = [
            TokenForm::Auth,
            TokenForm::Raw("authorisation"),
            TokenForm::Query("token"),
        ];
        let with_auth = Handshake::new(
            &parts,
            Some(serde_json::json!({"token": "a", "channels": [1]})),
        );
        assert_eq!(with_auth.token(&forms).as_deref(), Some("a"));
        assert_eq!(with_auth.field("channels"), Some(serde_json::json!([1])));
        let without = Handshake::new(&parts, None);
        assert_eq!(without.token(&forms).as_deref(), Some("h"));
        assert_eq!(without.field("channels"), Some(serde_json::json!("2")));
        assert_eq!(without.token(&forms[2..]).as_deref(), Some("q"));
        assert_eq!(without.token(&[]), None);
    }

    #[test]
    fn a_path_accepts_what_any_of_its_dialects_does() {
        struct Speaks(&'static [TokenForm]);
        impl SocketDialect for Speaks {
            fn name(&self) -> &'static str {
                "test"
            }
            fn token_forms(&self) -> &'static [TokenForm] {
                self.0
            }
        }
        let dialects: Vec<Arc<dyn SocketDialect>> = vec![
            Arc::new(Speaks(&[TokenForm::Auth, TokenForm::Query("token")])),
            Arc::new(Speaks(&[
                TokenForm::Auth,
                TokenForm::Bearer("authorization"),
            ])),
        ];
        assert_eq!(
            accepted(&dialects),
            [
                TokenForm::Auth,
                TokenForm::Query("token"),
                TokenForm::Bearer("authorization")
            ]
        );
    }
}
