//! `/chats/:id/participants` and `/chats/:id/requests`: who is in a group and who runs it.
//! A `:participantId` may be the participant's own id or their user id.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::views;
use super::wire::{Body, Caller, ChatsError, Ids, origin, socket_of};
use crate::core::App;
use crate::http::ids::{object_id, object_ids};
use crate::store::Answer;

type Reply = Result<Json<Value>, ChatsError>;
type Created = Result<(StatusCode, Json<Value>), ChatsError>;

pub fn router() -> Router<App> {
    Router::new()
        .route("/chats/{id}/participants", post(join))
        .route("/chats/{id}/participants/multiple", post(add_many))
        .route(
            "/chats/{id}/participants/{participant}",
            axum::routing::delete(remove),
        )
        .route(
            "/chats/{id}/participants/{participant}/status",
            post(answer),
        )
        .route(
            "/chats/{id}/participants/{participant}/admin",
            post(grant_admin).delete(remove_admin),
        )
        .route("/chats/{id}/requests", post(request_to_join))
        .route("/chats/{id}/requests/{request}", post(answer_request))
}

async fn join(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
    request: Request,
) -> Created {
    let socket = socket_of(request).await?;
    let participant = app
        .join_group(&me, object_id(&id, "id")?, origin(socket)?)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "participant": views::participant(&participant) })),
    ))
}

#[derive(Deserialize)]
struct Many {
    participants: Vec<String>,
}

async fn add_many(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
    Body { value: req, .. }: Body<Many>,
) -> Created {
    let users = object_ids(&req.participants, "participants")?;
    let added = app.add_to_group(&me, object_id(&id, "id")?, &users).await?;
    let participants: Vec<_> = added.iter().map(views::participant).collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "participants": participants })),
    ))
}

async fn remove(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids {
        value: (id, participant),
        ..
    }: Ids<(String, String)>,
    request: Request,
) -> Reply {
    let socket = socket_of(request).await?;
    let removed = app
        .remove_participant(
            &me,
            object_id(&id, "id")?,
            object_id(&participant, "participantId")?,
            origin(socket)?,
        )
        .await?;
    Ok(Json(json!({ "participant": views::participant(&removed) })))
}

#[derive(Deserialize)]
struct Status {
    status: Answer,
}

async fn answer(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids {
        value: (id, participant),
        ..
    }: Ids<(String, String)>,
    Body { value: req, .. }: Body<Status>,
) -> Reply {
    let participant = app
        .answer_participant(
            &me,
            object_id(&id, "id")?,
            object_id(&participant, "participantId")?,
            req.status,
        )
        .await?;
    Ok(Json(
        json!({ "participant": views::participant(&participant) }),
    ))
}

async fn set_admin(app: App, me: crate::store::User, ids: (String, String), admin: bool) -> Reply {
    let participant = app
        .set_admin(
            &me,
            object_id(&ids.0, "id")?,
            object_id(&ids.1, "participantId")?,
            admin,
        )
        .await?;
    Ok(Json(
        json!({ "participant": views::participant(&participant) }),
    ))
}

async fn grant_admin(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: ids, .. }: Ids<(String, String)>,
) -> Reply {
    set_admin(app, me, ids, true).await
}

async fn remove_admin(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: ids, .. }: Ids<(String, String)>,
) -> Reply {
    set_admin(app, me, ids, false).await
}

async fn request_to_join(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Created {
    let request = app.request_to_join(&me, object_id(&id, "id")?).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "request": views::join_request(&request) })),
    ))
}

async fn answer_request(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids {
        value: (id, request),
        ..
    }: Ids<(String, String)>,
    Body { value: req, .. }: Body<Status>,
) -> Reply {
    let request = app
        .answer_join_request(
            &me,
            object_id(&id, "id")?,
            object_id(&request, "requestId")?,
            req.status,
        )
        .await?;
    Ok(Json(json!({ "request": views::join_request(&request) })))
}
