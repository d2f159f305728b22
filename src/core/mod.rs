//! The core: every business rule, once, for every dialect.

pub mod accounts;
pub mod chats;
pub mod devices;
pub mod direct;
pub mod events;
pub mod groups;
pub mod join_requests;
pub mod listing;
pub mod meetups;
pub mod messages;
pub mod notifications;
pub mod participants;
pub mod phones;
pub mod profiles;
pub mod receipts;
pub mod requests;
pub mod scores;
pub mod secrets;
pub mod social;
pub mod tokens;
pub mod users;

use std::hash::Hash;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use quick_cache::sync::Cache;
use rooms::{Attendance, Hub, Transport};
use serde::{Deserialize, Serialize};
use tokio_util::task::TaskTracker;

use crate::media::Media;
use crate::sms::Verifier;
use crate::store::{Chat, Store, User};
pub use events::{ChatEvent, Dialect, Origin, Rendered};
pub use tokens::Tokens;

/// Shared state behind every handler of every dialect.
pub type App = Arc<Core>;

pub struct Core {
    /// The core itself, for work it leaves running after answering.
    me: Weak<Core>,
    pub store: Store,
    pub tokens: Tokens,
    pub hub: Hub,
    /// Photo storage, when configured.
    pub media: Option<Media>,
    /// Who sends the codes that prove phones.
    verifier: Verifier,
    /// Each dialect, with the transport that carries its events.
    dialects: RwLock<Vec<DialectRoute>>,
    system_user: User,
    /// Hot-path lookups of every message: which chat a numeric id is, who is in it, and whether
    /// the two users of a one-to-one chat blocked each other. Every change to these goes
    /// through the core, which drops the stale entry here and tells the other nodes to drop
    /// theirs (through Redis) before answering. Where that word may have been lost, whole
    /// caches are dropped instead: a node whose link to Redis returns drops its own (it may
    /// have missed the others' words) and tells the others to drop theirs (they may have
    /// missed its own); a node that dropped a word because it fell behind drops its own.
    /// `CACHE_TTL` only bounds how long an entry survives a lost word nobody noticed yet (a
    /// node cut off from Redis but not from the database, until it returns);
    /// `LONE_CACHE_TTL` a change made to the database by other means.
    chats_by_num: HotCache<i64, Chat>,
    members: HotCache<ObjectId, Arc<chats::Members>>,
    blocked: HotCache<String, bool>,
    /// Each busy chat's last sequence number handed out here (see `messages.rs`). Reloaded
    /// from the database when it expires, and whenever another node took a number.
    seqs: HotCache<ObjectId, Arc<AtomicI64>>,
    sign_in_limits: accounts::SignInLimits,
    phone_limits: phones::PhoneLimits,
    /// Set once the node is shutting down: it reports not ready and takes no new work.
    stopping: std::sync::atomic::AtomicBool,
    /// Messages being stored and announced. A stopping node waits for them (`settled`): its
    /// runtime ending between the two would leave a message stored that no other node's
    /// clients hear live.
    posts_under_way: TaskTracker,
}

/// A dialect and the transport its clients hear it through.
type DialectRoute = (Arc<dyn Dialect>, Arc<dyn Transport>);

/// Entries per cache; a chat costs well under a kilobyte in each.
const CACHE_CHATS: usize = 100_000;
/// How long a cached entry is trusted at most when other nodes share the database (see
/// `Core`). At 5 s every busy chat reloaded its entries every 5 s: with Redis, 500 chats at
/// 700 messages/s had p99 2 s against 55 ms at a minute...
const CACHE_TTL: Duration = Duration::from_secs(60);
/// ...and on a lone node, which makes every change itself: this only bounds how long a change
/// made to the database by other means goes unseen. Reloading every busy chat's entries every
/// few seconds took a query a message at 700 messages/s into 500 chats.
const LONE_CACHE_TTL: Duration = Duration::from_secs(300);
/// The Redis channel on which nodes tell each other which cached entries changed.
const CACHES_CHANNEL: &str = "palaver:caches";

