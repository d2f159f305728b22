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
    /// For accounts that sign in with a password: the address, lowercased, unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// An argon2 PHC string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
    /// What a user tells others about themselves (the hooks dialect's profile).
    #[serde(default)]
    pub profile: Profile,
    /// For accounts known by their phone: `<country code>.<number>`, digits only; unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// An argon2 PHC string of the last verification code submitted right for the phone: what
    /// the phone's app signs in with. Absent until the phone is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_credential: Option<String>,
}

impl User {
    /// A new account with only a number and a username; the rest is filled in by the caller.
    pub fn new(num: i64, username: String) -> Self {
        Self {
            id: ObjectId::new(),
            num,
            username,
            avatar_url: String::new(),
            token_version: 0,
            created_at: DateTime::now(),
            email: None,
            password_hash: None,
            user_type: None,
            profile: Profile::default(),
            phone: None,
            phone_credential: None,
        }
    }

    pub fn is_creator(&self) -> bool {
        self.user_type == Some(UserType::Creator)
    }

    /// The name others see: the profile's full name, or the username.
    pub fn display_name(&self) -> &str {
        self.profile
            .full_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.username)
    }
}

/// Profile details; every field is optional until the user fills it in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interests: Vec<String>,
    /// Creators' subscription keys; never set for Fans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_sub_keys: Option<String>,
    /// The public URL of the profile picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_pic: Option<String>,
}

/// The two kinds of password accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserType {
    Fan,
    Creator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    /// A conversation between exactly two users.
    Direct,
    /// A named chat of any number of participants, some of them admins.
    Group,
}

/// A label files of a chat are sorted under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub tag: String,
    pub label: String,
}

/// A one-to-one chat `from` asked `to` for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub from: ObjectId,
    pub to: ObjectId,
    pub status: RequestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime>,
}

/// Where a chat request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    /// Asked, not answered: the asker may write; an answer from the other accepts it.
    Pending,
    /// Accepted (or never asked for): both talk.
    Active,
    /// The other declined: the asker may not write, the other may still accept.
    Declined,
}

/// What only group chats have.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupDetails {
    pub name: String,
    pub category: String,
    /// Nobody joins a restricted group by themselves; they ask, or an admin adds them.
    pub restricted: bool,
    pub allow_public_post: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<String>,
    /// Every member may add anyone, and members leave freely; a group left with fewer than two
    /// members is deleted. Otherwise admins add people they follow or are connected with, and
    /// an admin always remains.
    #[serde(default)]
    pub open_invites: bool,
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
    /// For direct chats, the user the creator opened it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressee: Option<ObjectId>,
    /// For direct chats opened from an accepted connection, that connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meet_me: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupDetails>,
    /// For a one-to-one chat one user asked the other for: where the request stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<ChatRequest>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub created_at: DateTime,
    /// Last change to the chat or its newest message; absent until the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime>,
}

impl Chat {
    pub fn is_group(&self) -> bool {
        self.kind == ChatKind::Group
    }

    /// Whether its users may talk: a chat nobody had to ask for is active.
    pub fn request_status(&self) -> RequestStatus {
        self.request
            .as_ref()
            .map_or(RequestStatus::Active, |r| r.status)
    }

    pub fn updated_at(&self) -> DateTime {
        self.updated_at.unwrap_or(self.created_at)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Participant {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub chat_id: ObjectId,
    pub user_id: ObjectId,
    pub joined_at: DateTime,
    #[serde(default)]
    pub is_admin: bool,
    /// When the participant last marked the chat read; absent means since joining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_at: Option<DateTime>,
    /// Messages with a higher sequence number are unread (0: every message).
    #[serde(default)]
    pub last_read_seq: i64,
    /// Messages up to this sequence number reached one of the participant's devices...
    #[serde(default)]
    pub delivered_seq: i64,
    /// ...and so did these, above it (acknowledged out of order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered_above: Vec<i64>,
    /// In chats with an event, whether an admin let this participant in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Answer>,
}

impl Participant {
    pub fn new(chat_id: ObjectId, user_id: ObjectId, is_admin: bool) -> Self {
        let now = DateTime::now();
        Self {
            id: ObjectId::new(),
            chat_id,
            user_id,
            joined_at: now,
            is_admin,
            last_read_at: Some(now),
            last_read_seq: 0,
            delivered_seq: 0,
            delivered_above: Vec::new(),
            status: None,
        }
    }

    pub fn last_read_at(&self) -> DateTime {
        self.last_read_at.unwrap_or(self.joined_at)
    }
}

/// Where a request, a connection or an event participation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    Pending,
    Accepted,
    Rejected,
}

impl Answer {
    /// An answer someone gives, as stored: accepted or rejected, never pending.
    pub fn verdict(self) -> crate::error::Result<bson::Bson> {
        if self == Self::Pending {
            return Err(crate::error::Error::invalid(
                "status must be accepted or rejected",
            ));
        }
        super::to_bson(&self)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// The message's id for dialects whose ids are numbers: unique, but only roughly ordered
    /// across nodes (each node hands out blocks).
    pub num: i64,
    pub chat_id: ObjectId,
    /// Its place in the chat: 1, 2, 3… in the order messages were accepted, whichever node
    /// took them; unique per chat.
    #[serde(default)]
    pub seq: i64,
    pub author_id: ObjectId,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<Attachment>,
    /// A link the author wants previewed with the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The id the author's client gave its own copy, to match it with the stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub created_at: DateTime,
}

/// A file sent with a message: its URL, an optional cover image and free-form metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<bson::Bson>,
}

/// Every file of a chat, one document each, for browsing a chat's media by type and tag.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatFile {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub chat_id: ObjectId,
    pub user_id: ObjectId,
    pub message_id: ObjectId,
    pub kind: FileKind,
    pub tag: String,
    pub file: Attachment,
    pub at: DateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Video,
    Audio,
    Image,
    Document,
    Other,
}

