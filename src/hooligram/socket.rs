//! `/v2`: one socket per running app. Each frame is parsed into a command and applied; the
//! answer echoes the request's id. A socket signs in inside its frames, then hears its groups
//! and what it has not received yet, then everything live.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use axum::routing::get;
use bson::DateTime;
use governor::{DefaultDirectRateLimiter, Quota};
use serde_json::{Value, json};

use super::frames::{self, Command, Kind, Parsed};
use super::{GROUP_CATEGORY, group_delivery, message_delivery, user_room};
use crate::core::App;
use crate::core::direct::Opened;
use crate::core::groups::NewGroup;
use crate::core::phones::{phone, phone_name};
use crate::core::receipts::UNDELIVERED_MAX;
use crate::error::Error;
use crate::realtime::websocket::code;
use crate::realtime::{self, Close, Connection, Protocol};
use crate::store::User;

/// A frame is one request or receipt: a message of at most 4000 characters, or a group of
/// members, in a small JSON object.
const FRAME_MAX_BYTES: usize = 64 * 1024;

/// Requests that cost an SMS or a slow hash (codes asked, sign-ins): a few at once, then one
/// every ten seconds, per socket. Submitted codes are bounded by each code's attempts.
const COSTLY_PER_MINUTE: NonZeroU32 = NonZeroU32::new(6).unwrap();
const COSTLY_BURST: NonZeroU32 = NonZeroU32::new(5).unwrap();
/// Receipts per socket: as many as one sign-in's deliveries at once, then a steady flow.
const RECEIPTS_PER_SECOND: NonZeroU32 = NonZeroU32::new(200).unwrap();
const RECEIPTS_BURST: NonZeroU32 = NonZeroU32::new(UNDELIVERED_MAX as u32 + 200).unwrap();

/// A message delivered at sign-in that may also arrive live: one stored this close to the
/// moment the socket joined its room (or after it).
const OVERLAP: Duration = Duration::from_secs(5);

// The original server's failure strings; the client shows them as they are.
const NOT_SIGNED_IN: &str = "not signed in";
const NOT_VERIFIED: &str = "not verified";
const WRONG_CODE: &str = "incorrect verification code";
const TOO_FEW: &str = "need at least two members";
const WITHOUT_CREATOR: &str = "include group creator in member_sids";
const NOT_ALLOWED: &str = "not allowed";
const NO_NEW_MEMBER: &str = "new member not found";
const NOT_IN_GROUP: &str = "not in group";
const NOT_A_MEMBER: &str = "sender doesn't belong to message group";
const SERVER_ERROR: &str = "server error";
/// Ours: the original server had no limits.
const TOO_MANY: &str = "too many requests";

pub fn router() -> Router<App> {
    Router::new().route("/v2", get(upgrade))
}

async fn upgrade(State(app): State<App>, upgrade: WebSocketUpgrade) -> Response {
    // An app signs in inside its frames: the socket is served as it opens.
    realtime::accept(upgrade, FRAME_MAX_BYTES, app, |_| {
        Box::pin(async { Ok(Client::new()) })
    })
}

/// One app's socket.
struct Client {
    /// Who signed in on this socket.
    me: Option<User>,
    /// The phone this socket last asked a code for: what a submitted code is checked against.
    asked: Option<String>,
    costly: DefaultDirectRateLimiter,
    receipts: DefaultDirectRateLimiter,
    /// Messages delivered at sign-in that may come again live (see `OVERLAP`), to drop then.
    delivered_at_sign_in: HashSet<i64>,
}

/// What a request came to: the success's payload, or the failure's one error.
type Answer = Result<Value, String>;

impl Client {
    fn new() -> Self {
        let costly = Quota::per_minute(COSTLY_PER_MINUTE).allow_burst(COSTLY_BURST);
        let receipts = Quota::per_second(RECEIPTS_PER_SECOND).allow_burst(RECEIPTS_BURST);
        Self {
            me: None,
            asked: None,
            costly: DefaultDirectRateLimiter::direct(costly),
            receipts: DefaultDirectRateLimiter::direct(receipts),
            delivered_at_sign_in: HashSet::new(),
        }
    }

    fn costly(&self) -> Result<(), String> {
        self.costly.check().map_err(|_| TOO_MANY.to_owned())
    }

