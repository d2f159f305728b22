//! Socket.IO as a transport of the rooms hub.

use futures::future::BoxFuture;
use rooms::{Outgoing, Room, Transport};
use socketioxide::SocketIo;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::AckSender;
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota};

/// The Socket.IO adapter in use; one place to change when rooms span nodes.
pub type IoAdapter = LocalAdapter;

pub struct SocketIoTransport(pub SocketIo<IoAdapter>);

impl Transport for SocketIoTransport {
    fn emit<'a>(&'a self, outgoing: &'a Outgoing) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let rooms: Vec<String> = outgoing.rooms.iter().map(|r| r.0.clone()).collect();
            let mut to = self.0.to(rooms);
            if let Some(except) = &outgoing.except {
                to = to.except(except.0.clone());
            }
            if let Err(e) = to.emit(outgoing.event.as_ref(), &outgoing.payload).await {
                tracing::warn!(rooms = ?outgoing.rooms, event = %outgoing.event, "broadcast failed: {e}");
            }
        })
    }

    fn join<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let result = self
                .0
                .to(members_of.as_str().to_owned())
                .join(room.as_str().to_owned())
                .await;
            if let Err(e) = result {
                tracing::warn!(%members_of, %room, "join failed: {e:?}");
            }
        })
    }
}

/// The ack of an event, present only when the client asked for one.
pub struct Ack<A: Adapter = IoAdapter>(pub Option<AckSender<A>>);

impl<A: Adapter> FromMessageParts<A> for Ack<A> {
    type Error = std::convert::Infallible;

    fn from_message_parts(
        s: &Arc<Socket<A>>,
        v: &mut Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        match ack_id {
            Some(_) => AckSender::from_message_parts(s, v, ack_id).map(|a| Self(Some(a))),
            None => Ok(Self(None)),
        }
    }
}

/// Events one socket may send per second, sustained, and in a burst. Sockets have no built-in
/// rate limit in socketioxide, so every event handler asks this first.
const EVENTS_PER_SECOND: NonZeroU32 = NonZeroU32::new(30).unwrap();
const EVENT_BURST: NonZeroU32 = NonZeroU32::new(60).unwrap();

/// A socket's event budget, kept in its extensions.
#[derive(Clone)]
pub struct EventBudget(Arc<DefaultDirectRateLimiter>);

impl Default for EventBudget {
    fn default() -> Self {
        let quota = Quota::per_second(EVENTS_PER_SECOND).allow_burst(EVENT_BURST);
        Self(Arc::new(DefaultDirectRateLimiter::direct(quota)))
    }
}

impl EventBudget {
    /// Spend one event, or refuse when the socket is sending too fast.
    pub fn spend(&self) -> Result<(), crate::error::Error> {
        self.0.check().map_err(|_| crate::error::Error::RateLimited)
    }
}
