//! How many events one connection may send: a token bucket per connection, asked before any
//! event or frame is handled (socketioxide and the WebSocket pump have no limit of their own),
//! and then its user's, shared by all their connections (`rooms::budget`).

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota};

use mongodb::bson::oid::ObjectId;

use crate::core::HubUser;
use crate::error::Error;
use crate::telemetry;
use rooms::Hub;

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
    /// Spend one event of the connection's, and of its user's when signed in (one budget for
    /// all of a user's connections, on every node), or refuse when either runs out.
    pub fn spend(&self, hub: &Hub, user: Option<&ObjectId>) -> Result<(), Error> {
        metrics::counter!(telemetry::EVENTS_IN).increment(1);
        self.0.check().map_err(|_| refused("connection"))?;
        match user {
            Some(user) => spend_users(hub, user),
            None => Ok(()),
        }
    }
}

/// Spend one event of `user`'s budget, shared by all their connections and REST writes, or
/// refuse when it runs out.
pub fn spend_users(hub: &Hub, user: &ObjectId) -> Result<(), Error> {
    match hub.spend_event(user.hub_user()) {
        true => Ok(()),
        false => Err(refused("user")),
    }
}

fn refused(scope: &'static str) -> Error {
    metrics::counter!(telemetry::RATE_LIMITED, "scope" => scope).increment(1);
    Error::RateLimited
}
