//! MongoDB: the connection, the collections and their indexes.

mod batch;
pub mod ids;
pub mod local;
pub mod models;

use std::time::Duration;

use bson::oid::ObjectId;
use bson::{Bson, Document, doc};
use futures::TryStreamExt;
use mongodb::options::{Acknowledgment, ClientOptions, Hint, IndexOptions, WriteConcern};
use mongodb::{Client, Collection, Database, IndexModel};
use serde::Serialize;

use crate::error::Result;
pub use batch::{InsertBatches, Pace, TimeMoves};
pub use ids::IdAllocator;
pub use models::*;

#[derive(Debug)]
pub struct Store {
    pub db: Database,
    pub users: Collection<User>,
    pub chats: Collection<Chat>,
    pub participants: Collection<Participant>,
    pub messages: Collection<Message>,
    /// Messages are inserted through here, many senders' to a command.
    pub message_inserts: InsertBatches<Message>,
    /// Chats' last activity moves forward through here, each chat's moves gathered.
    pub chat_activity: TimeMoves,
    pub devices: Collection<Device>,
    pub files: Collection<ChatFile>,
    pub follows: Collection<Follow>,
    pub connections: Collection<Connection>,
    pub blocks: Collection<Block>,
    /// Stored in `events`, the chats dialect's name for them.
    pub meetups: Collection<Meetup>,
    pub reels: Collection<Reel>,
    pub join_requests: Collection<JoinRequest>,
    pub scores: Collection<Score>,
    pub notifications: Collection<Notification>,
    pub verifications: Collection<Verification>,
    pub ids: IdAllocator,
}

/// How long a call waits for an unreachable database before it fails, and so is answered
/// 503, instead of the driver's 30 s. A reachable one is selected at once; the driver looks
/// for a lost one again within half a second of the next call.
const OUTAGE_WAIT: Duration = Duration::from_secs(1);

/// When a chat's last-activity moves are written, as one statement at the latest time: 2 s
/// after its first, and no more than 100 chats a second, each chat gathering longer when more
/// are busy at once. Chat lists write what is gathering before they read; other nodes' lists
/// see it 2 s later, or with 1,000 chats busy on one node 10 s.
const ACTIVITY_PACE: Pace = Pace {
    linger: Duration::from_secs(2),
    per_second: 100,
};

/// How long a start waits for the database to answer.
const START_WAIT: Duration = Duration::from_secs(15);

impl Store {
    pub async fn connect(uri: &str, database: &str) -> Result<Self> {
        let mut options = ClientOptions::parse(uri).await?;
        options.app_name = Some("palaver".into());
        options.server_selection_timeout = Some(OUTAGE_WAIT);
        options.connect_timeout = Some(Duration::from_secs(2));
        // What a client is told was stored survives a crash of the database: writes are
        // acknowledged once journaled on a majority.
        let write_concern = WriteConcern::builder()
            .w(Acknowledgment::Majority)
            .journal(true)
            .build();
        options.write_concern = Some(write_concern.clone());
        // Messages' batches retry on their own, by their documents' ids (`InsertBatches`), so
        // their client does not: a driver's retryable writes make the database keep a record
        // of every write command, a cost on the busiest path. Other writes keep the driver's.
        let mut own_retries = options.clone();
        own_retries.retry_writes = Some(false);
        let db = Client::with_options(options)?.database(database);
        let inserts_db = Client::with_options(own_retries)?.database(database);
        let started = tokio::time::Instant::now();
        while let Err(e) = db.run_command(doc! { "ping": 1 }).await {
            if started.elapsed() > START_WAIT {
                return Err(e.into());
            }
            tracing::info!("waiting for the database: {e}");
        }
        let store = Self {
            users: db.collection("users"),
            chats: db.collection("chats"),
            participants: db.collection("participants"),
            messages: db.collection("messages"),
            message_inserts: InsertBatches::inserts(inserts_db.collection("messages")),
            chat_activity: TimeMoves::moves_forward(
                db.clone(),
                "chats",
                "updated_at",
                &write_concern,
                ACTIVITY_PACE,
            )?,
            devices: db.collection("devices"),
            files: db.collection("files"),
            follows: db.collection("follows"),
            connections: db.collection("connections"),
            blocks: db.collection("blocks"),
            meetups: db.collection("events"),
            reels: db.collection("reels"),
            join_requests: db.collection("join_requests"),
            scores: db.collection("scores"),
            notifications: db.collection("notifications"),
            verifications: db.collection("verifications"),
            ids: IdAllocator::new(db.collection("counters")),
            db,
        };
        store.create_indexes().await?;
        Ok(store)
    }

    /// The user signing in with `value` as their `field` (a unique field they sign in with:
    /// `email` or `phone`).
    pub async fn user_by(&self, field: SignInField, value: &str) -> Result<Option<User>> {
        let (filter, hint) = field.lookup(value);
        Ok(self.users.find_one(filter).hint(Hint::Keys(hint)).await?)
    }