/// A bounded cache whose entries expire.
struct HotCache<K, V> {
    entries: Cache<K, (Instant, V)>,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> HotCache<K, V> {
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

    /// The entry for `key`, or `value` stored now: of tasks that ask at once, one stores and
    /// the others get what it stored. For entries that stay right once made (counters that
    /// only move forward): an expired one is renewed as it is.
    fn get_or_insert(&self, key: K, value: impl FnOnce() -> V) -> V {
        let stored = self.entries.get_or_insert_with(&key, || {
            Ok::<_, std::convert::Infallible>((Instant::now(), value()))
        });
        let Ok((at, stored)) = stored;
        if at.elapsed() >= self.ttl {
            self.entries.insert(key, (Instant::now(), stored.clone()));
        }
        stored
    }

    fn remove(&self, key: &K) {
        self.entries.remove(key);
    }

    fn clear(&self) {
        self.entries.clear();
    }
}

/// What changed, as one node tells the others.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stale {
    node: String,
    #[serde(default)]
    chat: Option<(ObjectId, i64)>,
    #[serde(default)]
    pair: Option<String>,
    /// Anything may have changed: drop everything.
    #[serde(default)]
    all: bool,
}

impl Core {
    /// The core, and (when clustered) the tasks that keep its caches in step with other nodes.
    pub async fn start(
        store: Store,
        tokens: Tokens,
        hub: Hub,
        media: Option<Media>,
        verifier: Verifier,
        sign_in_limits: accounts::SignInLimits,
    ) -> crate::error::Result<App> {
        let system_user = users::ensure_system_user(&store).await?;
        let ttl = match hub.cluster() {
            Some(_) => CACHE_TTL,
            None => LONE_CACHE_TTL,
        };
        let core = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            store,
            tokens,
            hub,
            media,
            verifier,
            dialects: RwLock::default(),
            system_user,
            chats_by_num: HotCache::with_ttl(ttl),
            members: HotCache::with_ttl(ttl),
            blocked: HotCache::with_ttl(ttl),
            seqs: HotCache::with_ttl(ttl),
            sign_in_limits,
            phone_limits: phones::PhoneLimits::default(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            posts_under_way: TaskTracker::new(),
        });
        if let Some(link) = core.hub.cluster().cloned() {
            let stale = link
                .subscribe(CACHES_CHANNEL, 4096)
                .await
                .map_err(|e| anyhow::anyhow!("subscribing to cache changes: {e}"))?;
            tokio::spawn(follow_other_nodes(
                Arc::downgrade(&core),
                link.node().to_owned(),
                stale,
                link.returns(),
                link.drops(),
            ));
        }
        Ok(core)
    }

    /// The shared core, to hand to work that outlives the current call.
    fn app(&self) -> Option<App> {
        self.me.upgrade()
    }

    /// A dialect whose clients hear the core's events through `transport`.
    pub fn add_dialect(&self, dialect: Arc<dyn Dialect>, transport: Arc<dyn Transport>) {
        let mut dialects = self.dialects.write().unwrap();
        dialects.push((dialect, transport));
        // What other nodes raise is handed to the same transports.
        let by_name = dialects.iter().map(|(d, t)| (d.name(), t.clone()));
        self.hub.set_transports(by_name.collect());
    }

    /// A live connection of `user`: they are online on every node, and this node hears what
    /// concerns them (their chats' events among it) until the attendance is dropped.
    pub async fn attend(&self, user: &User) -> Attendance {
        let chats = async {
            match self.chat_ids_of(user).await {
                Ok(ids) => ids.into_iter().map(ObjectId::to_hex).collect(),
                Err(e) => {
                    tracing::warn!(user = %user.id, "could not list the user's chats: this node hears only what concerns the user directly: {e}");
                    Vec::new()
                }
            }
        };
        self.hub.attend(&user.id.to_hex(), chats).await
    }

    /// Categories in which groups are always open, as the dialects name them.
    fn open_categories(&self) -> Vec<&'static str> {
        let dialects = self.dialects.read().unwrap();
        dialects
            .iter()
            .flat_map(|(dialect, _)| dialect.open_categories())
            .copied()
            .collect()
    }

    /// From now on this node reports not ready, so balancers send new clients elsewhere.
    pub fn begin_stopping(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Once every message being posted is stored and announced.
    pub async fn settled(&self) {
        self.posts_under_way.close();
        self.posts_under_way.wait().await;
    }

    /// The user that greets newcomers in their welcome chat.
    pub fn system_user(&self) -> &User {
        &self.system_user
    }

    /// A chat or who is in it changed: drop it here and on every other node.
    async fn forget_chat(&self, chat: &Chat) {
        self.members.remove(&chat.id);
        self.chats_by_num.remove(&chat.num);
        self.tell_others(Stale {
            chat: Some((chat.id, chat.num)),
            ..Stale::default()
        })
        .await;
    }

    /// Whether two users blocked each other changed.
    async fn forget_pair(&self, pair: String) {
        self.blocked.remove(&pair);
        self.tell_others(Stale {
            pair: Some(pair),
            ..Stale::default()
        })
        .await;
    }

    async fn tell_others(&self, mut stale: Stale) {
        let Some(link) = self.hub.cluster() else {
            return;
        };
        stale.node = link.node().to_owned();
        match serde_json::to_vec(&stale) {
            Ok(payload) => link.publish(CACHES_CHANNEL, &payload).await,
            Err(e) => tracing::error!("could not encode a cache change: {e}"),
        }
    }

    fn drop_stale(&self, stale: Stale) {
        if stale.all {
            self.drop_all_cached();
            tracing::info!(node = %stale.node, "caches dropped: that node's changes during its Redis outage are unknown");
            return;
        }
        if let Some((id, num)) = stale.chat {
            self.members.remove(&id);
            self.chats_by_num.remove(&num);
        }
        if let Some(pair) = stale.pair {
            self.blocked.remove(&pair);
        }
    }

    fn drop_all_cached(&self) {
        self.members.clear();
        self.chats_by_num.clear();
        self.blocked.clear();
    }
}