    async fn apply(&mut self, conn: &mut Connection, command: Command) -> Answer {
        let app = conn.app().clone();
        let me = self.me.clone();
        match (command, me) {
            (Command::KeepAlive, _) => Ok(json!({})),
            (
                Command::RequestCode {
                    country_code,
                    phone_number,
                },
                _,
            ) => {
                self.costly()?;
                let phone = phone(&country_code, &phone_number).map_err(failed)?;
                self.asked = Some(phone.clone());
                app.request_code(&phone).await.map_err(failed)?;
                Ok(json!({}))
            }
            // Bounded by the code's own attempts.
            (Command::SubmitCode { code }, _) => {
                let phone = self.asked.clone().ok_or(WRONG_CODE)?;
                match app.submit_code(&phone, &code).await {
                    Ok(()) => Ok(json!({})),
                    Err(Error::Unauthorized) => Err(WRONG_CODE.into()),
                    Err(e) => Err(failed(e)),
                }
            }
            (
                Command::SignIn {
                    country_code,
                    phone_number,
                    code,
                },
                _,
            ) => {
                self.costly()?;
                let phone = phone(&country_code, &phone_number).map_err(failed)?;
                let user = match app.phone_sign_in(&phone, &code).await {
                    Ok(user) => user,
                    Err(Error::Unauthorized) => return Err(NOT_VERIFIED.into()),
                    Err(e) => return Err(failed(e)),
                };
                if let Some(before) = &self.me
                    && before.id != user.id
                {
                    conn.leave(&user_room(&before.id));
                }
                conn.sign_in(&user).await;
                self.me = Some(user);
                Ok(json!({}))
            }
            (_, None) => Err(NOT_SIGNED_IN.into()),
            (Command::CreateGroup { name, member_sids }, Some(me)) => {
                create_group(conn, &me, name, member_sids).await
            }
            (
                Command::AddMember {
                    group_id,
                    member_sid,
                },
                Some(me),
            ) => {
                let chat = app.member_chat(&me, group_id).await;
                let chat = chat.map_err(|e| failed_as(e, NOT_ALLOWED))?;
                let user = app.user_by_phone_name(&member_sid).await.map_err(failed)?;
                let user = user.ok_or(NO_NEW_MEMBER)?;
                app.invite(&me, chat.id, &user)
                    .await
                    .map_err(|e| failed_as(e, NOT_ALLOWED))?;
                Ok(json!({}))
            }
            (Command::LeaveGroup { group_id }, Some(me)) => {
                let chat = app.member_chat(&me, group_id).await;
                let chat = chat.map_err(|e| failed_as(e, NOT_IN_GROUP))?;
                app.leave_chat(&me, chat.id, None)
                    .await
                    .map_err(|e| failed_as(e, NOT_ALLOWED))?;
                Ok(json!({}))
            }
            (Command::Send { group_id, content }, Some(me)) => {
                let chat = app.member_chat(&me, group_id).await;
                let chat = chat.map_err(|e| failed_as(e, NOT_A_MEMBER))?;
                let posted = match app.post_message(&me, &chat, &content).await {
                    Ok(posted) => posted,
                    Err(Error::Invalid(_)) => return Err(frames::missing("content")),
                    Err(Error::NotFound(_)) => return Err(NOT_A_MEMBER.into()),
                    Err(e) => return Err(failed_as(e, NOT_ALLOWED)),
                };
                Ok(json!({ "message_id": posted.message.num }))
            }
            (Command::Delivered { message_id }, Some(me)) => {
                if let Err(e) = app.mark_delivered(&me, message_id).await {
                    tracing::debug!(user = %me.id, message_id, "receipt not recorded: {e}");
                }
                Ok(Value::Null)
            }
        }
    }

    /// After a sign-in: every group of the user, then what has not reached them yet, oldest
    /// first. The socket joins the user's room first, so nothing stored meanwhile is missed;
    /// what this sends that may also come live is remembered, and dropped then.
    async fn welcome(&mut self, conn: &mut Connection) -> Result<(), Close> {
        let (Some(user), app) = (self.me.clone(), conn.app().clone()) else {
            return Ok(());
        };
        let joined = DateTime::now().timestamp_millis();
        conn.join(&user_room(&user.id));
        match app.chats_with_members(&user).await {
            Ok(chats) => {
                for (chat, members) in chats {
                    send(conn, group_delivery(&chat, &members).to_string()).await?;
                }
            }
            Err(e) => tracing::warn!(user = %user.id, "groups not delivered at sign-in: {e}"),
        }
        let overlap = i64::try_from(OVERLAP.as_millis()).unwrap_or(i64::MAX);
        match app.undelivered(&user).await {
            Ok(messages) => {
                for (chat, message, author) in messages {
                    if message.created_at.timestamp_millis() >= joined - overlap {
                        self.delivered_at_sign_in.insert(message.num);
                    }
                    send(conn, message_delivery(&chat, &message, &author).to_string()).await?;
                }
            }
            Err(e) => tracing::warn!(user = %user.id, "messages not delivered at sign-in: {e}"),
        }
        Ok(())
    }
}

