//! The channels REST endpoints.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::wire::{Body, Caller, ChannelsError, ChannelsWire, MessageView, UserView, array_param};
use crate::core::App;
use crate::core::direct::Opened;
use crate::core::history::HistoryPage;
use crate::error::Error;
use crate::http;
use crate::http::ids::{NumericId, parse_id};
use crate::store::User;

/// The spec's page of history, and the most one request may ask for.
const HISTORY_DEFAULT: i64 = 50;
const HISTORY_MAX: i64 = 100;
/// The most ids one `/users` or `/dmchannels` request may ask for.
const LOOKUP_MAX: usize = 100;
/// The only channel type the spec defines.
const DM_CHANNEL: i64 = 1;

type Result<T> = std::result::Result<T, ChannelsError>;

pub fn router() -> Router<App> {
    Router::new()
        .route("/new", post(new_session))
        .route("/update-account", post(update_account))
        .route("/create-channel", post(create_channel))
        .route("/users", get(fetch_users))
        .route("/messages", get(fetch_messages))
        .route("/dmchannels", get(fetch_dm_channels))
        .method_not_allowed_fallback(http::method_not_allowed::<ChannelsWire>)
}

#[derive(Deserialize)]
struct NewSession {
    #[serde(rename = "accountID", default)]
    account_id: Option<serde_json::Value>,
    username: Option<String>,
}

#[derive(Serialize)]
struct Session {
    id: String,
    dms: Vec<String>,
    token: String,
}

/// Create an account (201), or log in with `accountID` + `username` (202).
async fn new_session(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body { value: req, .. }: Body<NewSession>,
) -> Result<(StatusCode, Json<Session>)> {
    let username = req
        .username
        .ok_or_else(|| Error::invalid("username is required"))?;
    let account_id = match req.account_id {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
        Some(value) => {
            Some(serde_json::from_value::<NumericId>(value).map_err(|_| Error::Unauthorized)?)
        }
    };
    let (status, user) = match account_id {
        None => (
            StatusCode::CREATED,
            app.create_user(&username, Some(peer.ip())).await?,
        ),
        Some(NumericId(num)) => {
            let user = app.user_by_num(num).await?;
            // The system user greets newcomers; nobody logs in as it.
            let user =
                user.filter(|u| u.username == username.trim() && u.id != app.system_user().id);
            (StatusCode::ACCEPTED, user.ok_or(Error::Unauthorized)?)
        }
    };
    let dms = app
        .direct_chats_of(&user)
        .await?
        .iter()
        .map(|c| c.num.to_string())
        .collect();
    let token = app.tokens.issue(&user, crate::core::tokens::TOKEN_TTL)?;
    Ok((
        status,
        Json(Session {
            id: user.num.to_string(),
            dms,
            token,
        }),
    ))
}

#[derive(Deserialize)]
struct UpdateAccount {
    #[serde(rename = "avatarURL")]
    avatar_url: Option<String>,
    username: Option<String>,
}

async fn update_account(
    State(app): State<App>,
    Caller { user, .. }: Caller,
    Body { value: req, .. }: Body<UpdateAccount>,
) -> Result<(StatusCode, Json<UserView>)> {
    let (Some(avatar_url), Some(username)) = (req.avatar_url, req.username) else {
        return Err(Error::invalid("avatarURL and username are both required").into());
    };
    let updated = app.update_profile(&user, &username, &avatar_url).await?;
    Ok((StatusCode::ACCEPTED, Json(UserView::from(&updated))))
}

#[derive(Deserialize)]
struct CreateChannel {
    to: Option<NumericId>,
    #[serde(rename = "type")]
    kind: Option<NumericId>,
}

async fn create_channel(
    State(app): State<App>,
    Caller { user, .. }: Caller,
    Body { value: req, .. }: Body<CreateChannel>,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let (Some(NumericId(to)), Some(NumericId(kind))) = (req.to, req.kind) else {
        return Err(Error::invalid("to and type are both required").into());
    };
    if kind != DM_CHANNEL {
        return Err(Error::invalid("only DM channels (type 1) are supported").into());
    }
    let other = app.user_by_num(to).await?.ok_or(Error::NotFound("user"))?;
    match app.open_direct(&user, &other, None, None).await? {
        Opened::Created(chat) => Ok((
            StatusCode::CREATED,
            Json(json!({ "channel_id": chat.num.to_string() })),
        )),
        Opened::Existing(_) => {
            Err(Error::Conflict("a channel between these users already exists".into()).into())
        }
    }
}