/// Apply other nodes' changes to this node's caches. After an outage of the link, whose
/// changes were lost both ways, drop everything and have every other node do the same; after a
/// change this node dropped, drop everything here.
async fn follow_other_nodes(
    core: Weak<Core>,
    node: String,
    mut stale: tokio::sync::mpsc::Receiver<rooms::cluster::Message>,
    mut returns: tokio::sync::watch::Receiver<u64>,
    mut drops: tokio::sync::watch::Receiver<u64>,
) {
    loop {
        tokio::select! {
            message = stale.recv() => {
                let Some((_, payload)) = message else { return };
                let Some(core) = core.upgrade() else { return };
                match serde_json::from_slice::<Stale>(&payload) {
                    Ok(stale) if stale.node == node => {}
                    Ok(stale) => core.drop_stale(stale),
                    Err(e) => tracing::warn!("unreadable cache change from another node: {e}"),
                }
            }
            changed = returns.changed() => {
                if changed.is_err() {
                    return;
                }
                let Some(core) = core.upgrade() else { return };
                core.drop_all_cached();
                tracing::info!("caches dropped: changes made elsewhere during the Redis outage are unknown");
                // Should this word be lost too, the link is down again and will return again.
                core.tell_others(Stale { all: true, ..Stale::default() }).await;
            }
            changed = drops.changed() => {
                if changed.is_err() {
                    return;
                }
                let Some(core) = core.upgrade() else { return };
                core.drop_all_cached();
                tracing::warn!("caches dropped: this node fell behind other nodes' changes");
            }
        }
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
        cache.insert(3, "chat");
        cache.clear();
        assert_eq!(cache.get(&3), None);
    }
}
