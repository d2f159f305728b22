//! One plain-WebSocket pump for every WebSocket dialect: a read/write loop, a bounded queue of
//! what the rooms send, the event budget, presence while signed in, idle detection by ping,
//! the closing handshake, and close codes that say why the server ended a connection.
//!
//! A dialect writes a [`Protocol`]: what to do with each text frame. Its connection may sign in
//! and join rooms at any time, so a protocol that signs in after the socket opened (inside its
//! own frames) is served the same way as one authenticated by its URL.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::response::Response;
use futures::SinkExt;
use futures::future::BoxFuture;
use mongodb::bson::oid::ObjectId;
use rooms::{Attendance, Closing, Ended, Frame, Room, Session};
use tokio::time::{Instant, MissedTickBehavior};

use super::budget::EventBudget;
use crate::core::App;
use crate::core::HubUser;
use crate::error::Error;
use crate::store::User;
use crate::telemetry;

/// The server pings this often (as Django Channels' servers do)...
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// ...and drops a peer it has heard nothing from (not even a pong) for this long.
pub const IDLE_LIMIT: Duration = Duration::from_secs(45);

/// Close codes: RFC 6455's, and the application's own (4000–4999) mirroring HTTP's.
pub mod code {
    pub const NORMAL: u16 = 1000;
    /// The server is stopping (RFC 6455's "going away").
    pub const GOING_AWAY: u16 = 1001;
    pub const INTERNAL: u16 = 1011;
    /// The client fell too far behind, or the database is unreachable; it may reconnect
    /// (and catch up) shortly.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// No, invalid, expired or revoked credentials; or the user signed out.
    pub const UNAUTHORIZED: u16 = 4001;
    pub const FORBIDDEN: u16 = 4003;
    pub const NOT_FOUND: u16 = 4004;
}

/// A plain WebSocket's door: the request to upgrade, and the core its connection will serve.
pub struct Door {
    app: App,
    upgrade: WebSocketUpgrade,
}

impl FromRequestParts<App> for Door {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let upgrade = WebSocketUpgrade::from_request_parts(parts, app).await?;
        Ok(Self {
            app: app.clone(),
            upgrade,
        })
    }
}

impl Door {
    /// Upgrade to a plain WebSocket taking frames of at most `max_frame` bytes, with the
    /// layer's read buffer; set the connection up with `open` (sign it in, join its rooms),
    /// then serve it with the protocol `open` gives, or refuse it with the close code for its
    /// error.
    ///
    /// Every future here holds the connection by a pointer, and the set-up runs boxed: an async
    /// function keeps room for its arguments, and for whatever it awaits in place, for as long
    /// as it runs. The connection passed by value down the pump's few calls was laid out once
    /// per call in every idle connection's task (4,992 bytes for a hooligram socket's); a
    /// set-up awaited in place kept room for the user it read beside the pump (the task 1,280
    /// bytes for a `ws/notification/` socket against 896 for hooligram's, whose set-up is
    /// nothing). See the README's memory notes.
    pub fn accept<F, P>(self, max_frame: usize, open: F) -> Response
    where
        F: for<'c> FnOnce(&'c mut Connection) -> BoxFuture<'c, Result<P, Error>> + Send + 'static,
        P: Protocol + 'static,
    {
        let Self { app, upgrade } = self;
        upgrade
            .max_message_size(max_frame)
            .read_buffer_size(super::READ_BUFFER)
            .on_upgrade(move |socket| serve_opened(Connection::open(app, socket), open))
    }
}

async fn serve_opened<F, P>(mut conn: Box<Connection>, open: F)
where
    F: for<'c> FnOnce(&'c mut Connection) -> BoxFuture<'c, Result<P, Error>>,
    P: Protocol,
{
    if let Some(protocol) = Box::pin(set_up(&mut conn, open)).await {
        conn.serve(protocol).await
    }
}

/// The connection's protocol, boxed; or nothing, the connection refused. Neither the protocol
/// nor the set-up's error is held by value where the pump runs: each would keep its room
/// beside it for as long as the connection lives.
async fn set_up<F, P>(conn: &mut Connection, open: F) -> Option<Box<P>>
where
    F: for<'c> FnOnce(&'c mut Connection) -> BoxFuture<'c, Result<P, Error>>,
{
    match open(conn).await {
        Ok(protocol) => Some(Box::new(protocol)),
        Err(err) => {
            conn.refuse(err).await;
            None
        }
    }
}

/// Why the server closes a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

