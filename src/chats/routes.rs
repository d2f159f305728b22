//! `/chats`: listing, exploring, reading, creating, changing and deleting chats.

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::views::{self, Viewer, chat_document};
use super::wire::{Body, Caller, ChatsError, Ids, Params, origin, socket_of};
use crate::core::App;
use crate::core::direct::Opened;
use crate::core::groups::{GroupChanges, NewGroup, PHOTO_MAX_BYTES};
use crate::core::history::HistoryPage;
use crate::core::listing::ChatFilter;
use crate::error::Error;
use crate::http::ids::{object_id, object_ids};
use crate::http::paging::page_window;
use crate::store::FileKind;

type Reply = Result<Json<Value>, ChatsError>;

pub fn router() -> Router<App> {
    Router::new()
        .route("/chats", get(list).post(create))
        .route("/chats/explore/communities", get(explore))
        .route(
            "/chats/{id}",
            get(show)
                .put(update)
                .delete(remove)
                // A photo is larger than any JSON body.
                .layer(axum::extract::DefaultBodyLimit::max(
                    PHOTO_MAX_BYTES + 64 * 1024,
                )),
        )
        .route("/chats/{id}/files", get(files))
        .route("/chats/{id}/messages", get(messages).post(post_message))
        .route("/chats/{id}/read", post(read))
        .route("/chats/{id}/event", get(event).post(create_event))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    limit: Option<u64>,
    page: Option<u64>,
    search: Option<String>,
    group: Option<bool>,
    #[serde(default)]
    meet_me_only: bool,
}

