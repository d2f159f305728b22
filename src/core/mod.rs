//! The core: every business rule, once, for every dialect.

pub mod accounts;
mod blocks;
mod caches;
pub mod chats;
pub mod communities;
pub mod devices;
pub mod direct;
pub mod events;
pub mod groups;
pub mod history;
pub mod join_requests;
pub mod listing;
pub mod meetups;
pub mod messages;
pub mod notifications;
pub mod participants;
pub mod phones;
pub mod profiles;
pub mod publisher;
pub mod receipts;
pub mod requests;
pub mod scores;
pub mod secrets;
mod sequence;
pub mod social;
pub mod tokens;
pub mod users;

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Weak};

use bson::oid::ObjectId;
use rooms::{Attendance, Hub, UserId};
use tokio_util::task::TaskTracker;

use crate::media::Media;
use crate::sms::Verifier;
use crate::store::{Chat, Store, User};
use caches::HotCache;
pub use events::{ChatEvent, Dialect, Origin, Rendered};
pub use publisher::Publisher;
pub use tokens::Tokens;

/// A user as the hub knows them: their ObjectId's 12 bytes. Either way it is a copy, with no
/// text between.
pub trait HubUser {
    fn hub_user(&self) -> UserId;
}

impl HubUser for ObjectId {
    fn hub_user(&self) -> UserId {
        UserId::from_bytes(self.bytes())
    }
}

/// The ObjectId of a user the hub names.
pub fn object_id(user: UserId) -> ObjectId {
    ObjectId::from_bytes(user.bytes())
}

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
    /// Each dialect's rendering of events, and the transport its clients hear them through.
    publisher: Publisher,
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
    /// Each busy chat's last sequence number handed out here (see `sequence.rs`). Reloaded
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

impl Core {
    /// The core, and (when clustered) the tasks that keep its caches in step with other nodes.
    pub async fn start(
        store: Store,
        tokens: Tokens,
        hub: Hub,
        media: Option<Media>,
        verifier: Verifier,
        sign_in_limits: accounts::SignInLimits,
        publisher: Publisher,
    ) -> crate::error::Result<App> {
        let system_user = users::ensure_system_user(&store).await?;
        let ttl = caches::ttl(&hub);
        let core = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            store,
            tokens,
            hub,
            media,
            verifier,
            publisher,
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
        caches::follow_other_nodes(&core).await?;
        Ok(core)
    }

    /// The shared core, to hand to work that outlives the current call.
    fn app(&self) -> Option<App> {
        self.me.upgrade()
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
        self.hub.attend(user.id.hub_user(), chats).await
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
}
