//! The commands of a signed-in user, each applied in its own function (mini-redis style), and
//! how their failures are told: in the original server's words, which the client shows as
//! they are.

use serde_json::{Value, json};

use super::frames;
use super::{GROUP_CATEGORY, group_delivery};
use crate::core::App;
use crate::core::direct::Opened;
use crate::core::groups::NewGroup;
use crate::core::phones::phone_name;
use crate::error::Error;
use crate::realtime::Connection;
use crate::store::User;

// The original server's failure strings; the client shows them as they are.
pub(super) const NOT_SIGNED_IN: &str = "not signed in";
pub(super) const NOT_VERIFIED: &str = "not verified";
pub(super) const WRONG_CODE: &str = "incorrect verification code";
const TOO_FEW: &str = "need at least two members";
const WITHOUT_CREATOR: &str = "include group creator in member_sids";
const NOT_ALLOWED: &str = "not allowed";
const NO_NEW_MEMBER: &str = "new member not found";
const NOT_IN_GROUP: &str = "not in group";
const NOT_A_MEMBER: &str = "sender doesn't belong to message group";
const SERVER_ERROR: &str = "server error";
/// Ours: the original server had no limits.
pub(super) const TOO_MANY: &str = "too many requests";

/// What a request came to: the success's payload, or the failure's one error.
pub(super) type Answer = Result<Value, String>;

/// `GROUP_CREATE_REQUEST`: two members make a direct message (the one they have, if any),
/// more a group that any member may add to.
pub(super) async fn create_group(
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
            let frame = group_delivery(chat, &members).to_string();
            conn.send(frame).await.map_err(|_| SERVER_ERROR)?;
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
pub(super) fn failed(err: Error) -> String {
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

/// `GROUP_ADD_MEMBER_REQUEST`: any member may add a user, named by their phone.
pub(super) async fn add_member(app: &App, me: &User, group_id: i64, member_sid: &str) -> Answer {
    let chat = app.member_chat(me, group_id).await;
    let chat = chat.map_err(|e| failed_as(e, NOT_ALLOWED))?;
    let user = app.user_by_phone_name(member_sid).await.map_err(failed)?;
    let user = user.ok_or(NO_NEW_MEMBER)?;
    app.invite(me, chat.id, &user)
        .await
        .map_err(|e| failed_as(e, NOT_ALLOWED))?;
    Ok(json!({}))
}

/// `GROUP_LEAVE_REQUEST`.
pub(super) async fn leave_group(app: &App, me: &User, group_id: i64) -> Answer {
    let chat = app.member_chat(me, group_id).await;
    let chat = chat.map_err(|e| failed_as(e, NOT_IN_GROUP))?;
    app.leave_chat(me, chat.id, None)
        .await
        .map_err(|e| failed_as(e, NOT_ALLOWED))?;
    Ok(json!({}))
}

/// `MESSAGE_SEND_REQUEST`: answered with the stored message's id.
pub(super) async fn post(app: &App, me: &User, group_id: i64, content: &str) -> Answer {
    let chat = app.member_chat(me, group_id).await;
    let chat = chat.map_err(|e| failed_as(e, NOT_A_MEMBER))?;
    let posted = match app.post_message(me, &chat, content).await {
        Ok(posted) => posted,
        Err(Error::Invalid(_)) => return Err(frames::missing("content")),
        Err(Error::NotFound(_)) => return Err(NOT_A_MEMBER.into()),
        Err(e) => return Err(failed_as(e, NOT_ALLOWED)),
    };
    Ok(json!({ "message_id": posted.message.num }))
}

/// `MESSAGE_DELIVERY_SUCCESS`: a receipt, never answered.
pub(super) async fn delivered(app: &App, me: &User, message_id: i64) -> Answer {
    if let Err(e) = app.mark_delivered(me, message_id).await {
        tracing::debug!(user = %me.id, message_id, "receipt not recorded: {e}");
    }
    Ok(Value::Null)
}