async fn fetch_users(
    State(app): State<App>,
    Caller { user: _, .. }: Caller,
    RawQuery(query): RawQuery,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let nums = lookup_ids(query.as_deref(), "users")?;
    let users = app.users_by_num(&nums).await?;
    let views: Vec<UserView> = users.iter().map(UserView::from).collect();
    let status = if views.is_empty() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "users": views }))))
}

async fn fetch_dm_channels(
    State(app): State<App>,
    Caller { user, .. }: Caller,
    RawQuery(query): RawQuery,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let nums = lookup_ids(query.as_deref(), "channels")?;
    let chats = app.member_chats_by_num(&user, &nums).await?;
    let partners = app.direct_partners(&user, &chats).await?;
    let channels: Vec<_> = chats
        .iter()
        .filter_map(|chat| {
            let other = partners.get(&chat.id)?;
            Some(json!({ "channel_id": chat.num.to_string(), "user": UserView::from(other) }))
        })
        .collect();
    let status = if channels.is_empty() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "dmchannels": channels }))))
}

fn lookup_ids(query: Option<&str>, name: &'static str) -> Result<Vec<i64>> {
    let ids = array_param(query, name)?;
    if ids.is_empty() {
        return Err(Error::invalid(format!("{name} must list at least one id")).into());
    }
    if ids.len() > LOOKUP_MAX {
        return Err(Error::invalid(format!("at most {LOOKUP_MAX} {name} per request")).into());
    }
    Ok(ids)
}

#[derive(Deserialize)]
struct MessagesQuery {
    channel_id: Option<String>,
    before: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// The last messages of a channel; with no channel (`null`/`undefined`), the welcome channel.
async fn fetch_messages(
    State(app): State<App>,
    Caller { user, .. }: Caller,
    RawQuery(query): RawQuery,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let query: MessagesQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|e| Error::invalid(format!("invalid query: {e}")))?;
    let optional_id = |raw: Option<String>| {
        raw.map(|s| parse_id(&s).map_err(Error::invalid))
            .transpose()
    };
    let limit = optional_id(query.limit)?.unwrap_or(HISTORY_DEFAULT);
    if !(1..=HISTORY_MAX).contains(&limit) {
        return Err(Error::invalid(format!("limit must be between 1 and {HISTORY_MAX}")).into());
    }
    let page = HistoryPage {
        skip: 0,
        before: optional_id(query.before)?,
        after: optional_id(query.after)?,
        limit,
    };

    let (status, chat) = match query.channel_id.as_deref().map(str::trim) {
        None | Some("" | "null" | "undefined") => {
            (StatusCode::CREATED, app.welcome_chat(&user).await?)
        }
        Some(id) => (
            StatusCode::OK,
            app.member_chat(&user, parse_id(id).map_err(Error::invalid)?)
                .await?,
        ),
    };
    let other = app
        .direct_partners(&user, std::slice::from_ref(&chat))
        .await?
        .remove(&chat.id);
    let messages = app.history(&chat, page).await?;
    let author_ids: Vec<_> = messages.iter().map(|m| m.author_id).collect();
    let authors = app.users_by_id(&author_ids).await?;

    let mut views = Vec::with_capacity(messages.len() + 1);
    let from_system = other.as_ref().is_some_and(|o| o.id == app.system_user().id);
    // The welcome message is the first of the welcome channel; it is derived, not stored.
    if from_system && page.after.is_none() && (messages.len() as i64) < limit {
        views.push(welcome_message(&user, app.system_user(), chat.num));
    }
    views.extend(messages.iter().filter_map(|m| {
        let author = authors.get(&m.author_id)?;
        Some(MessageView::new(m, author, chat.num))
    }));
    let name = other
        .as_ref()
        .map(|o| o.username.clone())
        .unwrap_or_default();
    let body = json!({
        "messages": views,
        "channel": { "name": name, "id": chat.num.to_string() },
        "other_user": other.map(|o| o.num.to_string()),
    });
    Ok((status, Json(body)))
}

fn welcome_message(user: &User, system: &User, channel_num: i64) -> MessageView {
    MessageView {
        author: system.into(),
        channel_id: channel_num.to_string(),
        content: format!(
            "Hello! Welcome {}!!! It appears that you currently have no friends, though you can add some to hang out with by clicking that plus button at the top and entering their id!",
            user.username
        ),
        id: "0".to_owned(),
    }
}
