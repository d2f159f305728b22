//! Events one user may send, across all their connections and, with Redis, all nodes. Each
//! connection also has a budget of its own (the server's); this one stops a user from
//! multiplying theirs by opening more connections.
//!
//! On a node, a token bucket per user. Across nodes, a counter per user and window in Redis,
//! counted after the event is let through, so that no event waits on Redis: a user over the
//! cluster's budget is refused from the next event on, until the window ends.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use governor::{DefaultKeyedRateLimiter, Quota};

use crate::UserId;
use crate::cluster::RedisLink;

/// Per user: this many events a second, sustained, after a burst.
pub const USER_EVENTS_PER_SECOND: NonZeroU32 = NonZeroU32::new(30).unwrap();
pub const USER_EVENT_BURST: NonZeroU32 = NonZeroU32::new(60).unwrap();
/// The cluster's window, and what a user may send in one: the sustained rate, and half a
/// burst (a node's bucket lets a whole one through at once).
const WINDOW_SECONDS: u64 = 5;
const WINDOW_EVENTS: i64 = 30 * 5 + 30;
/// Users kept in the local buckets before idle ones are dropped.
const KEYS_MAX: usize = 100_000;

pub struct UserBudgets {
    local: DefaultKeyedRateLimiter<UserId>,
    cluster: Option<Arc<RedisLink>>,
    /// Users over the cluster's budget, with the window they are over in.
    over: Arc<Mutex<HashMap<UserId, u64>>>,
}

impl UserBudgets {
    pub fn new(cluster: Option<Arc<RedisLink>>) -> Self {
        let quota = Quota::per_second(USER_EVENTS_PER_SECOND).allow_burst(USER_EVENT_BURST);
        Self {
            local: DefaultKeyedRateLimiter::keyed(quota),
            cluster,
            over: Arc::default(),
        }
    }

    /// Spend one of `user`'s events; false when they are sending too fast.
    pub fn spend(&self, user: UserId) -> bool {
        if self.local.len() > KEYS_MAX {
            self.local.retain_recent();
        }
        if self.local.check_key(&user).is_err() {
            return false;
        }
        let Some(link) = self.cluster.clone().filter(|l| l.is_up()) else {
            return true;
        };
        let window = current_window();
        {
            let over = self.over.lock().unwrap_or_else(PoisonError::into_inner);
            if over.get(&user) == Some(&window) {
                return false;
            }
        }
        let over = self.over.clone();
        tokio::spawn(async move {
            let key = link.key(format_args!("events:{user}:{window}"));
            let ttl = WINDOW_SECONDS * 2;
            let Some(count) = link.count(&key, ttl).await else {
                return;
            };
            if count > WINDOW_EVENTS {
                let mut over = over.lock().unwrap_or_else(PoisonError::into_inner);
                over.retain(|_, w| *w == window);
                over.insert(user, window);
            }
        });
        true
    }
}

fn current_window() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.as_secs() / WINDOW_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_user_shares_one_budget_on_a_node() {
        let budgets = UserBudgets::new(None);
        let (ada, bob) = (UserId::from_bytes([1; 12]), UserId::from_bytes([2; 12]));
        let spent = (0..200).filter(|_| budgets.spend(ada)).count();
        assert!((60..70).contains(&spent), "{spent}");
        assert!(budgets.spend(bob), "another user has their own");
    }
}
