//! The plain WebSockets: `ws/notification/` streams the caller's new notifications, and
//! `ws/chat/<user_id>/` is a chat session with another user, as Django Channels consumers
//! would serve them: JSON text frames, `{"message": "…"}` from the client.

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use rooms::{Room, Session};
use serde::Deserialize;
use serde_json::json;

use super::{DIALECT, chat_room};
use crate::core::App;
use crate::error::Error;
use crate::realtime::EventBudget;
use crate::store::{Chat, User};

/// A frame is one message of at most 4000 characters, in a small JSON object.
const FRAME_MAX_BYTES: usize = 64 * 1024;

/// Close codes (the 4000–4999 range is the application's): why a socket was refused.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
pub const CLOSE_FORBIDDEN: u16 = 4003;
pub const CLOSE_UNKNOWN_USER: u16 = 4004;
/// The server is stopping (RFC 6455's "going away").
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_INTERNAL: u16 = 1011;

pub fn router() -> Router<App> {
    Router::new()
        .route("/ws/notification/", get(notifications))
        .route("/ws/chat/{user_id}/", get(chat))
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn notifications(
    State(app): State<App>,
    Query(query): Query<TokenQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .max_message_size(FRAME_MAX_BYTES)
        .on_upgrade(async move |socket| {
            let user = match signed_in(&app, query.token.as_deref()).await {
                Ok(user) => user,
                Err(e) => return refuse(socket, e).await,
            };
            let rooms = vec![Room::user(DIALECT, &user.id.to_hex())];
            let session = app.hub.sessions().open(rooms);
            serve(&app, socket, &user, session, None).await;
        })
}

async fn chat(
    State(app): State<App>,
    Path(other): Path<String>,
    Query(query): Query<TokenQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .max_message_size(FRAME_MAX_BYTES)
        .on_upgrade(async move |socket| {
            let opened = async {
                let user = signed_in(&app, query.token.as_deref()).await?;
                let num: i64 = other.parse().map_err(|_| Error::NotFound("user"))?;
                let other = app.user_by_num(num).await?.ok_or(Error::NotFound("user"))?;
                let chat = app.open_chat_session(&user, &other).await?;
                Ok::<_, Error>((user, chat))
            };
            let (user, chat) = match opened.await {
                Ok(opened) => opened,
                Err(e) => return refuse(socket, e).await,
            };
            let session = app.hub.sessions().open(vec![chat_room(&chat)]);
            serve(&app, socket, &user, session, Some(chat)).await;
        })
}

async fn signed_in(app: &App, token: Option<&str>) -> Result<User, Error> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(Error::MissingCredentials)?;
    app.authenticate(token).await
}

/// Close the socket with a code that says why it cannot be served.
async fn refuse(mut socket: WebSocket, err: Error) {
    let code = match &err {
        Error::MissingCredentials | Error::Unauthorized => CLOSE_UNAUTHORIZED,
        Error::NotFound(_) => CLOSE_UNKNOWN_USER,
        Error::Forbidden(_) | Error::Invalid(_) => CLOSE_FORBIDDEN,
        _ => CLOSE_INTERNAL,
    };
    let mut reason = err.public_message();
    // A close frame's reason is at most 123 bytes.
    while reason.len() > 123 {
        reason.pop();
    }
    tracing::debug!(code, %reason, "websocket refused");
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Relay the session's frames to the client, and (on a chat socket) post what the client
/// says, until either side closes. The user counts as online meanwhile.
async fn serve(
    app: &App,
    mut socket: WebSocket,
    user: &User,
    mut session: Session,
    chat: Option<Chat>,
) {
    let presence = app.hub.presence();
    let id = user.id.to_hex();
    presence.connected(&id);
    let budget = EventBudget::default();
    loop {
        tokio::select! {
            frame = session.next_frame() => {
                let Some(frame) = frame else {
                    let frame = CloseFrame { code: CLOSE_GOING_AWAY, reason: "closing".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    break;
                };
                if socket.send(Message::Text(frame.as_ref().into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let Some(chat) = &chat else { continue };
                    if let Err(e) = said(app, &budget, user, chat, &text).await {
                        tracing::debug!(user = %id, "frame refused: {e}");
                        let error = json!({ "error": e.public_message() }).to_string();
                        if socket.send(Message::Text(error.into())).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let error = json!({ "error": "frames must be JSON text" }).to_string();
                    if socket.send(Message::Text(error.into())).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    }
    presence.disconnected(&id);
}

#[derive(Deserialize)]
struct Said {
    message: String,
}

/// Store what the client said; the core delivers it to both users' sockets, the sender's own
/// included, as Django Channels' group send does.
async fn said(
    app: &App,
    budget: &EventBudget,
    user: &User,
    chat: &Chat,
    text: &str,
) -> Result<(), Error> {
    budget.spend()?;
    let said: Said =
        serde_json::from_str(text).map_err(|_| Error::invalid("expected {\"message\": \"…\"}"))?;
    app.post_message(user, chat, &said.message).await?;
    Ok(())
}
