//! socketioxide-redis's pub/sub driver over the node's [`RedisLink`].
//!
//! The crate's own redis driver holds a multiplexed connection that is never re-established:
//! after a Redis restart every broadcast fails, and a failed publish also stops the local
//! delivery that follows it. The link reconnects and restores its subscriptions by itself,
//! and skips publishing while Redis is unreachable, so each node keeps serving its own sockets
//! through an outage. With no Redis configured the driver is local only: nothing is published
//! and this node is the only server.

use std::sync::Arc;

use rooms::cluster::RedisLink;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};

#[derive(Clone)]
pub struct LinkDriver(pub Option<Arc<RedisLink>>);

#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct LinkError(String);

fn failed(e: impl std::fmt::Display) -> LinkError {
    LinkError(e.to_string())
}

impl Driver for LinkDriver {
    type Error = LinkError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        if let Some(link) = &self.0 {
            link.publish(&chan, &val).await;
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        match &self.0 {
            Some(link) => Ok(MessageStream::new(
                link.subscribe(&chan, size).await.map_err(failed)?,
            )),
            None => Ok(MessageStream::new_empty()),
        }
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        match &self.0 {
            Some(link) => link.unsubscribe(&chan).await.map_err(failed),
            None => Ok(()),
        }
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        match &self.0 {
            Some(link) => link.subscribers(chan).await.map_err(failed),
            None => Ok(1),
        }
    }
}
