//! Who is online: a user with at least one live connection, on this node or (clustered) any.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::Present;

/// Counts live connections. Implementations: [`LocalPresence`] (this process) and
/// [`crate::cluster::RedisPresence`] (every node sharing a Redis).
pub trait Presence: Send + Sync + 'static {
    /// One more live connection for `present` on this node. Once the future is done, every
    /// node sees it present.
    fn connected<'a>(&'a self, present: &'a Present) -> BoxFuture<'a, ()>;
    /// One live connection for `present` fewer. Never blocks.
    fn disconnected(&self, present: &Present);
    /// Of `wanted`, those with a live connection anywhere, in one query whatever their number.
    fn present_among<'a>(&'a self, wanted: &'a [Present]) -> BoxFuture<'a, HashSet<Present>>;
}

/// A live connection, counted until dropped.
pub struct PresenceGuard {
    presence: Arc<dyn Presence>,
    present: Present,
}

impl PresenceGuard {
    pub(crate) async fn new(presence: Arc<dyn Presence>, present: Present) -> Self {
        presence.connected(&present).await;
        Self { presence, present }
    }

    pub fn present(&self) -> &Present {
        &self.present
    }
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        self.presence.disconnected(&self.present);
    }
}

impl std::fmt::Debug for PresenceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceGuard")
            .field("present", &self.present)
            .finish()
    }
}

/// This process's connections, counted per user (or watch).
#[derive(Debug, Default)]
pub struct LocalPresence {
    live: Mutex<HashMap<Present, usize>>,
}

impl LocalPresence {
    /// Count a connection; true when it is the first.
    pub fn add(&self, present: &Present) -> bool {
        let mut live = self.live.lock().unwrap();
        let count = live.entry(present.clone()).or_default();
        *count += 1;
        *count == 1
    }

    /// Uncount a connection; true when it was the last. A stray call does nothing.
    pub fn remove(&self, present: &Present) -> bool {
        let mut live = self.live.lock().unwrap();
        match live.get_mut(present) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                live.remove(present);
                true
            }
            None => false,
        }
    }

    pub fn is_present(&self, present: &Present) -> bool {
        self.live.lock().unwrap().contains_key(present)
    }

    /// Everything a live connection here counts for.
    pub fn all(&self) -> Vec<Present> {
        self.live.lock().unwrap().keys().cloned().collect()
    }

    /// Of `wanted`, those present here.
    pub fn among(&self, wanted: &[Present]) -> HashSet<Present> {
        let live = self.live.lock().unwrap();
        wanted
            .iter()
            .filter(|p| live.contains_key(*p))
            .cloned()
            .collect()
    }
}

impl Presence for LocalPresence {
    fn connected<'a>(&'a self, present: &'a Present) -> BoxFuture<'a, ()> {
        self.add(present);
        Box::pin(async {})
    }

    fn disconnected(&self, present: &Present) {
        self.remove(present);
    }

    fn present_among<'a>(&'a self, wanted: &'a [Present]) -> BoxFuture<'a, HashSet<Present>> {
        let present = self.among(wanted);
        Box::pin(async move { present })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserId;

    #[test]
    fn presence_counts_each_connection() {
        let presence = LocalPresence::default();
        let ada = Present::User(UserId::from_bytes([7; 12]));
        assert!(presence.add(&ada));
        assert!(!presence.add(&ada));
        assert!(!presence.remove(&ada));
        assert!(presence.is_present(&ada));
        assert!(presence.remove(&ada));
        assert!(!presence.is_present(&ada));
        assert!(presence.all().is_empty());
        // A stray disconnect does not underflow or resurrect the user.
        assert!(!presence.remove(&ada));
        assert!(!presence.is_present(&ada));
    }

    #[test]
    fn a_watch_is_counted_apart_from_its_user() {
        let presence = LocalPresence::default();
        let ada = UserId::from_bytes([7; 12]);
        let totals = Present::Watch(format!("totals:{ada}"));
        presence.add(&totals);
        let wanted = [Present::User(ada), totals.clone()];
        assert_eq!(presence.among(&wanted), [totals].into());
    }
}