impl Close {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        // A close frame's reason is at most 123 bytes.
        while reason.len() > 123 {
            reason.pop();
        }
        Self { code, reason }
    }

    /// The close code for a request that cannot be served.
    pub fn for_error(err: &Error) -> Self {
        let code = match err {
            Error::MissingCredentials | Error::Unauthorized => code::UNAUTHORIZED,
            Error::NotFound(_) => code::NOT_FOUND,
            Error::Forbidden(_) | Error::Invalid(_) => code::FORBIDDEN,
            // An outage: the client may come back shortly.
            Error::Unavailable(_) => code::TRY_AGAIN_LATER,
            _ => code::INTERNAL,
        };
        Self::new(code, err.public_message())
    }

    fn ended(why: Ended) -> Self {
        match why {
            Ended::Closed(Closing::SignedOut) => Self::new(code::UNAUTHORIZED, "signed out"),
            Ended::Closed(Closing::Shutdown) => Self::new(code::GOING_AWAY, "server stopping"),
            Ended::TooSlow | Ended::Closed(Closing::FellBehind) => {
                Self::new(code::TRY_AGAIN_LATER, "too far behind; reconnect")
            }
        }
    }

    fn frame(self) -> Message {
        Message::Close(Some(CloseFrame {
            code: self.code,
            reason: self.reason.into(),
        }))
    }
}

/// The socket went away, or could not be written to.
#[derive(Debug)]
pub struct Gone;

/// One open WebSocket, as its protocol sees it.
pub struct Connection {
    app: App,
    socket: WebSocket,
    session: Session,
    budget: EventBudget,
    /// Who signed in: the pump needs only their id; a protocol that needs more of the user
    /// keeps it (an idle connection would otherwise hold a whole user, 376 bytes and its
    /// strings).
    user: Option<ObjectId>,
    attendance: Option<Attendance>,
    /// The user's sessions were revoked while this connection was signing in.
    revoked: bool,
}

/// What a WebSocket dialect does with what its clients send.
pub trait Protocol: Send {
    /// The dialect this protocol speaks, for the metrics.
    fn dialect(&self) -> &'static str;

    /// A text frame, within the connection's budget. An `Err` closes the connection.
    fn on_text(
        &mut self,
        conn: &mut Connection,
        text: &str,
    ) -> impl Future<Output = Result<(), Close>> + Send;

    /// Whether every text frame is counted against the connection's budget before `on_text`
    /// (the default). A protocol whose clients send frames that need no work (echoes of what
    /// they received) counts only those it acts on, with `Connection::spend`.
    fn counts_every_frame(&self) -> bool {
        true
    }

    /// A frame the rooms send this connection, about to go out; `false` drops it (one the
    /// protocol already sent the client itself).
    fn on_delivery(&mut self, _frame: &Frame) -> bool {
        true
    }

    /// A frame refused before `on_text`: sent too fast, or not text. Ignored unless the
    /// protocol answers it.
    fn on_refused(
        &mut self,
        _conn: &mut Connection,
        _err: Error,
    ) -> impl Future<Output = Result<(), Close>> + Send {
        async { Ok(()) }
    }
}

impl Connection {
    /// Take over an upgraded socket; it hears nothing until it signs in or joins a room.
    fn open(app: App, socket: WebSocket) -> Box<Self> {
        Box::new(Self {
            session: app.hub.sessions().open([]),
            app,
            socket,
            budget: EventBudget::default(),
            user: None,
            attendance: None,
            revoked: false,
        })
    }

