//! `/follow/`: following, followers, recommendations, and likes (the core's connections).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use rooms::UserId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::views;
use super::wire::{Body, Caller, HooksError, IdValue, Params, on_field, required, required_id};
use crate::core::App;
use crate::core::HubUser;
use crate::core::social::{ConnectionKind, FollowSide};
use crate::error::Error;
use crate::http::paging::page_window;
use crate::store::{Answer, Connection, User};

/// Likes per page, as DRF's page-number pagination serves them.
const LIKES_PAGE_SIZE: u64 = 20;

pub fn router() -> Router<App> {
    Router::new()
        .route("/follow/", post(follow))
        .route("/follow/unfollow/", post(unfollow))
        .route("/follow/followings/", get(followings))
        .route("/follow/followers/", get(followers))
        .route("/follow/recommended/", get(recommended))
        .route("/follow/like/", post(like).get(likes))
        .route("/follow/like/respond/", post(respond))
}

/// The user with the numeric id in `field`, reported on that field when there is none.
async fn user_in(app: &App, field: &'static str, value: &Option<IdValue>) -> Result<User, Error> {
    let num = required_id(field, value)?;
    app.user_by_num(num)
        .await?
        .ok_or(Error::NotFound("user"))
        .map_err(on_field(field))
}

#[derive(Deserialize)]
struct FollowForm {
    follow: Option<IdValue>,
}

async fn follow(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Body { value: form, .. }: Body<FollowForm>,
) -> Result<(StatusCode, Json<Value>), HooksError> {
    let followee = user_in(&app, "follow", &form.follow).await?;
    let follow = app
        .follow(&me, followee.id)
        .await
        .map_err(on_field("follow"))?;
    let body = json!({
        "id": follow.num,
        "follower": views::brief(&me),
        "following": views::brief(&followee),
        "message": "Following",
    });
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Deserialize)]
struct UnfollowForm {
    unfollow: Option<IdValue>,
}

async fn unfollow(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Body { value: form, .. }: Body<UnfollowForm>,
) -> Result<Json<Value>, HooksError> {
    let followee = user_in(&app, "unfollow", &form.unfollow).await?;
    if followee.id == me.id {
        return Err(
            Error::Fields(vec![("unfollow", "You cannot unfollow yourself.".into())]).into(),
        );
    }
    app.unfollow(&me, followee.id).await.map_err(|e| match e {
        Error::NotFound(_) => {
            Error::Fields(vec![("unfollow", "You do not follow this user.".into())])
        }
        other => other,
    })?;
    Ok(Json(
        json!({ "user": views::brief(&followee), "message": "Unfollowed" }),
    ))
}

/// `?count` (with or without a value) asks for the number only.
fn wants_count(query: &Option<String>) -> bool {
    query
        .as_deref()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "count"))
}

async fn follow_list(
    app: &App,
    me: &User,
    side: FollowSide,
    query: &Option<String>,
) -> Result<Value, Error> {
    if wants_count(query) {
        return Ok(json!({ "count": app.follow_count(me, side).await? }));
    }
    let follows = app.follows_of(me, side).await?;
    let ids: Vec<_> = follows
        .iter()
        .map(|f| match side {
            FollowSide::Following => f.followee,
            FollowSide::Followers => f.follower,
        })
        .collect();
    let users = app.users_by_id(&ids).await?;
    let key = match side {
        FollowSide::Following => "following",
        FollowSide::Followers => "followers",
    };
    let listed: Vec<Value> = ids
        .iter()
        .filter_map(|id| users.get(id))
        .map(|user| json!({ key: views::brief(user) }))
        .collect();
    Ok(Value::Array(listed))
}