/// `GROUP_CREATE_REQUEST`: two members make a direct message (the one they have, if any),
/// more a group that any member may add to.
async fn create_group(
    conn: &mut Connection,
    me: &User,
    name: String,
    member_sids: Vec<String>,
) -> Answer {
    let app = conn.app().clone();
    let mut sids: Vec<String> = Vec::with_capacity(member_sids.len());
    for sid in member_sids {
        if !sids.contains(&sid) {
            sids.push(sid);
        }
    }
    if sids.len() < 2 {
        return Err(TOO_FEW.into());
    }
    let mine = phone_name(me);
    if !sids.contains(&mine) {
        return Err(WITHOUT_CREATOR.into());
    }
    sids.retain(|sid| *sid != mine);
    let others = match app.phone_users(&sids).await {
        Ok(others) => others,
        Err(Error::Fields(_)) => return Err(frames::missing("member_sids")),
        Err(e) => return Err(failed_as(e, NO_NEW_MEMBER)),
    };
    if let [other] = others.as_slice() {
        let opened = app.open_direct(me, other, None, None).await;
        let opened = opened.map_err(|e| failed_as(e, NOT_ALLOWED))?;
        if let Opened::Existing(chat) = &opened {
            // Created before: this socket hears of it again (its app may have lost it).
            let members = [me.clone(), other.clone()];
            send(conn, group_delivery(chat, &members).to_string())
                .await
                .map_err(|_| SERVER_ERROR)?;
        }
        return Ok(json!({ "group_id": opened.chat().num }));
    }
    let new = NewGroup {
        name,
        category: GROUP_CATEGORY.into(),
        participants: others.iter().map(|u| u.id).collect(),
        restricted: false,
        open_invites: true,
    };
    match app.create_group(me, new, None).await {
        Ok(group) => Ok(json!({ "group_id": group.chat.num })),
        Err(Error::Invalid(_)) => Err(frames::missing("group_name")),
        Err(e) => Err(failed_as(e, NOT_ALLOWED)),
    }
}

/// A failure the request could not foresee: a field the core refused, a limit, or a fault of
/// the server (logged, and told only as "server error").
fn failed(err: Error) -> String {
    match err {
        Error::Fields(fields) => fields.first().map_or_else(
            || SERVER_ERROR.to_owned(),
            |(field, _)| frames::missing(field),
        ),
        Error::RateLimited => TOO_MANY.into(),
        err if err.is_server_fault() => {
            tracing::error!(error = %err, "hooligram request failed");
            SERVER_ERROR.into()
        }
        err => {
            tracing::warn!(error = %err, "hooligram request refused without a protocol word for it");
            SERVER_ERROR.into()
        }
    }
}

/// As `failed`, with refusals of the request itself (not found, forbidden, invalid,
/// conflicting) answered `refusal`.
fn failed_as(err: Error, refusal: &str) -> String {
    match err {
        Error::NotFound(_) | Error::Forbidden(_) | Error::Invalid(_) | Error::Conflict(_) => {
            tracing::debug!(error = %err, "hooligram request refused");
            refusal.into()
        }
        err => failed(err),
    }
}

async fn send(conn: &mut Connection, frame: String) -> Result<(), Close> {
    conn.send(frame)
        .await
        .map_err(|_| Close::new(code::NORMAL, ""))
}

impl Protocol for Client {
    fn dialect(&self) -> &'static str {
        super::DIALECT
    }

    /// Echoes and other frames that need no work cost nothing; requests and receipts are
    /// counted where they are acted on.
    fn counts_every_frame(&self) -> bool {
        false
    }

    async fn on_text(&mut self, conn: &mut Connection, text: &str) -> Result<(), Close> {
        let (id, kind, command) = match frames::parse(text) {
            Parsed::Ignored => return Ok(()),
            Parsed::Refused { id, kind, error } => {
                // A request with no id says only that; one with bad fields is refused for
                // not being signed in first, as the original server checked that first.
                let signed_out = kind.needs_sign_in() && self.me.is_none();
                let error = match signed_out && error != frames::NO_ID {
                    true => NOT_SIGNED_IN.to_owned(),
                    false => error,
                };
                return send(conn, frames::failure(kind, &id, &error)).await;
            }
            Parsed::Request { id, kind, command } => (id, kind, command),
        };
        if kind == Kind::Delivered {
            if self.receipts.check().is_ok() && self.me.is_some() {
                let _ = self.apply(conn, command).await;
            }
            return Ok(());
        }
        if conn.spend().is_err() {
            return send(conn, frames::failure(kind, &id, TOO_MANY)).await;
        }
        let answer = self.apply(conn, command).await;
        let signed_in = kind == Kind::SignIn && answer.is_ok();
        let frame = match answer {
            Ok(payload) => frames::success(kind, &id, payload),
            Err(error) => frames::failure(kind, &id, &error),
        };
        send(conn, frame).await?;
        if signed_in {
            self.welcome(conn).await?;
        }
        Ok(())
    }

    fn on_delivery(&mut self, frame: &str) -> bool {
        if self.delivered_at_sign_in.is_empty() {
            return true;
        }
        let delivered = serde_json::from_str::<Value>(frame)
            .ok()
            .and_then(|f| f["payload"]["message_id"].as_i64());
        !delivered.is_some_and(|id| self.delivered_at_sign_in.remove(&id))
    }
}
