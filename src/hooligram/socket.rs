//! `/v2`: one socket per running app. Each frame is parsed into a command and applied; the
//! answer echoes the request's id. A socket signs in inside its frames, then hears its groups
//! and what it has not received yet, then everything live.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use bson::DateTime;
use governor::{DefaultDirectRateLimiter, Quota};
use rooms::Frame;
use serde_json::json;

use super::commands::{self, Answer, NOT_SIGNED_IN, NOT_VERIFIED, TOO_MANY, WRONG_CODE, failed};
use super::frames::{self, Command, Kind, Parsed};
use super::{group_delivery, message_delivery, user_room};
use crate::core::App;
use crate::core::phones::phone;
use crate::core::receipts::UNDELIVERED_MAX;
use crate::error::Error;
use crate::realtime::websocket::code;
use crate::realtime::{Close, Connection, Door, Protocol};
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

pub fn router() -> Router<App> {
    Router::new().route("/v2", get(upgrade))
}

async fn upgrade(door: Door) -> Response {
    // An app signs in inside its frames: the socket is served as it opens.
    door.accept(FRAME_MAX_BYTES, |_| Box::pin(async { Ok(Client::new()) }))
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

    /// Apply one command, each in its own function (`commands.rs` for those of a signed-in
    /// user).
    async fn apply(&mut self, conn: &mut Connection, command: Command) -> Answer {
        let app = conn.app().clone();
        match command {
            Command::KeepAlive => Ok(json!({})),
            Command::RequestCode {
                country_code,
                phone_number,
            } => self.request_code(&app, &country_code, &phone_number).await,
            Command::SubmitCode { code } => self.submit_code(&app, &code).await,
            Command::SignIn {
                country_code,
                phone_number,
                code,
            } => {
                self.sign_in(conn, &country_code, &phone_number, &code)
                    .await
            }
            Command::CreateGroup { name, member_sids } => {
                commands::create_group(conn, self.signed_in()?, name, member_sids).await
            }
            Command::AddMember {
                group_id,
                member_sid,
            } => commands::add_member(&app, self.signed_in()?, group_id, &member_sid).await,
            Command::LeaveGroup { group_id } => {
                commands::leave_group(&app, self.signed_in()?, group_id).await
            }
            Command::Send { group_id, content } => {
                commands::post(&app, self.signed_in()?, group_id, &content).await
            }
            Command::Delivered { message_id } => {
                commands::delivered(&app, self.signed_in()?, message_id).await
            }
        }
    }

    fn signed_in(&self) -> Result<&User, String> {
        self.me.as_ref().ok_or_else(|| NOT_SIGNED_IN.to_owned())
    }

    /// `VERIFICATION_REQUEST_CODE_REQUEST`: a code by SMS to the phone, which a submitted code
    /// is then checked against.
    async fn request_code(&mut self, app: &App, country_code: &str, number: &str) -> Answer {
        self.costly()?;
        let phone = phone(country_code, number).map_err(failed)?;
        self.asked = Some(phone.clone());
        app.request_code(&phone).await.map_err(failed)?;
        Ok(json!({}))
    }

    /// `VERIFICATION_SUBMIT_CODE_REQUEST`: bounded by the code's own attempts.
    async fn submit_code(&mut self, app: &App, code: &str) -> Answer {
        let phone = self.asked.as_deref().ok_or(WRONG_CODE)?;
        match app.submit_code(phone, code).await {
            Ok(()) => Ok(json!({})),
            Err(Error::Unauthorized) => Err(WRONG_CODE.into()),
            Err(e) => Err(failed(e)),
        }
    }

    /// `AUTHORIZATION_SIGN_IN_REQUEST`: the socket is the proven phone's user's from now on.
    async fn sign_in(
        &mut self,
        conn: &mut Connection,
        country_code: &str,
        number: &str,
        code: &str,
    ) -> Answer {
        self.costly()?;
        let phone = phone(country_code, number).map_err(failed)?;
        let user = match conn.app().phone_sign_in(&phone, code).await {
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

    fn on_delivery(&mut self, frame: &Frame) -> bool {
        !frame
            .id
            .is_some_and(|id| self.delivered_at_sign_in.remove(&id))
    }
}
