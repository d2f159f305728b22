//! The plain WebSockets: `ws/notification/` streams the caller's new notifications, and
//! `ws/chat/<user_id>/` is a chat session with another user, as Django Channels consumers
//! would serve them: JSON text frames, `{"message": "…"}` from the client. Both run on the
//! realtime layer's WebSocket pump.

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::get;
use rooms::{Frame, Room};
use serde::Deserialize;
use serde_json::json;

use super::{DIALECT, chat_room, views};
use crate::core::App;
use crate::core::HubUser;
use crate::error::Error;
use crate::realtime::{Close, Connection, Door, Protocol};
use crate::store::{Chat, User};

/// A frame is one message of at most 4000 characters, in a small JSON object.
const FRAME_MAX_BYTES: usize = 64 * 1024;

pub fn router() -> Router<App> {
    Router::new()
        .route("/ws/notification/", get(notifications))
        .route("/ws/chat/{user_id}/", get(chat))
}

#[derive(Deserialize)]
struct SocketQuery {
    token: Option<String>,
    /// The last message this client saw in the session, to be sent what it missed.
    last_seen: Option<String>,
}

async fn notifications(door: Door, Query(query): Query<SocketQuery>) -> Response {
    // The set-up owns the request's strings (the token here), which are freed once it is done
    // rather than kept with the connection.
    door.accept(FRAME_MAX_BYTES, |conn| {
        Box::pin(async move {
            let user = signed_in(conn.app(), query.token).await?;
            conn.join(&Room::user(DIALECT, user.id.hub_user()));
            conn.sign_in(&user).await;
            Ok(Listening)
        })
    })
}

async fn chat(door: Door, Path(other): Path<String>, Query(query): Query<SocketQuery>) -> Response {
    door.accept(FRAME_MAX_BYTES, |conn| {
        Box::pin(async move {
            let app = conn.app().clone();
            let user = signed_in(&app, query.token).await?;
            let num: i64 = other.parse().map_err(|_| Error::NotFound("user"))?;
            let other = app.user_by_num(num).await?.ok_or(Error::NotFound("user"))?;
            let chat = app.open_chat_session(&user, &other).await?;
            let last_seen = last_seen(query.last_seen.as_deref())?;
            Ok(start_session(conn, user, chat, last_seen).await)
        })
    })
}

/// The `last_seen` of a session's door: none when absent or blank.
fn last_seen(given: Option<&str>) -> Result<Option<i64>, Error> {
    match given.map(str::trim) {
        None | Some("") => Ok(None),
        Some(id) => id
            .parse()
            .map(Some)
            .map_err(|_| Error::invalid("last_seen must be a message id")),
    }
}

/// Sign the socket in and send it what it missed (when it says what it saw last); then it is
/// ready to hear the session live.
async fn start_session(
    conn: &mut Connection,
    user: User,
    chat: Chat,
    last_seen: Option<i64>,
) -> Session {
    conn.sign_in(&user).await;
    // Live first, so that nothing said during the replay falls between the two: what the
    // room delivers meanwhile waits in the session's queue, and what was replayed is dropped.
    conn.join(&chat_room(&chat));
    let mut replayed_through = None;
    if let Some(last_seen) = last_seen {
        match replay(conn, &chat, last_seen).await {
            Ok(last) => replayed_through = last,
            Err(e) => {
                tracing::warn!(user = %user.id, chat = %chat.id, "could not replay missed messages: {e}")
            }
        }
    }
    Session {
        user,
        chat,
        replayed_through,
    }
}

/// Send what was said after `last_seen`; the id of the last message sent.
async fn replay(conn: &mut Connection, chat: &Chat, last_seen: i64) -> Result<Option<i64>, Error> {
    let app = conn.app().clone();
    let mut replay = app.replay(chat, last_seen).await?;
    let mut last = None;
    while let Some((message, author)) = app.next_missed(&mut replay).await? {
        let mut frame = views::message(&message, &author);
        frame["session_id"] = chat.num.into();
        if conn.send(frame.to_string()).await.is_err() {
            break;
        }
        last = Some(message.num);
    }
    Ok(last)
}

async fn signed_in(app: &App, token: Option<String>) -> Result<User, Error> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(Error::MissingCredentials)?;
    app.authenticate(&token).await
}

/// `ws/notification/`: the server speaks, the client listens.
struct Listening;

impl Protocol for Listening {
    fn dialect(&self) -> &'static str {
        super::DIALECT
    }

    async fn on_text(&mut self, _: &mut Connection, _: &str) -> Result<(), Close> {
        Ok(())
    }
}

/// `ws/chat/`: each frame is a message for the session.
struct Session {
    user: User,
    chat: Chat,
    /// The last message the replay sent: live frames up to it were already sent.
    replayed_through: Option<i64>,
}

#[derive(Deserialize)]
struct Said {
    message: String,
}

/// A refused frame is answered on this socket only.
async fn answer_error(conn: &mut Connection, err: Error) -> Result<(), Close> {
    tracing::debug!("frame refused: {err}");
    let error = json!({ "error": err.public_message() }).to_string();
    conn.send(error)
        .await
        .map_err(|_| Close::new(crate::realtime::websocket::code::NORMAL, ""))
}

impl Protocol for Session {
    fn dialect(&self) -> &'static str {
        super::DIALECT
    }

    /// Store what the client said; the core checks the user may still post, and delivers it
    /// to both users' sockets, the sender's own included, as Django Channels' group send does.
    async fn on_text(&mut self, conn: &mut Connection, text: &str) -> Result<(), Close> {
        let app = conn.app().clone();
        let posted = async {
            let said: Said = serde_json::from_str(text)
                .map_err(|_| Error::invalid("expected {\"message\": \"…\"}"))?;
            app.post_message(&self.user, &self.chat, &said.message)
                .await
        };
        match posted.await {
            Ok(_) => Ok(()),
            Err(e) => answer_error(conn, e).await,
        }
    }

    async fn on_refused(&mut self, conn: &mut Connection, err: Error) -> Result<(), Close> {
        answer_error(conn, err).await
    }

    /// Only the frames that overlapped the replay are read, until the first one past it.
    fn on_delivery(&mut self, frame: &Frame) -> bool {
        let Some(through) = self.replayed_through else {
            return true;
        };
        match frame.id {
            Some(id) if id <= through => false,
            Some(_) => {
                self.replayed_through = None;
                true
            }
            None => true,
        }
    }
}
