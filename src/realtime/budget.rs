//! How many events one connection may send: a token bucket per connection, asked before any
//! event or frame is handled (socketioxide and the WebSocket pump have no limit of their own).

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota};

use crate::error::Error;

/// Events one connection may send per second, sustained, and in a burst.
pub const EVENTS_PER_SECOND: NonZeroU32 = NonZeroU32::new(30).unwrap();
pub const EVENT_BURST: NonZeroU32 = NonZeroU32::new(60).unwrap();

/// A connection's event budget (kept in a socket's extensions).
#[derive(Clone)]
pub struct EventBudget(Arc<DefaultDirectRateLimiter>);

impl Default for EventBudget {
    fn default() -> Self {
        let quota = Quota::per_second(EVENTS_PER_SECOND).allow_burst(EVENT_BURST);
        Self(Arc::new(DefaultDirectRateLimiter::direct(quota)))
    }
}

impl EventBudget {
    /// Spend one event, or refuse when the connection is sending too fast.
    pub fn spend(&self) -> Result<(), Error> {
        self.0.check().map_err(|_| Error::RateLimited)
    }
}