async fn followings(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, HooksError> {
    Ok(Json(
        follow_list(&app, &me, FollowSide::Following, &query).await?,
    ))
}

async fn followers(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, HooksError> {
    Ok(Json(
        follow_list(&app, &me, FollowSide::Followers, &query).await?,
    ))
}

async fn recommended(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
) -> Result<Json<Value>, HooksError> {
    let ranked = app.recommended_users(&me).await?;
    let ids: Vec<UserId> = ranked.iter().map(|r| r.user.id.hub_user()).collect();
    let online = app.hub.online_among(&ids).await;
    let listed: Vec<Value> = ranked
        .iter()
        .map(|r| views::recommended(r, online.contains(&r.user.id.hub_user())))
        .collect();
    Ok(Json(Value::Array(listed)))
}

#[derive(Deserialize)]
struct LikeForm {
    like: Option<IdValue>,
}

/// Ask another user for a like; they are notified.
async fn like(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Body { value: form, .. }: Body<LikeForm>,
) -> Result<Json<Value>, HooksError> {
    let liked = user_in(&app, "like", &form.like).await?;
    let connection = app
        .request_connection(&me, liked.id)
        .await
        .map_err(on_field("like"))?;
    Ok(Json(
        json!({ "id": connection.num, "like": views::brief(&liked) }),
    ))
}

#[derive(Deserialize)]
struct LikesQuery {
    status: Option<String>,
    page: Option<String>,
}

/// One page of the caller's likes of one status, with DRF's `count`/`next`/`previous`.
async fn likes(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    headers: HeaderMap,
    Params { value: query, .. }: Params<LikesQuery>,
) -> Result<Json<Value>, HooksError> {
    let [status] = required([("status", &query.status)])?;
    let kind = match status {
        "pending" => ConnectionKind::Asked,
        "requested" => ConnectionKind::AskedOfMe,
        "confirmed" => ConnectionKind::Accepted,
        other => {
            let message = format!("\"{other}\" is not a valid choice.");
            return Err(Error::Fields(vec![("status", message)]).into());
        }
    };
    // DRF answers a page that is not a positive number, or lies past the end, with 404.
    let page: u64 = match query.page.as_deref() {
        None => 1,
        Some(p) => p.parse().map_err(|_| Error::NotFound("page"))?,
    };
    let window =
        page_window(Some(page), Some(LIKES_PAGE_SIZE)).map_err(|_| Error::NotFound("page"))?;
    let (count, connections) = app.connections_of(&me, kind, window).await?;
    let skip = window.skip;
    if page > 1 && connections.is_empty() {
        return Err(Error::NotFound("page").into());
    }
    let others: Vec<_> = connections.iter().map(|c| c.other(&me.id)).collect();
    let users = app.users_by_id(&others).await?;
    let results: Vec<Value> = connections
        .iter()
        .filter_map(|c| {
            let user = users.get(&c.other(&me.id))?;
            Some(json!({ "id": c.num, "like": views::brief(user) }))
        })
        .collect();
    let link = |page: u64| page_link(&headers, status, page);
    let next = (skip + (connections.len() as u64) < count).then(|| link(page + 1));
    let previous = (page > 1).then(|| link(page - 1));
    Ok(Json(json!({
        "count": count,
        "next": next,
        "previous": previous,
        "results": results,
    })))
}

/// An absolute link to another page, as DRF builds them from the request's host.
fn page_link(headers: &HeaderMap, status: &str, page: u64) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("page", &page.to_string())
        .append_pair("status", status)
        .finish();
    format!("{scheme}://{host}/follow/like/?{query}")
}

#[derive(Deserialize)]
struct RespondForm {
    like_instance: Option<IdValue>,
    action: Option<String>,
}

/// Accept or reject a like asked of the caller.
async fn respond(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Body { value: form, .. }: Body<RespondForm>,
) -> Result<Json<Value>, HooksError> {
    let num = required_id("like_instance", &form.like_instance)?;
    let [action] = required([("action", &form.action)])?;
    let answer = match action.to_lowercase().as_str() {
        "accept" | "accepted" => Answer::Accepted,
        "reject" | "rejected" => Answer::Rejected,
        _ => {
            let message = format!("\"{action}\" is not a valid choice.");
            return Err(Error::Fields(vec![("action", message)]).into());
        }
    };
    let like = like_to_answer(&app, &me, num).await?;
    let answered = app
        .answer_connection(&me, like.id, answer)
        .await
        .map_err(|e| match e {
            Error::Conflict(_) => Error::Fields(vec![(
                "like_instance",
                "This like request has already been answered.".into(),
            )]),
            other => other,
        })?;
    let asker = app.user_by_id(answered.from).await?;
    let action = if answer == Answer::Accepted {
        "Accepted"
    } else {
        "Rejected"
    };
    Ok(Json(json!({
        "like_id": answered.num,
        "like": views::brief(&asker),
        "action": action,
    })))
}

/// The like `like_instance` names: a like's id, or (as the listed likes show users, not
/// likes) the id of the user whose pending like the caller is answering.
async fn like_to_answer(app: &App, me: &User, num: i64) -> Result<Connection, Error> {
    let by_id = app.connection_by_num(me, num).await?;
    if let Some(like) = by_id.clone().filter(|c| c.to == me.id) {
        return Ok(like);
    }
    if let Some(asker) = app.user_by_num(num).await?
        && let Some(like) = app.pending_connection(asker.id, me.id).await?
    {
        return Ok(like);
    }
    match by_id {
        Some(_) => Err(Error::Forbidden(
            "Only the user the like request was sent to can respond to it.".into(),
        )),
        None => Err(Error::NotFound("like")),
    }
}
