//! Socket.IO as a transport of the rooms hub.

use futures::future::BoxFuture;
use rooms::{Outgoing, Room, Transport};
use socketioxide::SocketIo;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::AckSender;
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
use std::sync::Arc;

/// The Socket.IO adapter in use; one place to change when rooms span nodes.
pub type IoAdapter = LocalAdapter;

pub struct SocketIoTransport(pub SocketIo<IoAdapter>);

impl Transport for SocketIoTransport {
    fn emit<'a>(&'a self, outgoing: &'a Outgoing) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let to = self.0.to(outgoing.room.as_str().to_owned());
            if let Err(e) = to.emit(outgoing.event.as_ref(), &outgoing.payload).await {
                tracing::warn!(room = %outgoing.room, event = %outgoing.event, "broadcast failed: {e}");
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