    /// Accept nothing: close at once with the code for `err`.
    async fn refuse(&mut self, err: Error) {
        let close = Close::for_error(&err);
        tracing::debug!(code = close.code, reason = %close.reason, "websocket refused");
        let _ = self.socket.send(close.frame()).await;
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// The connection is now `user`'s: it counts as their presence on every node, and closes
    /// when they sign out. Called from a set-up or a handler, which run boxed.
    pub async fn sign_in(&mut self, user: &User) {
        if self.user == Some(user.id) {
            return;
        }
        if let Some(previous) = self.user {
            self.session.leave(&Room::account(previous.hub_user()));
        }
        self.attendance = Some(self.app.attend(user).await);
        self.session.join(&Room::account(user.id.hub_user()));
        // A sign-out between the check of the user's credential and this join did not reach
        // this connection: look once more, now that any later one will.
        match self.app.revoked_since(user).await {
            Ok(revoked) => self.revoked |= revoked,
            Err(e) => tracing::warn!(user = %user.id, "could not look for a sign-out: {e}"),
        }
        self.user = Some(user.id);
    }

    /// Spend one event of the connection's budget, or refuse when it sends too fast.
    pub fn spend(&self) -> Result<(), Error> {
        self.budget.spend(&self.app.hub, self.user.as_ref())
    }

    pub fn join(&self, room: &Room) {
        self.session.join(room);
    }

    pub fn leave(&self, room: &Room) {
        self.session.leave(room);
    }

    /// Send a text frame to this client only (a reply).
    pub async fn send(&mut self, frame: impl Into<String>) -> Result<(), Gone> {
        let frame: String = frame.into();
        self.socket
            .send(Message::Text(frame.into()))
            .await
            .map_err(|_| Gone)
    }

    /// Serve the connection with `protocol` until either side closes it.
    ///
    /// The loop only waits; what it heard is handled in `on_heard`. Handled in the arms of the
    /// `select!`, the values alive across its awaits were each given room of their own in the
    /// task, for as long as the connection lives (536 bytes of future against 368 now).
    async fn serve(mut self: Box<Self>, mut protocol: Box<impl Protocol>) {
        let open = metrics::gauge!(
            telemetry::CONNECTIONS,
            "transport" => "websocket",
            "dialect" => protocol.dialect(),
        );
        open.increment(1.0);
        let _counted = self.app.hub.sessions().counted(protocol.dialect());
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heard = Instant::now();
        let close = loop {
            if self.revoked {
                break Some(Close::ended(Ended::Closed(Closing::SignedOut)));
            }
            let event = tokio::select! {
                frame = self.session.next_frame() => match frame {
                    Ok(frame) => Event::Delivery(frame),
                    Err(ended) => Event::Heard(Heard::Ended(ended)),
                },
                incoming = self.socket.recv() => {
                    heard = Instant::now();
                    Event::Heard(Heard::Incoming(incoming))
                }
                _ = ping.tick() => Event::Heard(Heard::PingDue { heard }),
            };
            // A delivery, the common case, goes out in place; the rest is handled boxed, so
            // that the task keeps room only for the smaller of the two.
            let done = match event {
                Event::Delivery(frame) => self.deliver(&frame, &mut *protocol).await,
                Event::Heard(heard) => Box::pin(self.on_heard(heard, &mut *protocol)).await,
            };
            if let Err(close) = done {
                break close;
            }
        };
        if let Some(close) = close {
            tracing::debug!(code = close.code, reason = %close.reason, "closing websocket");
            let _ = self.socket.send(close.frame()).await;
        }
        open.decrement(1.0);
    }

    /// Send the client a frame the rooms sent it, unless its protocol drops it.
    async fn deliver(
        &mut self,
        frame: &Frame,
        protocol: &mut impl Protocol,
    ) -> Result<(), Option<Close>> {
        if protocol.on_delivery(frame) {
            self.socket
                .send(Message::Text(frame.text.as_ref().into()))
                .await
                .map_err(|_| None)?;
        }
        Ok(())
    }

    /// Act on what was heard other than a delivery; `Err` ends the connection, with the
    /// close to send if any.
    async fn on_heard(
        &mut self,
        heard: Heard,
        protocol: &mut impl Protocol,
    ) -> Result<(), Option<Close>> {
        match heard {
            Heard::Ended(ended) => Err(Some(Close::ended(ended))),
            Heard::Incoming(Some(Ok(Message::Text(text)))) => {
                let spent = match protocol.counts_every_frame() {
                    true => self.spend(),
                    false => Ok(()),
                };
                // Boxed, as is each handler's work: awaited in place, the largest of them (a
                // post, with its database calls) would be part of every idle connection's
                // task, for as long as it lives.
                match spent {
                    Ok(()) => Box::pin(protocol.on_text(self, text.as_str())).await,
                    Err(e) => Box::pin(protocol.on_refused(self, e)).await,
                }
                .map_err(Some)
            }
            Heard::Incoming(Some(Ok(Message::Binary(_)))) => {
                let refused = Error::invalid("frames must be JSON text");
                Box::pin(protocol.on_refused(self, refused))
                    .await
                    .map_err(Some)
            }
            Heard::Incoming(Some(Ok(Message::Close(_)))) => {
                // Answer the client's Close (RFC 6455 §5.5.1): the reply was queued when it
                // was read, and goes out with a flush.
                let _ = self.socket.flush().await;
                Err(None)
            }
            // Pings are answered by the WebSocket layer itself.
            Heard::Incoming(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => Ok(()),
            Heard::Incoming(Some(Err(_)) | None) => Err(None),
            Heard::PingDue { heard } => {
                if heard.elapsed() > IDLE_LIMIT {
                    tracing::debug!(user = ?self.user, "websocket peer stopped answering; dropped");
                    return Err(None);
                }
                self.socket
                    .send(Message::Ping(Default::default()))
                    .await
                    .map_err(|_| None)
            }
        }
    }
}

/// What the pump heard while it waited: a delivery, sent in place, or anything else.
enum Event {
    /// A frame the rooms sent this connection.
    Delivery(Frame),
    Heard(Heard),
}

/// What the pump heard other than a delivery, handled boxed (`Connection::on_heard`).
enum Heard {
    /// Why the rooms ended this connection's session.
    Ended(Ended),
    /// What the client sent, or the socket's end.
    Incoming(Option<Result<Message, axum::Error>>),
    /// Time to ping; the client was last heard from at `heard`.
    PingDue { heard: Instant },
}