    /// Whether the database answers now (within `OUTAGE_WAIT`).
    pub async fn is_up(&self) -> bool {
        let ping = self.db.run_command(doc! { "ping": 1 });
        matches!(tokio::time::timeout(OUTAGE_WAIT, ping).await, Ok(Ok(_)))
    }

    async fn create_indexes(&self) -> Result<()> {
        self.users.create_index(unique(doc! { "num": 1 })).await?;
        self.users
            .create_index(unique_where_present(SignInField::Email.name()))
            .await?;
        self.users
            .create_index(unique_where_present(SignInField::Phone.name()))
            .await?;
        self.chats.create_index(unique(doc! { "num": 1 })).await?;
        self.chats
            .create_index(unique_where_present("pair_key"))
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
        // History reads and catching up walk one chat's messages in order; one place each.
        self.number_legacy_messages().await?;
        self.messages
            .create_index(unique(doc! { "chat_id": 1, "seq": 1 }))
            .await?;
        self.mark_legacy_reads().await?;
        self.mark_legacy_deliveries().await?;
        // Requests asked of a user, by where they stand.
        self.chats
            .create_index(plain(doc! { "request.to": 1, "request.status": 1 }))
            .await?;
        // Chat lists: a user's chats by last activity; explore: groups by name.
        self.chats
            .create_index(plain(doc! { "updated_at": -1 }))
            .await?;
        self.chats
            .create_index(plain(doc! { "kind": 1, "group.category": 1 }))
            .await?;
        self.files
            .create_index(plain(doc! { "chat_id": 1, "kind": 1, "tag": 1, "at": -1 }))
            .await?;
        // One follow, one block, one pending join request per pair.
        self.follows
            .create_index(unique(doc! { "follower": 1, "followee": 1 }))
            .await?;
        self.follows
            .create_index(plain(doc! { "followee": 1 }))
            .await?;
        self.blocks
            .create_index(unique(doc! { "blocker": 1, "blocked": 1 }))
            .await?;
        self.connections
            .create_index(plain(doc! { "from": 1, "to": 1 }))
            .await?;
        self.connections
            .create_index(plain(doc! { "to": 1, "status": 1 }))
            .await?;
        // Likes (connections) and follows are named by number in the hooks dialect.
        self.connections
            .create_index(plain(doc! { "num": 1 }))
            .await?;
        self.connections
            .create_index(plain(doc! { "from": 1, "status": 1 }))
            .await?;
        self.follows
            .create_index(plain(doc! { "follower": 1, "created_at": -1 }))
            .await?;
        self.notifications
            .create_index(plain(doc! { "user_id": 1, "num": -1 }))
            .await?;
        self.users
            .create_index(plain(doc! { "profile.interests": 1 }))
            .await?;
        self.meetups
            .create_index(unique(doc! { "chat_id": 1 }))
            .await?;
        self.reels
            .create_index(plain(doc! { "chat_id": 1, "created_at": -1 }))
            .await?;
        self.join_requests
            .create_index(plain(doc! { "chat_id": 1, "user_id": 1, "status": 1 }))
            .await?;
        Ok(())
    }
}

