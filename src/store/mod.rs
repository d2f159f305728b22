//! MongoDB: the connection, the collections and their indexes.

pub mod ids;
pub mod local;
pub mod models;

use std::time::Duration;

use bson::{Document, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};

use crate::error::Result;
pub use ids::IdAllocator;
pub use models::*;

#[derive(Debug)]
pub struct Store {
    pub db: Database,
    pub users: Collection<User>,
    pub chats: Collection<Chat>,
    pub participants: Collection<Participant>,
    pub messages: Collection<Message>,
    pub devices: Collection<Device>,
    pub ids: IdAllocator,
}

impl Store {
    pub async fn connect(uri: &str, database: &str) -> Result<Self> {
        let mut options = ClientOptions::parse(uri).await?;
        options.app_name = Some("palaver".into());
        options.server_selection_timeout = Some(Duration::from_secs(10));
        let db = Client::with_options(options)?.database(database);
        db.run_command(doc! { "ping": 1 }).await?;
        let store = Self {
            users: db.collection("users"),
            chats: db.collection("chats"),
            participants: db.collection("participants"),
            messages: db.collection("messages"),
            devices: db.collection("devices"),
            ids: IdAllocator::new(db.collection("counters")),
            db,
        };
        store.create_indexes().await?;
        Ok(store)
    }

    async fn create_indexes(&self) -> Result<()> {
        self.users.create_index(unique(doc! { "num": 1 })).await?;
        self.chats.create_index(unique(doc! { "num": 1 })).await?;
        self.chats
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "pair_key": 1 })
                    .options(
                        IndexOptions::builder()
                            .unique(true)
                            .partial_filter_expression(doc! { "pair_key": { "$exists": true } })
                            .build(),
                    )
                    .build(),
            )
            .await?;
        self.participants
            .create_index(unique(doc! { "chat_id": 1, "user_id": 1 }))
            .await?;
        self.participants
            .create_index(plain(doc! { "user_id": 1, "chat_id": 1 }))
            .await?;
        self.messages
            .create_index(unique(doc! { "num": 1 }))
            .await?;
        // A registration token belongs to one device; pushes look devices up by user.
        self.devices
            .create_index(unique(doc! { "token": 1 }))
            .await?;
        self.devices
            .create_index(plain(doc! { "user_id": 1 }))
            .await?;
        // History reads walk one chat's messages newest first.
        self.messages
            .create_index(plain(doc! { "chat_id": 1, "num": -1 }))
            .await?;
        Ok(())
    }
}

fn unique(keys: Document) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().unique(true).build())
        .build()
}

fn plain(keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).build()
}
