//! `/communication/`: notifications, and chat sessions (the core's one-to-one chats between
//! users whose like was confirmed) with their messages.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::views;
use super::wire::{Body, Caller, HooksError, IdValue, Params, on_field, required_id};
use crate::core::App;
use crate::core::history::HistoryPage;
use crate::error::Error;

/// Messages one read of a session returns; `?before=<message id>` reads further back.
const SESSION_PAGE: i64 = 200;

pub fn router() -> Router<App> {
    Router::new()
        .route(
            "/communication/notifications/",
            get(notifications).delete(clear_notifications),
        )
        .route("/communication/chat/session/initiate/", post(initiate))
        .route("/communication/chat/sessions/", get(sessions))
        .route("/communication/chats/", get(messages))
}

async fn notifications(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
) -> Result<Json<Value>, HooksError> {
    let stored = app.notifications_of(&me).await?;
    let actors: Vec<_> = stored.iter().filter_map(|n| n.actor).collect();
    let actors = app.users_by_id(&actors).await?;
    let listed = stored
        .iter()
        .map(|n| views::notification(n, n.actor.and_then(|a| actors.get(&a))))
        .collect();
    Ok(Json(listed))
}

async fn clear_notifications(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
) -> Result<StatusCode, HooksError> {
    app.clear_notifications(&me).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct InitiateForm {
    user: Option<IdValue>,
}

async fn initiate(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Body { value: form, .. }: Body<InitiateForm>,
) -> Result<Json<Value>, HooksError> {
    let num = required_id("user", &form.user)?;
    let other = app
        .user_by_num(num)
        .await?
        .ok_or(Error::NotFound("user"))
        .map_err(on_field("user"))?;
    if other.id != me.id {
        // The core refuses a session without an accepted connection; say so in likes.
        app.accepted_connection_between(&me, &other)
            .await
            .map_err(|e| match e {
                Error::Forbidden(_) => Error::Forbidden(
                    "a like must be confirmed between you and this user first".into(),
                ),
                other => other,
            })?;
    }
    let chat = app
        .open_chat_session(&me, &other)
        .await
        .map_err(on_field("user"))?;
    Ok(Json(
        json!({ "id": chat.num, "recipient": views::card(&other) }),
    ))
}

/// Every one-to-one chat of the caller (the welcome chat aside), oldest first.
async fn sessions(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
) -> Result<Json<Value>, HooksError> {
    let chats = app.direct_chats_of(&me).await?;
    let partners = app.direct_partners(&me, &chats).await?;
    let system = app.system_user().id;
    let listed: Vec<Value> = chats
        .iter()
        .filter_map(|chat| {
            let other = partners.get(&chat.id).filter(|u| u.id != system)?;
            Some(json!({ "id": chat.num, "recipient": views::card(other) }))
        })
        .collect();
    Ok(Json(Value::Array(listed)))
}

#[derive(Deserialize)]
struct SessionQuery {
    session_id: Option<IdValue>,
    before: Option<IdValue>,
}

/// A session's messages, oldest first: the latest ones, or those before `?before=`.
async fn messages(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Params { value: query, .. }: Params<SessionQuery>,
) -> Result<Json<Value>, HooksError> {
    let num = required_id("session_id", &query.session_id)?;
    let before = match &query.before {
        Some(_) => Some(required_id("before", &query.before)?),
        None => None,
    };
    let chat = app.member_chat(&me, num).await?;
    if chat.is_group() {
        return Err(Error::NotFound("chat session").into());
    }
    let page = HistoryPage {
        skip: 0,
        before,
        after: None,
        limit: SESSION_PAGE,
    };
    let history = app.history(&chat, page).await?;
    let authors: Vec<_> = history.iter().map(|m| m.author_id).collect();
    let users = app.users_by_id(&authors).await?;
    let listed: Vec<Value> = history
        .iter()
        .filter_map(|m| Some(views::message(m, users.get(&m.author_id)?)))
        .collect();
    Ok(Json(Value::Array(listed)))
}
