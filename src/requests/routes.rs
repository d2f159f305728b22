//! `/chat`: chat requests, the chats they become, their messages, read marks and totals. Every
//! path is served with and without a trailing slash; unknown query parameters are ignored.

use axum::http::StatusCode;
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Json, Router, extract::State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::DIALECT;
use super::views;
use super::wire::{Body, Caller, Ids, Params, RequestsError, RequestsWire};
use crate::core::App;
use crate::core::direct::Opened;
use crate::core::history::HistoryPage;
use crate::core::listing::{ChatFilter, ChatSummary, Requests};
use crate::core::messages::Draft;
use crate::error::Error;
use crate::http::ids::{NumericId, object_id};
use crate::http::paging::SkipQuery;
use crate::store::{Attachment, FileKind, Platform, User};

/// The client's page size.
const PAGE: u64 = 15;

type Reply = Result<Json<Value>, RequestsError>;

/// `path` and `path/`, the same.
fn both(router: Router<App>, path: &str, route: MethodRouter<App>) -> Router<App> {
    router
        .route(path, route.clone())
        .route(&format!("{path}/"), route)
}

pub fn router() -> Router<App> {
    let routes: [(&str, MethodRouter<App>); 12] = [
        ("/chat", get(active).post(ask)),
        ("/chat/pending", get(pending)),
        ("/chat/rejected", get(rejected)),
        ("/chat/totals", get(totals)),
        ("/chat/unread", get(unread)),
        ("/chat/devices", post(register_device)),
        ("/chat/devices/{token}", delete(remove_device)),
        ("/chat/{chat_id}", get(show).post(send)),
        ("/chat/{chat_id}/accept", post(accept)),
        ("/chat/{chat_id}/reject", post(reject)),
        ("/chat/{chat_id}/messages", get(messages)),
        ("/chat/{chat_id}/read", post(read)),
    ];
    routes
        .into_iter()
        .fold(Router::new(), |router, (path, route)| {
            both(router, path, route)
        })
        .method_not_allowed_fallback(crate::http::method_not_allowed::<RequestsWire>)
}

/// A chat as the caller sees it.
fn chat_view(
    me: &User,
    summary: &ChatSummary,
    users: &std::collections::HashMap<bson::oid::ObjectId, User>,
) -> Value {
    let membership = &summary.membership;
    let members: Vec<&User> = membership
        .participants
        .iter()
        .filter_map(|p| users.get(&p.user_id))
        .collect();
    let last = summary
        .last_message
        .as_ref()
        .and_then(|m| Some((m, users.get(&m.author_id)?)));
    views::chat(
        &membership.chat,
        &members,
        last,
        membership.of(&me.id),
        summary.unread,
    )
}

/// One chat the caller is one of the two of.
async fn one_chat(app: &App, me: &User, raw_id: &str) -> Result<Value, Error> {
    let id = object_id(raw_id, "chatId")?;
    let (summary, users) = app.chat_summary(me, id).await?;
    if summary.membership.chat.is_group() {
        return Err(Error::NotFound("chat"));
    }
    Ok(chat_view(me, &summary, &users))
}

async fn list(
    app: &App,
    me: &User,
    requests: Requests,
    page: SkipQuery,
) -> Result<Vec<Value>, Error> {
    let filter = ChatFilter {
        requests: Some(requests),
        ..ChatFilter::default()
    };
    let listing = app.list_chats(me, &filter, page.window(PAGE)?).await?;
    let views = listing.items.iter().map(|summary| match requests {
        Requests::Active => chat_view(me, summary, &listing.users),
        Requests::Received | Requests::Declined => {
            let membership = &summary.membership;
            let other = membership
                .participants
                .iter()
                .find(|p| p.user_id != me.id)
                .and_then(|p| listing.users.get(&p.user_id));
            let last = summary
                .last_message
                .as_ref()
                .and_then(|m| Some((m, listing.users.get(&m.author_id)?)));
            match other {
                Some(other) => views::request(&membership.chat, other, last, summary.unread),
                None => Value::Null,
            }
        }
    });
    Ok(views.filter(|v| !v.is_null()).collect())
}

/// The caller's active chats, most recently active first.
async fn active(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Params { value: page, .. }: Params<SkipQuery>,
) -> Reply {
    Ok(Json(Value::Array(
        list(&app, &me, Requests::Active, page).await?,
    )))
}

/// Requests asked of the caller and waiting for their answer.
async fn pending(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Params { value: page, .. }: Params<SkipQuery>,
) -> Reply {
    Ok(Json(Value::Array(
        list(&app, &me, Requests::Received, page).await?,
    )))
}

