//! The channels dialect over Socket.IO: its connection, `message` and `messageDeleted`, and
//! replaying what a reconnecting client missed.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

use socketioxide::extract::{Event, SocketRef, TryData};
use socketioxide::handler::{FromMessageParts, Value as PacketValue};
use socketioxide::socket::Socket as RawSocket;

use super::wire::{ChannelsWire, DeletedView, MessageView};
use super::{Channels, DIALECT, chat_room};
use crate::auth::TokenForm;
use crate::core::App;
use crate::core::history::Replay;
use crate::error::Error;
use crate::http::Wire;
use crate::http::ids::{NumericId, parse_id};
use crate::realtime::{self, Ack, IoAdapter, Joining, Socket, SocketDialect};
use crate::store::{Chat, User};

/// The channels dialect on a Socket.IO path.
pub(super) struct ChannelsSocket;

/// Chats whose room a socket joins once it has been sent what it missed in them, with the
/// last message it saw in each.
#[derive(Clone)]
struct CatchUp(Vec<(Chat, i64)>);

impl SocketDialect for ChannelsSocket {
    fn name(&self) -> &'static str {
        DIALECT
    }

    /// `auth.token` (browsers cannot set WebSocket headers), then the spec's headers, then
    /// `?token=` (socket.io-client 2 has no `auth`).
    fn token_forms(&self) -> &'static [TokenForm] {
        &[
            TokenForm::Auth,
            TokenForm::Raw("authorisation"),
            TokenForm::Raw("authorization"),
            TokenForm::Query("token"),
        ]
    }

    /// Handlers, then the user's room and the rooms of the channels the client listed. A
    /// socket without a valid token still connects, as the spec says, and hears nothing.
    fn attach<'a>(&'a self, joining: &'a Joining<'a>) -> BoxFuture<'a, Result<(), Error>> {
        let Joining {
            app,
            socket,
            user,
            handshake,
        } = *joining;
        Box::pin(async move {
            socket.on("message", on_message);
            socket.on("messageDeleted", on_message_deleted);
            let Some(user) = user else {
                tracing::debug!(sid = %socket.id, "connected without a valid token: no events");
                return Ok(());
            };
            let listed = handshake
                .field("channels")
                .map(|v| channel_list(&v))
                .unwrap_or_default();
            let last_seen = handshake
                .field("lastSeen")
                .map(|v| last_seen_list(&v))
                .unwrap_or_default();
            let mut wanted = listed;
            wanted.extend(last_seen.iter().map(|(channel, _)| *channel));
            let chats = app.member_chats_by_num(user, &wanted).await?;
            let mut catch_up = Vec::new();
            for chat in chats {
                match last_seen.iter().find(|(channel, _)| *channel == chat.num) {
                    Some((_, message)) => catch_up.push((chat, *message)),
                    None => socket.join(chat_room(&chat.id.to_hex()).as_str().to_owned()),
                }
            }
            if !catch_up.is_empty() {
                socket.extensions.insert(CatchUp(catch_up));
            }
            tracing::debug!(sid = %socket.id, user = %user.id, dialect = DIALECT, "channels attached");
            Ok(())
        })
    }

    /// Send each chat's missed messages in order, then join its room, then what was stored
    /// meanwhile: what is posted after the join arrives live.
    fn connected(&self, app: App, socket: Socket, _user: User) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let Some(CatchUp(chats)) = socket.extensions.remove::<CatchUp>() else {
                return;
            };
            for (chat, last_seen) in chats {
                let room = chat_room(&chat.id.to_hex()).as_str().to_owned();
                let caught_up = async {
                    let mut replay = app.replay(&chat, last_seen).await?;
                    send_missed(&app, &socket, &chat, &mut replay).await?;
                    socket.join(room.clone());
                    replay.joined();
                    send_missed(&app, &socket, &chat, &mut replay).await
                };
                if let Err(e) = caught_up.await {
                    tracing::warn!(sid = %socket.id, chat = %chat.id, "could not replay missed messages: {e}");
                    socket.join(room);
                }
            }
        })
    }
}

async fn send_missed(
    app: &App,
    socket: &Socket,
    chat: &Chat,
    replay: &mut Replay,
) -> Result<(), Error> {
    while let Some((message, author)) = app.next_missed(replay).await? {
        let view = MessageView::new(&message, &author, chat.num);
        if socket.emit("message", &view).is_err() {
            break;
        }
    }
    Ok(())
}

/// Channel ids as `"1,2,3"`, a JSON array of ids, or a single id. Unparseable entries are dropped.
fn channel_list(value: &Value) -> Vec<i64> {
    let items: Vec<String> = match value {
        Value::String(s) => s.split(',').map(str::to_owned).collect(),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect(),
        Value::Number(n) => vec![n.to_string()],
        _ => Vec::new(),
    };
    items.iter().filter_map(|s| parse_id(s).ok()).collect()
}