/// `follower` follows `followee`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Follow {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// For dialects whose ids are numbers; 0 for follows made before numbering.
    #[serde(default)]
    pub num: i64,
    pub follower: ObjectId,
    pub followee: ObjectId,
    pub created_at: DateTime,
}

/// A connection asked by `from` and answered by `to`; accepted, it lets them "meet".
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// For dialects whose ids are numbers (a hooks "like"); 0 for connections made before.
    #[serde(default)]
    pub num: i64,
    pub from: ObjectId,
    pub to: ObjectId,
    pub status: Answer,
    pub created_at: DateTime,
}

impl Connection {
    pub fn joins(&self, a: &ObjectId, b: &ObjectId) -> bool {
        (self.from == *a && self.to == *b) || (self.from == *b && self.to == *a)
    }

    /// The one of the two users who is not `user`.
    pub fn other(&self, user: &ObjectId) -> ObjectId {
        if self.from == *user {
            self.to
        } else {
            self.from
        }
    }
}

/// Something a user was told: stored until they clear it, streamed live when they listen.
/// What it says is up to the dialect that shows it, from its kind and who caused it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub num: i64,
    pub user_id: ObjectId,
    pub kind: NotificationKind,
    /// Who followed, asked, answered or wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<ObjectId>,
    /// For an answered connection, the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// The text of notifications stored before dialects wrote their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub created_at: DateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Followed,
    /// Asked for a connection (a hooks "like").
    LikeRequested,
    /// The connection they asked for was answered.
    LikeAnswered,
    MessageWhileOffline,
}

/// `blocker` blocked `blocked`: no one-to-one chat between them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Block {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub blocker: ObjectId,
    pub blocked: ObjectId,
    pub created_at: DateTime,
}

/// A meetup a group chat is about; participants of its chat are let in by an admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meetup {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub chat_id: ObjectId,
    pub name: String,
    pub starts_at: DateTime,
    pub ends_at: DateTime,
    pub created_at: DateTime,
}

impl Meetup {
    /// Until it ends, a meetup takes answers to its participants.
    pub fn is_active(&self) -> bool {
        DateTime::now() < self.ends_at
    }
}

/// A short video posted to a community chat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reel {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: ObjectId,
    pub chat_id: ObjectId,
    pub description: String,
    pub tag: String,
    pub video: String,
    #[serde(default)]
    pub hashtags: Vec<String>,
    #[serde(default)]
    pub is_anonymous: bool,
    #[serde(default)]
    pub views: i64,
    #[serde(default)]
    pub likes: i64,
    #[serde(default)]
    pub super_likes: i64,
    #[serde(default)]
    pub shares: i64,
    #[serde(default)]
    pub comments: i64,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// A user's request to join a restricted group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: ObjectId,
    pub chat_id: ObjectId,
    pub status: Answer,
    pub created_at: DateTime,
}

/// A user's social score: points per action and their total.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Score {
    #[serde(rename = "_id")]
    pub user_id: ObjectId,
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub actions: std::collections::BTreeMap<String, i64>,
}

/// A device that can receive pushes: one FCM registration token, owned by one user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: ObjectId,
    pub token: String,
    pub platform: Platform,
    /// The dialect whose app registered it: its pushes are written in that dialect's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    pub updated_at: DateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Android,
    Ios,
    Web,
}

/// A code sent to a phone, waiting to be submitted; and how many were sent lately, to hold
/// back floods of SMS. One per phone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    /// The phone, as users' `phone`.
    #[serde(rename = "_id")]
    pub phone: String,
    /// An argon2 PHC string of the code, when it was made here (no SMS service); absent when
    /// the service keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hash: Option<String>,
    /// The code is refused after this...
    pub expires_at: DateTime,
    /// ...or after this many wrong submissions.
    #[serde(default)]
    pub attempts: i32,
    pub last_sent: DateTime,
    /// Codes sent since `window_start` (a fixed window of an hour).
    pub window_start: DateTime,
    pub sent_in_window: i32,
}
