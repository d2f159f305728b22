//! Documents as they are stored. One shape per entity, shared by every dialect.

use bson::DateTime;
use bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// Stable numeric id for dialects whose ids are numbers.
    pub num: i64,
    pub username: String,
    #[serde(default)]
    pub avatar_url: String,
    /// Bumped to revoke every token issued before.
    #[serde(default)]
    pub token_version: i32,
    pub created_at: DateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    /// A conversation between exactly two users.
    Direct,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chat {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub num: i64,
    pub kind: ChatKind,
    /// For direct chats, the two member ids in a canonical order; unique, so one pair has one chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<ObjectId>,
    pub created_at: DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Participant {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub chat_id: ObjectId,
    pub user_id: ObjectId,
    pub joined_at: DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub num: i64,
    pub chat_id: ObjectId,
    pub author_id: ObjectId,
    pub content: String,
    pub created_at: DateTime,
}

/// A device that can receive pushes: one FCM registration token, owned by one user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: ObjectId,
    pub token: String,
    pub platform: Platform,
    pub updated_at: DateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Android,
    Ios,
    Web,
}