/// The last message seen per channel: `{"<channel>": "<message>"}` (from `auth`), or
/// `"<channel>:<message>,…"` (from a header or the query). Unparseable entries are dropped.
fn last_seen_list(value: &Value) -> Vec<(i64, i64)> {
    let id = |v: &Value| match v {
        Value::String(s) => parse_id(s).ok(),
        Value::Number(n) => n.as_i64().filter(|n| *n >= 0),
        _ => None,
    };
    match value {
        Value::Object(map) => map
            .iter()
            .filter_map(|(channel, message)| Some((parse_id(channel).ok()?, id(message)?)))
            .collect(),
        Value::String(s) => s
            .split(',')
            .filter_map(|pair| {
                let (channel, message) = pair.split_once(':')?;
                Some((parse_id(channel).ok()?, parse_id(message).ok()?))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// An event from a signed-in user, within their budgets, with what its answer needs. Any other
/// event is refused here, and answered as its handler would have (`reply`); its handler is not
/// called.
struct Call {
    app: App,
    user: User,
    socket: Socket,
    ack: Ack,
}

impl Call {
    /// Answer the event named `event` with what its handler made of it.
    fn answer<T: serde::Serialize>(self, event: &str, result: Result<T, Error>) {
        reply(&self.socket, event, self.ack, result);
    }
}

/// Why an event was refused before its handler (it has been answered).
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

impl FromMessageParts<IoAdapter> for Call {
    type Error = Refused;

    fn from_message_parts(
        s: &Arc<RawSocket<IoAdapter>>,
        v: &mut PacketValue,
        ack_id: &Option<i64>,
    ) -> Result<Self, Refused> {
        let Ok(ack) = Ack::from_message_parts(s, v, ack_id);
        let socket = SocketRef::from(s.clone());
        match realtime::caller(s, v, ack_id) {
            Ok((app, user)) => Ok(Self {
                app,
                user,
                socket,
                ack,
            }),
            Err(err) => {
                let event =
                    Event::from_message_parts(s, v, ack_id).map_or_else(|_| String::new(), |e| e.0);
                let why = err.to_string();
                reply::<()>(&socket, &event, ack, Err(err));
                Err(Refused(why))
            }
        }
    }
}

#[derive(Deserialize)]
struct SendMessage {
    content: String,
    channel: NumericId,
}

async fn on_message(call: Call, TryData(data): TryData<SendMessage>) {
    let result = post(&call, data.ok()).await;
    call.answer("message", result);
}

/// Post to a channel; the ack carries what the channel heard, rendered once for both.
async fn post(call: &Call, data: Option<SendMessage>) -> Result<Value, Error> {
    let data = data.ok_or_else(|| Error::invalid("expected {content: string, channel: id}"))?;
    let Call { app, user, .. } = call;
    let chat = app.member_chat(user, data.channel.0).await?;
    let posted = app.post_message(user, &chat, &data.content).await?;
    let heard = posted.published.as_ref();
    Ok(match heard.and_then(|p| p.answer::<Channels>()) {
        Some(payload) => payload.clone(),
        None => super::json(MessageView::new(&posted.message, user, chat.num)),
    })
}

#[derive(Deserialize)]
struct DeleteMessage {
    channel: NumericId,
    id: NumericId,
}

async fn on_message_deleted(call: Call, TryData(data): TryData<DeleteMessage>) {
    let result = delete(&call, data.ok()).await;
    call.answer("messageDeleted", result);
}

async fn delete(call: &Call, data: Option<DeleteMessage>) -> Result<DeletedView, Error> {
    let data = data.ok_or_else(|| Error::invalid("expected {channel: id, id: id}"))?;
    let Call { app, user, .. } = call;
    let chat = app.member_chat(user, data.channel.0).await?;
    let message = app.delete_message(user, &chat, data.id.0).await?;
    Ok(DeletedView {
        channel: chat.num.to_string(),
        id: message.num.to_string(),
    })
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
            let status = ChannelsWire::status(&err).as_u16();
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
    use super::{channel_list, last_seen_list};
    use serde_json::json;

    #[test]
    fn last_seen_comes_as_an_object_or_text() {
        assert_eq!(
            last_seen_list(&json!({"4": "120", "5": 130, "x": "1"})),
            vec![(4, 120), (5, 130)]
        );
        assert_eq!(
            last_seen_list(&json!("4:120, 5:130,bad")),
            vec![(4, 120), (5, 130)]
        );
        assert!(last_seen_list(&json!(null)).is_empty());
    }

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
