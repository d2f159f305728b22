//! Cross-node cache invalidation: the core's hot caches (see `Core`), and how a node tells the
//! others which entries it changed, and hears theirs.

use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use quick_cache::sync::Cache;
use rooms::Hub;
use serde::{Deserialize, Serialize};

use super::{App, Core};
use crate::store::Chat;

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
/// The Redis channel (under the link's prefix) on which nodes tell each other which cached
/// entries changed.
const CACHES_CHANNEL: &str = "caches";

/// A bounded cache whose entries expire.
pub(super) struct HotCache<K, V> {
    entries: Cache<K, (Instant, V)>,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> HotCache<K, V> {
    pub(super) fn with_ttl(ttl: Duration) -> Self {
        Self {
            entries: Cache::new(CACHE_CHATS),
            ttl,
        }
    }

    pub(super) fn get(&self, key: &K) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value)
    }

    pub(super) fn insert(&self, key: K, value: V) {
        self.entries.insert(key, (Instant::now(), value));
    }

    /// The entry for `key`, or `value` stored now: of tasks that ask at once, one stores and
    /// the others get what it stored. For entries that stay right once made (counters that
    /// only move forward): an expired one is renewed as it is.
    pub(super) fn get_or_insert(&self, key: K, value: impl FnOnce() -> V) -> V {
        let stored = self.entries.get_or_insert_with(&key, || {
            Ok::<_, std::convert::Infallible>((Instant::now(), value()))
        });
        let Ok((at, stored)) = stored;
        if at.elapsed() >= self.ttl {
            self.entries.insert(key, (Instant::now(), stored.clone()));
        }
        stored
    }

    pub(super) fn remove(&self, key: &K) {
        self.entries.remove(key);
    }

    pub(super) fn clear(&self) {
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

/// How long a cached entry is trusted on this node.
pub(super) fn ttl(hub: &Hub) -> Duration {
    match hub.cluster() {
        Some(_) => CACHE_TTL,
        None => LONE_CACHE_TTL,
    }
}

impl Core {
    /// A chat or who is in it changed: drop it here and on every other node.
    pub(super) async fn forget_chat(&self, chat: &Chat) {
        self.members.remove(&chat.id);
        self.chats_by_num.remove(&chat.num);
        self.tell_others(Stale {
            chat: Some((chat.id, chat.num)),
            ..Stale::default()
        })
        .await;
    }

    /// Whether two users blocked each other changed.
    pub(super) async fn forget_pair(&self, pair: String) {
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
            Ok(payload) => link.publish(&link.key(CACHES_CHANNEL), &payload).await,
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

/// When clustered, keep `core`'s caches in step with other nodes' changes.
pub(super) async fn follow_other_nodes(core: &App) -> crate::error::Result<()> {
    let Some(link) = core.hub.cluster().cloned() else {
        return Ok(());
    };
    let stale = link
        .subscribe(&link.key(CACHES_CHANNEL), 4096)
        .await
        .map_err(|e| anyhow::anyhow!("subscribing to cache changes: {e}"))?;
    tokio::spawn(follow(
        Arc::downgrade(core),
        link.node().to_owned(),
        stale,
        link.returns(),
        link.drops(),
    ));
    Ok(())
}

/// Apply other nodes' changes to this node's caches. After an outage of the link, whose
/// changes were lost both ways, drop everything and have every other node do the same; after a
/// change this node dropped, drop everything here.
async fn follow(
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
