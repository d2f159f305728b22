//! The core: every business rule, once, for every dialect.

pub mod chats;
pub mod events;
pub mod messages;
pub mod tokens;
pub mod users;

use std::sync::{Arc, RwLock};

use rooms::Hub;

use crate::store::{Store, User};
pub use events::{ChatEvent, Dialect, Rendered};
pub use tokens::Tokens;

/// Shared state behind every handler of every dialect.
pub type App = Arc<Core>;

pub struct Core {
    pub store: Store,
    pub tokens: Tokens,
    pub hub: Hub,
    dialects: RwLock<Vec<Arc<dyn Dialect>>>,
    system_user: User,
}

impl Core {
    pub async fn new(store: Store, tokens: Tokens, hub: Hub) -> crate::error::Result<Self> {
        let system_user = users::ensure_system_user(&store).await?;
        Ok(Self {
            store,
            tokens,
            hub,
            dialects: RwLock::default(),
            system_user,
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
