//! The channels dialect over Socket.IO: connection, `message` and `messageDeleted`.

use serde::Deserialize;
use serde_json::json;
use socketioxide::ParserError;
use socketioxide::extract::{MaybeExtension, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;

use super::wire::{DeletedView, MessageView, NumericId, parse_id};
use super::{DIALECT, chat_room, user_room};
use crate::core::App;
use crate::error::Error;
use crate::realtime::{Ack, EventBudget, IoAdapter};
use crate::store::User;

type Socket = SocketRef<IoAdapter>;

/// What the connection said about itself, from whichever place the client could put it.
#[derive(Debug, Default, Deserialize)]
struct Handshake {
    token: Option<String>,
    channels: Option<serde_json::Value>,
}

/// Register the namespace. Authentication, room joins and handlers all happen in the connect
/// middleware, which runs before the client is told it is connected, so no early event is lost.
pub fn register(io: &socketioxide::SocketIo<IoAdapter>) {
    io.ns("/", (async |_: Socket| {}).with(on_connect));
}

async fn on_connect(
    socket: Socket,
    TryData(auth): TryData<Handshake>,
    State(app): State<App>,
) -> Result<(), Error> {
    socket.extensions.insert(EventBudget::default());
    socket.on("message", on_message);
    socket.on("messageDeleted", on_message_deleted);

    let auth = auth.unwrap_or_default();
    let parts = socket.req_parts();
    let query = parts.uri.query().unwrap_or_default();
    let query_value = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let token = auth
        .token
        .or_else(|| super::wire::token_from_headers(&parts.headers).map(str::to_owned))
        .or_else(|| query_value("token"));
    let Some(token) = token else {
        tracing::debug!(sid = %socket.id, "connected without a token: no events");
        return Ok(());
    };
    let user = match app
        .authenticate(token.trim().trim_start_matches("Bearer "))
        .await
    {
        Ok(user) => user,
        Err(Error::Unauthorized) => {
            tracing::debug!(sid = %socket.id, "connected with an invalid token: no events");
            return Ok(());
        }
        Err(e) => return Err(hide_fault(e)),
    };

    let listed = match auth.channels {
        Some(value) => channel_list(&value),
        None => parts
            .headers
            .get("channels")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| query_value("channels"))
            .map(|s| channel_list(&serde_json::Value::String(s)))
            .unwrap_or_default(),
    };
    let chats = app
        .member_chats_by_num(&user, &listed)
        .await
        .map_err(hide_fault)?;
    socket.join(user_room(&user.id.to_hex()).0);
    crate::chats::attach(&socket, &user);
    for chat in &chats {
        socket.join(chat_room(&chat.id.to_hex()).0);
    }
    app.hub.presence().connected(&user.id.to_hex());
    socket.on_disconnect(
        async |State(app): State<App>, MaybeExtension(user): MaybeExtension<User>| {
            if let Some(user) = user {
                app.hub.presence().disconnected(&user.id.to_hex());
            }
        },
    );
    tracing::debug!(sid = %socket.id, user = %user.id, channels = chats.len(), dialect = DIALECT, "socket connected");
    socket.extensions.insert(user);
    Ok(())
}

/// A failed connection is refused with `connect_error`; its reason goes to the log, not the client.
fn hide_fault(err: Error) -> Error {
    tracing::error!("socket connection failed: {err}");
    Error::Internal(anyhow::anyhow!("internal error"))
}

/// Channel ids as `"1,2,3"`, a JSON array of ids, or a single id. Unparseable entries are dropped.
fn channel_list(value: &serde_json::Value) -> Vec<i64> {
    let items: Vec<String> = match value {
        serde_json::Value::String(s) => s.split(',').map(str::to_owned).collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect(),
        serde_json::Value::Number(n) => vec![n.to_string()],
        _ => Vec::new(),
    };
    items.iter().filter_map(|s| parse_id(s).ok()).collect()
}

/// The checks every event starts with: within the socket's budget, signed in, well-formed.
fn admit<T>(
    budget: Option<EventBudget>,
    user: Option<User>,
    data: Result<T, ParserError>,
    expected: &'static str,
) -> Result<(User, T), Error> {
    budget.unwrap_or_default().spend()?;
    let user = user.ok_or(Error::Unauthorized)?;
    let data = data.map_err(|_| Error::invalid(expected))?;
    Ok((user, data))
}

#[derive(Deserialize)]
struct SendMessage {
    content: String,
    channel: NumericId,
}

async fn on_message(
    socket: Socket,
    TryData(data): TryData<SendMessage>,
    ack: Ack,
    State(app): State<App>,
    MaybeExtension(user): MaybeExtension<User>,
    MaybeExtension(budget): MaybeExtension<EventBudget>,
) {
    let result = async {
        let (user, data) = admit(
            budget,
            user,
            data,
            "expected {content: string, channel: id}",
        )?;
        let chat = app.member_chat(&user, data.channel.0).await?;
        let message = app.post_message(&user, &chat, &data.content).await?;
        Ok(MessageView::new(&message, &user, chat.num))
    }
    .await;
    reply(&socket, "message", ack, result);
}

#[derive(Deserialize)]
struct DeleteMessage {
    channel: NumericId,
    id: NumericId,
}

async fn on_message_deleted(
    socket: Socket,
    TryData(data): TryData<DeleteMessage>,
    ack: Ack,
    State(app): State<App>,
    MaybeExtension(user): MaybeExtension<User>,
    MaybeExtension(budget): MaybeExtension<EventBudget>,
) {
    let result = async {
        let (user, data) = admit(budget, user, data, "expected {channel: id, id: id}")?;
        let chat = app.member_chat(&user, data.channel.0).await?;
        let message = app.delete_message(&user, &chat, data.id.0).await?;
        Ok(DeletedView {
            channel: chat.num.to_string(),
            id: message.num.to_string(),
        })
    }
    .await;
    reply(&socket, "messageDeleted", ack, result);
}

/// Answer through the ack when the client asked for one; report failures without an ack as an
/// `error` event to this socket only.
fn reply<T: serde::Serialize>(
    socket: &Socket,
    event: &str,
    Ack(ack): Ack,
    result: Result<T, Error>,
) {
    let sent = match (result, ack) {
        (Ok(view), Some(ack)) => ack.send(&view).map_err(|e| e.to_string()),
        (Ok(_), None) => Ok(()),
        (Err(err), ack) => {
            tracing::debug!(sid = %socket.id, event, "event refused: {err}");
            let status = super::wire::status_of(&err).as_u16();
            let message = err.public_message();
            let body = json!({ "event": event, "status": status, "error": message });
            match ack {
                Some(ack) => ack.send(&body).map_err(|e| e.to_string()),
                None => socket.emit("error", &body).map_err(|e| e.to_string()),
            }
        }
    };
    if let Err(e) = sent {
        tracing::debug!(sid = %socket.id, event, "could not answer: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::channel_list;
    use serde_json::json;

    #[test]
    fn channel_lists_come_as_text_or_arrays() {
        assert_eq!(
            channel_list(&json!("1596546252413,1599079146709")),
            vec![1596546252413, 1599079146709]
        );
        assert_eq!(channel_list(&json!(["3", 4])), vec![3, 4]);
        assert_eq!(channel_list(&json!(" 5 , x,")), vec![5]);
        assert!(channel_list(&json!(null)).is_empty());
    }
}
