//! A realistic data set (users, follows, connections, groups, events, reels, files) loaded
//! through the core, so every rule that guards the API also guards the fixtures.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, anyhow};
use bson::oid::ObjectId;
use bson::{DateTime, doc};
use serde::Deserialize;

use crate::core::Core;
use crate::core::groups::NewGroup;
use crate::store::{Answer, Attachment, FileKind, Reel, RequestStatus, User};

#[derive(Deserialize)]
struct Fixtures {
    users: Vec<FixtureUser>,
    #[serde(default)]
    follows: Vec<(String, String)>,
    #[serde(default)]
    connections: Vec<FixtureConnection>,
    #[serde(default)]
    groups: Vec<FixtureGroup>,
    #[serde(default)]
    requests: Vec<FixtureRequest>,
}

/// A chat `from` asked `to` for, with what `from` wrote meanwhile, left as `status` says.
#[derive(Deserialize)]
struct FixtureRequest {
    from: String,
    to: String,
    status: RequestStatus,
    #[serde(default)]
    messages: Vec<String>,
}

#[derive(Deserialize)]
struct FixtureUser {
    username: String,
    #[serde(default)]
    photo: String,
}

#[derive(Deserialize)]
struct FixtureConnection {
    from: String,
    to: String,
    status: Answer,
    /// Also open their one-to-one chat from this connection.
    #[serde(default)]
    chat: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixtureGroup {
    name: String,
    category: String,
    creator: String,
    participants: Vec<String>,
    #[serde(default)]
    restricted: bool,
    event: Option<FixtureEvent>,
    #[serde(default)]
    messages: Vec<FixtureMessage>,
    #[serde(default)]
    reels: Vec<FixtureReel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixtureEvent {
    name: String,
    starts_at: String,
    ends_at: String,
}

#[derive(Deserialize)]
struct FixtureMessage {
    by: String,
    content: String,
    #[serde(default)]
    files: Vec<FixtureFile>,
}

#[derive(Deserialize)]
struct FixtureFile {
    #[serde(rename = "type")]
    kind: FileKind,
    tag: String,
    url: String,
    cover: Option<String>,
    meta: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct FixtureReel {
    by: String,
    description: String,
    tag: String,
    video: String,
    #[serde(default)]
    hashtags: Vec<String>,
    #[serde(default)]
    anonymous: bool,
}

/// The fixture users by username; empty when the set was already loaded.
pub type Loaded = Vec<User>;

/// Load the data set at `path` once: a database that already has its first user is left as is.
pub async fn load(core: &Core, path: &Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading fixtures from {}", path.display()))?;
    let fixtures: Fixtures = serde_json::from_str(&text)
        .with_context(|| format!("parsing fixtures in {}", path.display()))?;
    let first = fixtures
        .users
        .first()
        .ok_or_else(|| anyhow!("the fixtures have no users"))?;
    let existing = core
        .store
        .users
        .find_one(doc! { "username": &first.username })
        .await?;
    if existing.is_some() {
        tracing::info!(path = %path.display(), "fixtures already loaded; left as they are");
        return Ok(Vec::new());
    }

    let mut users: HashMap<String, User> = HashMap::new();
    let mut loaded = Vec::new();
    for fixture in &fixtures.users {
        let mut user = core.create_user(&fixture.username, None).await?;
        if !fixture.photo.is_empty() {
            user = core
                .update_profile(&user, &user.username, &fixture.photo)
                .await?;
        }
        users.insert(fixture.username.clone(), user.clone());
        loaded.push(user);
    }
    let user = |name: &str| {
        users
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow!("fixtures name an unknown user {name:?}"))
    };

    for (follower, followee) in &fixtures.follows {
        core.follow(&user(follower)?, user(followee)?.id).await?;
    }
    for fixture in &fixtures.connections {
        let (from, to) = (user(&fixture.from)?, user(&fixture.to)?);
        let connection = core.request_connection(&from, to.id).await?;
        if fixture.status != Answer::Pending {
            core.answer_connection(&to, connection.id, fixture.status)
                .await?;
        }
        if fixture.chat {
            core.open_direct(&from, &to, Some(connection.id), None)
                .await?;
        }
    }
    for fixture in &fixtures.requests {
        let (from, to) = (user(&fixture.from)?, user(&fixture.to)?);
        let chat = core.request_chat(&from, &to).await?.chat().clone();
        for text in &fixture.messages {
            core.post_message(&from, &chat, text).await?;
        }
        match fixture.status {
            RequestStatus::Pending => {}
            RequestStatus::Active => {
                core.answer_request(&to, chat.id, true).await?;
            }
            RequestStatus::Declined => {
                core.answer_request(&to, chat.id, false).await?;
            }
        }
    }
    for fixture in fixtures.groups {
        let creator = user(&fixture.creator)?;
        let participants = fixture
            .participants
            .iter()
            .map(|name| user(name).map(|u| u.id))
            .collect::<anyhow::Result<Vec<ObjectId>>>()?;
        let group = core
            .create_group(
                &creator,
                NewGroup {
                    name: fixture.name,
                    category: fixture.category,
                    participants,
                    restricted: fixture.restricted,
                    open_invites: false,
                },
                None,
            )
            .await?;
        let chat = group.chat;
        if let Some(event) = fixture.event {
            let date = |raw: &str| {
                DateTime::parse_rfc3339_str(raw).with_context(|| format!("event date {raw:?}"))
            };
            core.create_meetup(
                &creator,
                chat.id,
                &event.name,
                date(&event.starts_at)?,
                date(&event.ends_at)?,
            )
            .await?;
        }
        for message in fixture.messages {
            let files = message
                .files
                .into_iter()
                .map(|f| {
                    let meta = f.meta.map(bson::Bson::try_from).transpose()?;
                    let file = Attachment {
                        id: ObjectId::new(),
                        url: f.url,
                        cover: f.cover,
                        meta,
                    };
                    Ok((f.kind, f.tag, file))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let author = user(&message.by)?;
            if files.is_empty() {
                core.post_message(&author, &chat, &message.content).await?;
            } else {
                core.post_files(&author, &chat, &message.content, files)
                    .await?;
            }
        }
        // Reels are made elsewhere in the original product; here they only come from fixtures.
        for reel in fixture.reels {
            let now = DateTime::now();
            let reel = Reel {
                id: ObjectId::new(),
                user_id: user(&reel.by)?.id,
                chat_id: chat.id,
                description: reel.description,
                tag: reel.tag,
                video: reel.video,
                hashtags: reel.hashtags,
                is_anonymous: reel.anonymous,
                views: 0,
                likes: 0,
                super_likes: 0,
                shares: 0,
                comments: 0,
                created_at: now,
                updated_at: now,
            };
            core.store.reels.insert_one(&reel).await?;
        }
    }
    tracing::info!(path = %path.display(), users = loaded.len(), "fixtures loaded");
    Ok(loaded)
}