/// Requests the caller declined (they may still accept them).
async fn rejected(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Params { value: page, .. }: Params<SkipQuery>,
) -> Reply {
    Ok(Json(Value::Array(
        list(&app, &me, Requests::Declined, page).await?,
    )))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ask {
    user_id: NumericId,
}

/// Ask a user for a chat; asking again answers the same chat, as it stands.
async fn ask(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Body { value: ask, .. }: Body<Ask>,
) -> Result<(StatusCode, Json<Value>), RequestsError> {
    let other = app
        .user_by_num(ask.user_id.0)
        .await?
        .ok_or(Error::NotFound("user"))?;
    let opened = app.request_chat(&me, &other).await?;
    let status = match opened {
        Opened::Created(_) => StatusCode::CREATED,
        Opened::Existing(_) => StatusCode::OK,
    };
    let view = one_chat(&app, &me, &opened.chat().id.to_hex()).await?;
    Ok((status, Json(view)))
}

async fn show(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Reply {
    Ok(Json(one_chat(&app, &me, &id).await?))
}

async fn answer(app: &App, me: &User, id: &str, accept: bool) -> Reply {
    app.answer_request(me, object_id(id, "chatId")?, accept)
        .await?;
    Ok(Json(one_chat(app, me, id).await?))
}

async fn accept(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Reply {
    answer(&app, &me, &id, true).await
}

/// Decline: the chat's status becomes "declined".
async fn reject(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Reply {
    answer(&app, &me, &id, false).await
}

/// A chat's messages, newest first, `skip` of them left out.
async fn messages(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
    Params { value: page, .. }: Params<SkipQuery>,
) -> Reply {
    let chat = app.direct_chat_of(&me, object_id(&id, "chatId")?).await?;
    let window = page.window(PAGE)?;
    let page = HistoryPage {
        before: None,
        after: None,
        skip: window.skip,
        limit: window.limit as i64,
    };
    let history = app.history(&chat, page).await?;
    let authors = app.authors_of(&history).await?;
    let listed: Vec<Value> = history
        .iter()
        .rev()
        .filter_map(|m| Some(views::message(m, authors.get(&m.author_id)?)))
        .collect();
    Ok(Json(Value::Array(listed)))
}

async fn read(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Reply {
    let chat = app.direct_chat_of(&me, object_id(&id, "chatId")?).await?;
    app.mark_read(&me, chat.id).await?;
    Ok(Json(
        json!({ "success": true, "message": "All messages have been marked as read." }),
    ))
}

async fn totals(State(app): State<App>, Caller { user: me, .. }: Caller) -> Reply {
    Ok(Json(views::totals(&app.totals(&me).await?)))
}

async fn unread(State(app): State<App>, Caller { user: me, .. }: Caller) -> Reply {
    let totals = app.totals(&me).await?;
    Ok(Json(
        json!({ "totalUnreadMessages": totals.unread_messages }),
    ))
}

/// What the client sends: its own copy's `id` (echoed as `matchId`) besides the message;
/// `chatId`, `createdAt`, `user` and `uploadImageUrl` are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Said {
    text: Option<String>,
    image_url: Option<String>,
    link_preview_url: Option<String>,
    id: Option<Value>,
}

/// Send a message: a text, an image, or both (and a link to preview).
async fn send(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
    Body { value: said, .. }: Body<Said>,
) -> Result<(StatusCode, Json<Value>), RequestsError> {
    let chat = app.direct_chat_of(&me, object_id(&id, "chatId")?).await?;
    let image = said
        .image_url
        .filter(|url| !url.trim().is_empty())
        .map(|url| {
            let url = url.trim().to_owned();
            let meta = bson::Bson::Document(bson::doc! { "url": &url });
            let file = Attachment {
                id: bson::oid::ObjectId::new(),
                url,
                cover: None,
                meta: Some(meta),
            };
            (FileKind::Image, "others".to_owned(), file)
        });
    if let Some((_, _, file)) = &image
        && !(file.url.starts_with("https://") || file.url.starts_with("http://"))
    {
        return Err(Error::invalid("imageUrl must be an http(s) URL").into());
    }
    let draft = Draft {
        content: said.text.unwrap_or_default(),
        files: image.into_iter().collect(),
        link: said.link_preview_url.filter(|l| !l.trim().is_empty()),
        client_id: said.id.and_then(|id| match id {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
    };
    let posted = app.post(&me, &chat, draft).await?;
    let view = views::message(&posted.message, &me);
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize)]
struct Registration {
    token: String,
    platform: Platform,
}

/// An install's FCM token (not in the spec: its app is a push client); pushes to it are in
/// this dialect's words.
async fn register_device(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Body { value: req, .. }: Body<Registration>,
) -> Result<(StatusCode, Json<Value>), RequestsError> {
    let device = app
        .register_device(&me, &req.token, req.platform, DIALECT)
        .await?;
    let body = json!({ "token": device.token, "platform": device.platform });
    Ok((StatusCode::CREATED, Json(body)))
}

async fn remove_device(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: token, .. }: Ids<String>,
) -> Result<StatusCode, RequestsError> {
    app.remove_device(&me, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
