//! The core: every business rule, once, for every dialect.

pub mod accounts;
pub mod chats;
pub mod devices;
pub mod events;
pub mod groups;
pub mod listing;
pub mod messages;
pub mod notifications;
pub mod profiles;
pub mod scores;
pub mod social;
pub mod tokens;
pub mod users;

use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use quick_cache::sync::Cache;
use rooms::Hub;

use crate::media::Media;
use crate::store::{Chat, Store, User};
pub use events::{ChatEvent, Dialect, Origin, Rendered};
pub use tokens::Tokens;

/// Shared state behind every handler of every dialect.
pub type App = Arc<Core>;

pub struct Core {
    pub store: Store,
    pub tokens: Tokens,
    pub hub: Hub,
    /// Photo storage, when configured.
    pub media: Option<Media>,
    dialects: RwLock<Vec<Arc<dyn Dialect>>>,
    system_user: User,
    /// Hot-path lookups of every message: which chat a numeric id is, and who is in it.
    /// Every write to participants goes through the core, which drops the stale entry here;
    /// other nodes see the change within `CACHE_TTL`.
    chats_by_num: HotCache<i64, Chat>,
    members: HotCache<ObjectId, Arc<[ObjectId]>>,
    /// Chats whose last activity was written within the last second.
    recently_touched: HotCache<ObjectId, ()>,
    sign_in_limits: accounts::SignInLimits,
}

/// Entries per cache; a chat costs well under a kilobyte in each.
const CACHE_CHATS: usize = 100_000;
/// How long a cached entry is trusted. This node drops entries it changes at once; this bounds
/// how long a change made on another node (a participant removed, a chat deleted) goes unseen.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// A bounded cache whose entries expire.
struct HotCache<K, V> {
    entries: Cache<K, (Instant, V)>,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> HotCache<K, V> {
    fn new() -> Self {
        Self::with_ttl(CACHE_TTL)
    }

    fn with_ttl(ttl: Duration) -> Self {
        Self {
            entries: Cache::new(CACHE_CHATS),
            ttl,
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value)
    }

    fn insert(&self, key: K, value: V) {
        self.entries.insert(key, (Instant::now(), value));
    }

    fn remove(&self, key: &K) {
        self.entries.remove(key);
    }
}

impl Core {
    pub async fn new(
        store: Store,
        tokens: Tokens,
        hub: Hub,
        media: Option<Media>,
    ) -> crate::error::Result<Self> {
        let system_user = users::ensure_system_user(&store).await?;
        Ok(Self {
            store,
            tokens,
            hub,
            media,
            dialects: RwLock::default(),
            system_user,
            chats_by_num: HotCache::new(),
            members: HotCache::new(),
            recently_touched: HotCache::with_ttl(Duration::from_secs(1)),
            sign_in_limits: accounts::SignInLimits::default(),
        })
    }

    /// A dialect that wants the core's events rendered for its clients.
    pub fn add_dialect(&self, dialect: Arc<dyn Dialect>) {
        self.dialects.write().unwrap().push(dialect);
    }

    /// The user that greets newcomers in their welcome chat.
    pub fn system_user(&self) -> &User {
        &self.system_user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_entries_expire_and_can_be_dropped() {
        let cache = HotCache::with_ttl(Duration::from_millis(50));
        cache.insert(1, "chat");
        assert_eq!(cache.get(&1), Some("chat"));
        cache.remove(&1);
        assert_eq!(cache.get(&1), None);
        cache.insert(2, "chat");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&2), None, "a stale entry is not trusted");
    }
}