async fn list(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Params { value: q, .. }: Params<ListQuery>,
) -> Reply {
    let filter = ChatFilter {
        search: q.search,
        group: q.group,
        meet_me_only: q.meet_me_only,
        requests: None,
    };
    let listing = app
        .list_chats(&me, &filter, page_window(q.page, q.limit)?)
        .await?;
    let viewer = Viewer::new(&app, &me, &listing.users).await;
    let chats: Vec<Value> = listing.items.iter().map(|s| viewer.summary(s)).collect();
    Ok(Json(json!({ "chats": chats, "count": listing.count })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExploreQuery {
    limit: Option<u64>,
    page: Option<u64>,
    #[serde(default)]
    search: String,
    category: Option<String>,
    reels_limit: Option<u64>,
}

async fn explore(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Params { value: q, .. }: Params<ExploreQuery>,
) -> Reply {
    let page = page_window(q.page, q.limit)?;
    let (listing, followed) = app
        .explore_communities(
            &me,
            &q.search,
            q.category.as_deref(),
            q.reels_limit.unwrap_or(5),
            page,
        )
        .await?;
    let viewer = Viewer::new(&app, &me, &listing.users).await;
    let chats: Vec<Value> = listing
        .items
        .iter()
        .map(|c| viewer.community(c, &followed))
        .collect();
    Ok(Json(json!({ "chats": chats, "count": listing.count })))
}

async fn show(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Reply {
    let (summary, users) = app.chat_summary(&me, object_id(&id, "id")?).await?;
    let viewer = Viewer::new(&app, &me, &users).await;
    Ok(Json(json!({ "chat": viewer.summary(&summary) })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilesQuery {
    limit: Option<u64>,
    page: Option<u64>,
    tag: Option<String>,
    #[serde(rename = "type")]
    kind: Option<FileKind>,
}

async fn files(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
    Params { value: q, .. }: Params<FilesQuery>,
) -> Reply {
    let page = page_window(q.page, q.limit)?;
    // The spec's defaults: videos, tagged "others".
    let kind = q.kind.unwrap_or(FileKind::Video);
    let tag = q.tag.unwrap_or_else(|| "others".to_owned());
    let listing = app
        .chat_files(&me, object_id(&id, "id")?, kind, &tag, page)
        .await?;
    let files: Vec<Value> = listing.items.iter().map(views::chat_file).collect();
    Ok(Json(json!({ "files": files, "count": listing.count })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateChat {
    user: Option<String>,
    meet_me: Option<String>,
    #[serde(default)]
    is_group: bool,
    category: Option<String>,
    name: Option<String>,
    participants: Option<Vec<String>>,
    #[serde(default)]
    restricted: bool,
    socket: Option<String>,
}

async fn create(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Body { value: req, .. }: Body<CreateChat>,
) -> Result<(StatusCode, Json<Value>), ChatsError> {
    let origin = origin(req.socket)?;
    if req.is_group {
        let (Some(name), Some(category), Some(participants)) =
            (req.name, req.category, req.participants)
        else {
            return Err(
                Error::invalid("name, category and participants are required for a group").into(),
            );
        };
        let new = NewGroup {
            name,
            category,
            participants: object_ids(&participants, "participants")?,
            restricted: req.restricted,
            open_invites: false,
        };
        let group = app.create_group(&me, new, origin).await?;
        let chat = chat_document(&group.chat, &group.participants);
        return Ok((StatusCode::CREATED, Json(json!({ "chat": chat }))));
    }
    let user = req
        .user
        .ok_or_else(|| Error::invalid("user is required for a one-to-one chat"))?;
    let other = app.user_by_id(object_id(&user, "user")?).await?;
    let meet_me = req.meet_me.map(|id| object_id(&id, "meetMe")).transpose()?;
    let opened = app.open_direct(&me, &other, meet_me, origin).await?;
    let status = match opened {
        Opened::Created(_) => StatusCode::CREATED,
        Opened::Existing(_) => StatusCode::OK,
    };
    let participants = app.participants_of(opened.chat()).await?;
    let chat = chat_document(opened.chat(), &participants);
    Ok((status, Json(json!({ "chat": chat }))))
}

/// `PUT /chats/:id` takes form data (with an optional `photo` file) or, for convenience, JSON.
async fn update(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
    request: Request,
) -> Reply {
    let id = object_id(&id, "id")?;
    let (changes, socket) = if crate::media::is_multipart(request.headers()) {
        let form = Multipart::from_request(request, &())
            .await
            .map_err(|e| Error::invalid(e.body_text()))?;
        read_changes(form).await?
    } else {
        let Body { value: json, .. } = Body::<JsonChanges>::from_request(request, &()).await?;
        json.into_changes()?
    };
    let group = app.update_group(&me, id, changes, origin(socket)?).await?;
    Ok(Json(
        json!({ "chat": chat_document(&group.chat, &group.participants) }),
    ))
}

fn flag(field: &str, value: &str) -> Result<bool, Error> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::invalid(format!("{field} must be 'true' or 'false'"))),
    }
}

async fn read_changes(mut form: Multipart) -> Result<(GroupChanges, Option<String>), Error> {
    let mut changes = GroupChanges::default();
    let mut socket = None;
    let bad_form = |e: axum::extract::multipart::MultipartError| Error::invalid(e.body_text());
    while let Some(field) = form.next_field().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "photo" {
            changes.photo = Some(field.bytes().await.map_err(bad_form)?.to_vec());
            continue;
        }
        let value = field.text().await.map_err(bad_form)?;
        match name.as_str() {
            "name" => changes.name = Some(value),
            "category" => changes.category = Some(value),
            "restricted" => changes.restricted = Some(flag("restricted", &value)?),
            "allowPublicPost" => changes.allow_public_post = Some(flag("allowPublicPost", &value)?),
            "socket" => socket = Some(value),
            _ => {}
        }
    }
    Ok((changes, socket))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonChanges {
    name: Option<String>,
    category: Option<String>,
    restricted: Option<Value>,
    allow_public_post: Option<Value>,
    socket: Option<String>,
}

impl JsonChanges {
    fn into_changes(self) -> Result<(GroupChanges, Option<String>), Error> {
        // Booleans may come as JSON booleans or as the form's 'true'/'false'.
        let boolean = |field: &str, value: Option<Value>| match value {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) => flag(field, &s).map(Some),
            Some(_) => Err(Error::invalid(format!("{field} must be true or false"))),
        };
        let changes = GroupChanges {
            name: self.name,
            category: self.category,
            restricted: boolean("restricted", self.restricted)?,
            allow_public_post: boolean("allowPublicPost", self.allow_public_post)?,
            photo: None,
        };
        Ok((changes, self.socket))
    }
}

async fn remove(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
    request: Request,
) -> Reply {
    let socket = socket_of(request).await?;
    let chat = app
        .delete_group(&me, object_id(&id, "id")?, origin(socket)?)
        .await?;
    Ok(Json(json!({ "chat": { "_id": chat.id.to_hex() } })))
}

#[derive(Deserialize)]
struct NewMessage {
    content: String,
}

/// Post a message (not in the spec, whose clients see messages as `lastMessage` and `unread`;
/// the other dialects' clients hear it). Participants only; the chat's rules apply.
async fn post_message(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
    Body { value: req, .. }: Body<NewMessage>,
) -> Result<(StatusCode, Json<Value>), ChatsError> {
    let membership = app.member_view(&me, object_id(&id, "id")?).await?;
    let posted = app
        .post_message(&me, &membership.chat, &req.content)
        .await?;
    let users = std::collections::HashMap::from([(me.id, me.clone())]);
    let viewer = Viewer::new(&app, &me, &users).await;
    let message = viewer.message(&posted.message);
    Ok((StatusCode::CREATED, Json(json!({ "message": message }))))
}

#[derive(Deserialize)]
struct MessagesQuery {
    limit: Option<i64>,
    before: Option<String>,
}

/// A chat's latest messages, oldest first; `before` (a message id) pages back.
async fn messages(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
    Params { value: q, .. }: Params<MessagesQuery>,
) -> Reply {
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid("limit must be between 1 and 100").into());
    }
    let membership = app.member_view(&me, object_id(&id, "id")?).await?;
    let before = match q.before {
        Some(before) => {
            let message = app
                .message_in(&membership.chat, object_id(&before, "before")?)
                .await?;
            Some(message.num)
        }
        None => None,
    };
    let page = HistoryPage {
        skip: 0,
        before,
        after: None,
        limit,
    };
    let history = app.history(&membership.chat, page).await?;
    let users = app.authors_of(&history).await?;
    let viewer = Viewer::new(&app, &me, &users).await;
    let listed: Vec<Value> = history.iter().map(|m| viewer.message(m)).collect();
    Ok(Json(json!({ "messages": listed })))
}

async fn read(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Reply {
    let participant = app.mark_read(&me, object_id(&id, "id")?).await?;
    Ok(Json(
        json!({ "participant": views::participant(&participant) }),
    ))
}

async fn event(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
) -> Reply {
    let membership = app.member_view(&me, object_id(&id, "id")?).await?;
    let event = app
        .meetup_of(&membership.chat)
        .await?
        .ok_or(Error::NotFound("event"))?;
    Ok(Json(json!({ "event": views::event(&event) })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewEvent {
    name: String,
    starts_at: String,
    ends_at: String,
}

async fn create_event(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Ids { value: id, .. }: Ids<String>,
    Body { value: req, .. }: Body<NewEvent>,
) -> Result<(StatusCode, Json<Value>), ChatsError> {
    let date = |field: &str, raw: &str| {
        bson::DateTime::parse_rfc3339_str(raw)
            .map_err(|_| Error::invalid(format!("{field} must be an ISO 8601 date")))
    };
    let event = app
        .create_meetup(
            &me,
            object_id(&id, "id")?,
            &req.name,
            date("startsAt", &req.starts_at)?,
            date("endsAt", &req.ends_at)?,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "event": views::event(&event) })),
    ))
}
