//! Who is online: a user with at least one live connection, on this node or (clustered) any.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::UserId;

/// Counts live connections. Implementations: [`LocalPresence`] (this process) and
/// [`crate::cluster::RedisPresence`] (every node sharing a Redis).
pub trait Presence: Send + Sync + 'static {
    /// One more live connection of `user` on this node. Once the future is done, every node
    /// sees the user online.
    fn connected<'a>(&'a self, user: &'a str) -> BoxFuture<'a, ()>;
    /// One live connection of `user` fewer. Never blocks.
    fn disconnected(&self, user: &str);
    /// Of `users`, those with a live connection anywhere, in one query whatever their number.
    fn online_among<'a>(&'a self, users: &'a [UserId]) -> BoxFuture<'a, HashSet<UserId>>;
}

/// A live connection, counted until dropped.
pub struct PresenceGuard {
    presence: Arc<dyn Presence>,
    user: UserId,
}

impl PresenceGuard {
    pub(crate) async fn new(presence: Arc<dyn Presence>, user: &str) -> Self {
        presence.connected(user).await;
        Self {
            presence,
            user: user.to_owned(),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        self.presence.disconnected(&self.user);
    }
}

impl std::fmt::Debug for PresenceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceGuard")
            .field("user", &self.user)
            .finish()
    }
}

/// This process's connections, counted per user.
#[derive(Debug, Default)]
pub struct LocalPresence {
    live: Mutex<HashMap<UserId, usize>>,
}

impl LocalPresence {
    /// Count a connection; true when it is the user's first.
    pub fn add(&self, user: &str) -> bool {
        let mut live = self.live.lock().unwrap();
        let count = live.entry(user.to_owned()).or_default();
        *count += 1;
        *count == 1
    }

    /// Uncount a connection; true when it was the user's last. A stray call does nothing.
    pub fn remove(&self, user: &str) -> bool {
        let mut live = self.live.lock().unwrap();
        match live.get_mut(user) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                live.remove(user);
                true
            }
            None => false,
        }
    }

    pub fn is_online(&self, user: &str) -> bool {
        self.live.lock().unwrap().contains_key(user)
    }

    /// Every user with a live connection here.
    pub fn users(&self) -> Vec<UserId> {
        self.live.lock().unwrap().keys().cloned().collect()
    }

    /// Of `users`, those online here.
    pub fn among(&self, users: &[UserId]) -> HashSet<UserId> {
        let live = self.live.lock().unwrap();
        users
            .iter()
            .filter(|u| live.contains_key(*u))
            .cloned()
            .collect()
    }
}

impl Presence for LocalPresence {
    fn connected<'a>(&'a self, user: &'a str) -> BoxFuture<'a, ()> {
        self.add(user);
        Box::pin(async {})
    }

    fn disconnected(&self, user: &str) {
        self.remove(user);
    }

    fn online_among<'a>(&'a self, users: &'a [UserId]) -> BoxFuture<'a, HashSet<UserId>> {
        let online = self.among(users);
        Box::pin(async move { online })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_counts_each_connection() {
        let presence = LocalPresence::default();
        assert!(presence.add("ada"));
        assert!(!presence.add("ada"));
        assert!(!presence.remove("ada"));
        assert!(presence.is_online("ada"));
        assert!(presence.remove("ada"));
        assert!(!presence.is_online("ada"));
        assert!(presence.users().is_empty());
        // A stray disconnect does not underflow or resurrect the user.
        assert!(!presence.remove("ada"));
        assert!(!presence.is_online("ada"));
    }
}
