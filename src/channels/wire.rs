//! The channels dialect on the wire: its ids, payload shapes, request parsing and errors.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::auth::TokenForm;
use crate::error::Error;
use crate::http::ids::parse_id;
use crate::http::{self, HttpError, Wire};
use crate::store::{Message, User};

/// Header carrying a human-readable reason next to the spec's `null` error bodies.
pub const ERROR_HEADER: &str = "x-palaver-error";

// ---- shapes ----

#[derive(Debug, Serialize)]
pub struct UserView {
    #[serde(rename = "avatarURL")]
    pub avatar_url: String,
    pub id: String,
    pub username: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            avatar_url: user.avatar_url.clone(),
            id: user.num.to_string(),
            username: user.username.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct MessageView {
    pub author: UserView,
    pub channel_id: String,
    pub content: String,
    pub id: String,
}

impl MessageView {
    pub fn new(message: &Message, author: &User, channel_num: i64) -> Self {
        Self {
            author: author.into(),
            channel_id: channel_num.to_string(),
            content: message.content.clone(),
            id: message.num.to_string(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeletedView {
    pub channel: String,
    pub id: String,
}

// ---- ids ----

/// Every value of an array query parameter, in whichever form the client sent it:
/// `users=1&users=2`, `users[]=1`, `users[0]=1`, `users=1,2` or `users=["1","2"]`.
pub fn array_param(query: Option<&str>, name: &str) -> Result<Vec<i64>, Error> {
    let mut ids = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let bare = key.split('[').next().unwrap_or_default();
        if bare != name {
            continue;
        }
        let value = value.trim();
        let items: Vec<String> = if value.starts_with('[') {
            let parsed: Vec<serde_json::Value> = serde_json::from_str(value)
                .map_err(|_| Error::invalid(format!("{name} is not a valid JSON array")))?;
            parsed
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect()
        } else {
            value.split(',').map(str::to_owned).collect()
        };
        for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            ids.push(parse_id(item).map_err(Error::invalid)?);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

// ---- the wire ----

/// The channels spec's conventions: a token in `Authorisation` (its spelling) or
/// `Authorization`, `Bearer ` optional; errors as a status and a `null` body.
pub struct ChannelsWire;

pub type ChannelsError = HttpError<ChannelsWire>;
pub type Caller = http::Caller<ChannelsWire>;
pub type Body<T> = http::Body<T, ChannelsWire>;

impl Wire for ChannelsWire {
    const TOKEN_FORMS: &'static [TokenForm] = &[
        TokenForm::Raw("authorisation"),
        TokenForm::Raw("authorization"),
    ];

    /// The channels spec answers a missing token with 400 and unchanged details with 406.
    fn status(err: &Error) -> StatusCode {
        match err {
            Error::MissingCredentials => StatusCode::BAD_REQUEST,
            Error::NotModified(_) => StatusCode::NOT_ACCEPTABLE,
            other => http::status(other),
        }
    }

    /// The spec's `null` body; the reason goes in a header (and the log, for server faults).
    fn respond(err: &Error) -> Response {
        let reason = err.public_message();
        let mut response = (Self::status(err), axum::Json(serde_json::Value::Null)).into_response();
        if let Ok(value) = HeaderValue::from_str(&reason) {
            response.headers_mut().insert(ERROR_HEADER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_params_accept_every_common_form() {
        let cases = [
            "users=1&users=2",
            "users[]=1&users[]=2",
            "users%5B%5D=1&users%5B%5D=2",
            "users[0]=2&users[1]=1",
            "users=1,2",
            "users=%5B%221%22%2C%222%22%5D",
            "users=[1,2]",
            "other=9&users=2,1,1",
        ];
        for query in cases {
            assert_eq!(
                array_param(Some(query), "users").unwrap(),
                vec![1, 2],
                "{query}"
            );
        }
        assert!(array_param(None, "users").unwrap().is_empty());
        assert!(array_param(Some("users="), "users").unwrap().is_empty());
        assert!(array_param(Some("users=abc"), "users").is_err());
        assert!(array_param(Some("users=[1"), "users").is_err());
    }
}