impl Store {
    /// Messages stored before chats numbered their messages get their numbers, in the order
    /// they were stored. Runs once: afterwards none lacks one.
    async fn number_legacy_messages(&self) -> Result<()> {
        let unnumbered = doc! { "seq": { "$exists": false } };
        if self.messages.find_one(unnumbered.clone()).await?.is_none() {
            return Ok(());
        }
        let chats = self.messages.distinct("chat_id", unnumbered).await?;
        tracing::info!(
            chats = chats.len(),
            "numbering the messages of chats from before sequence numbers"
        );
        for chat in chats {
            let mut ids = self
                .messages
                .clone_with_type::<Document>()
                .find(doc! { "chat_id": &chat })
                .sort(doc! { "num": 1 })
                .projection(doc! { "_id": 1 })
                .await?;
            let mut seq = 0i64;
            while let Some(message) = ids.try_next().await? {
                seq += 1;
                self.messages
                    .update_one(
                        doc! { "_id": message.get("_id") },
                        doc! { "$set": { "seq": seq } },
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

impl Store {
    /// Participants from before read marks were sequence numbers get the number of the last
    /// message they had read by time. Runs once: afterwards none lacks one.
    async fn mark_legacy_reads(&self) -> Result<()> {
        let unmarked = doc! { "last_read_seq": { "$exists": false } };
        let participants = self.participants.clone_with_type::<Document>();
        if participants.find_one(unmarked.clone()).await?.is_none() {
            return Ok(());
        }
        let mut cursor = participants.find(unmarked).await?;
        while let Some(participant) = cursor.try_next().await? {
            let read_at = participant
                .get_datetime("last_read_at")
                .or_else(|_| participant.get_datetime("joined_at"))
                .copied()
                .unwrap_or(bson::DateTime::MIN);
            let last_read = self
                .messages
                .clone_with_type::<Document>()
                .find_one(doc! {
                    "chat_id": participant.get("chat_id"),
                    "created_at": { "$lte": read_at },
                })
                .sort(doc! { "chat_id": 1, "seq": -1 })
                .projection(doc! { "seq": 1 })
                .await?;
            let seq = last_read.and_then(|m| m.get_i64("seq").ok()).unwrap_or(0);
            participants
                .update_one(
                    doc! { "_id": participant.get("_id") },
                    doc! { "$set": { "last_read_seq": seq } },
                )
                .await?;
        }
        Ok(())
    }
}

impl Store {
    /// Participants from before delivery receipts count every message of their chat so far
    /// as delivered: none of their devices asks for it again. Runs once.
    async fn mark_legacy_deliveries(&self) -> Result<()> {
        let unmarked = doc! { "delivered_seq": { "$exists": false } };
        let participants = self.participants.clone_with_type::<Document>();
        if participants.find_one(unmarked.clone()).await?.is_none() {
            return Ok(());
        }
        let chats = participants.distinct("chat_id", unmarked.clone()).await?;
        for chat in chats {
            let newest = self
                .messages
                .clone_with_type::<Document>()
                .find_one(doc! { "chat_id": &chat })
                .sort(doc! { "chat_id": 1, "seq": -1 })
                .projection(doc! { "seq": 1 })
                .await?;
            let seq = newest.and_then(|m| m.get_i64("seq").ok()).unwrap_or(0);
            let mut filter = unmarked.clone();
            filter.insert("chat_id", chat);
            participants
                .update_many(filter, doc! { "$set": { "delivered_seq": seq } })
                .await?;
        }
        Ok(())
    }
}

/// Inserts told apart from their own retries.
pub trait InsertNew<T> {
    /// Insert a new `document` whose `_id` is `id`, as `insert_one` does. The driver retries a
    /// write whose connection failed before the answer came, and the retry of an insert that
    /// had landed is refused by a unique index: a refusal while the document's own `_id` is
    /// stored is that, and the insert is done. (Under load on the test database, 3 of 20,000
    /// sign-ups answered 500 with their account stored.)
    fn insert_new(
        &self,
        document: &T,
        id: ObjectId,
    ) -> impl Future<Output = mongodb::error::Result<()>> + Send;
}

impl<T: Serialize + Send + Sync> InsertNew<T> for Collection<T> {
    async fn insert_new(&self, document: &T, id: ObjectId) -> mongodb::error::Result<()> {
        let refused = match self.insert_one(document).await {
            Ok(_) => return Ok(()),
            Err(e) if crate::error::is_duplicate_key(&e) => e,
            Err(e) => return Err(e),
        };
        let stored = self
            .clone_with_type::<Document>()
            .find_one(doc! { "_id": id })
            .projection(doc! { "_id": 1 })
            .await?;
        match stored {
            Some(_) => {
                tracing::warn!(collection = self.name(), %id, "an insert's retry was refused by its own first attempt: done");
                Ok(())
            }
            None => Err(refused),
        }
    }
}

/// A value as it is stored, for updates that set fields rather than whole documents.
pub fn to_bson(value: &impl Serialize) -> Result<Bson> {
    bson::serialize_to_bson(value).map_err(|e| crate::error::Error::Internal(e.into()))
}

pub fn to_document(value: &impl Serialize) -> Result<Document> {
    bson::serialize_to_document(value).map_err(|e| crate::error::Error::Internal(e.into()))
}

fn unique(keys: Document) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().unique(true).build())
        .build()
}

/// A field users sign in with, unique among the users who have one.
#[derive(Debug, Clone, Copy)]
pub enum SignInField {
    Email,
    Phone,
}

impl SignInField {
    fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
        }
    }

    /// The query for one user by this field, and the index to read it with. The index is
    /// named because it is partial (only users with the field are in it): SecantusDB does not
    /// see that an equality on the field fits it and reads the whole collection (20 ms at
    /// 1,200 users, per sign-in). Naming it is safe: whoever has the value has the field.
    pub fn lookup(self, value: &str) -> (Document, Document) {
        (doc! { self.name(): value }, doc! { self.name(): 1 })
    }
}

/// Unique among the documents that have the field at all.
fn unique_where_present(field: &str) -> IndexModel {
    IndexModel::builder()
        .keys(doc! { field: 1 })
        .options(
            IndexOptions::builder()
                .unique(true)
                .partial_filter_expression(doc! { field: { "$exists": true } })
                .build(),
        )
        .build()
}

fn plain(keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).build()
}
