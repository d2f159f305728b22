//! What the chats spec takes for granted, with endpoints of their own: follows, blocks,
//! connections (what `meetMe` names) and the social score.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::views;
use super::wire::{Body, Caller, ChatsError, Ids};
use crate::core::App;
use crate::http::ids::object_id;
use crate::store::Answer;

type Reply = Result<Json<Value>, ChatsError>;
type Created = Result<(StatusCode, Json<Value>), ChatsError>;

pub fn router() -> Router<App> {
    Router::new()
        .route("/users/{id}/follow", post(follow).delete(unfollow))
        .route("/users/{id}/block", post(block).delete(unblock))
        .route("/connections", post(connect))
        .route("/connections/{id}", post(answer))
        .route("/score", get(score))
}

async fn follow(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Created {
    let follow = app.follow(&me, object_id(&id, "id")?).await?;
    let view = json!({
        "_id": follow.id.to_hex(),
        "follower": follow.follower.to_hex(),
        "followee": follow.followee.to_hex(),
        "createdAt": views::iso(follow.created_at),
    });
    Ok((StatusCode::CREATED, Json(json!({ "follow": view }))))
}

async fn unfollow(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Reply {
    app.unfollow(&me, object_id(&id, "id")?).await?;
    Ok(Json(json!({ "message": "unfollowed" })))
}

async fn block(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Created {
    let block = app.block(&me, object_id(&id, "id")?).await?;
    let view = json!({
        "_id": block.id.to_hex(),
        "user": block.blocked.to_hex(),
        "createdAt": views::iso(block.created_at),
    });
    Ok((StatusCode::CREATED, Json(json!({ "block": view }))))
}

async fn unblock(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Reply {
    app.unblock(&me, object_id(&id, "id")?).await?;
    Ok(Json(json!({ "message": "unblocked" })))
}

#[derive(Deserialize)]
struct Connect {
    user: String,
}

async fn connect(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Body { value: req, .. }: Body<Connect>,
) -> Created {
    let connection = app
        .request_connection(&me, object_id(&req.user, "user")?)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "connection": views::connection(&connection) })),
    ))
}

#[derive(Deserialize)]
struct Answering {
    status: Answer,
}

async fn answer(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
    Body { value: req, .. }: Body<Answering>,
) -> Reply {
    let connection = app
        .answer_connection(&me, object_id(&id, "id")?, req.status)
        .await?;
    Ok(Json(
        json!({ "connection": views::connection(&connection) }),
    ))
}

async fn score(State(app): State<App>, Caller { user: me, .. }: Caller) -> Reply {
    let score = app.score_of(&me).await?;
    Ok(Json(json!({ "score": views::score(&score) })))
}
