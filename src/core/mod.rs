//! The core: every business rule, once, for every dialect.

pub mod chats;
pub mod devices;
pub mod events;
pub mod groups;
pub mod listing;
pub mod messages;
pub mod scores;
pub mod social;
pub mod tokens;
pub mod users;

use std::sync::{Arc, RwLock};

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
    /// Every write to participants goes through the core, which drops the stale entry.
    chats_by_num: Cache<i64, Chat>,
    members: Cache<ObjectId, Arc<[ObjectId]>>,
}

/// Entries per cache; a chat costs well under a kilobyte in each.
const CACHE_CHATS: usize = 100_000;

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
            chats_by_num: Cache::new(CACHE_CHATS),
            members: Cache::new(CACHE_CHATS),
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
