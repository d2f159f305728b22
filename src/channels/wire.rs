//! The channels dialect on the wire: its ids, payload shapes, request parsing and errors.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::core::App;
use crate::error::Error;
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

/// A numeric id sent as a JSON string (the spec's form) or a JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumericId(pub i64);

impl<'de> Deserialize<'de> for NumericId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Self(n)),
            Raw::Text(text) => parse_id(&text).map(Self).map_err(serde::de::Error::custom),
        }
    }
}

pub fn parse_id(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("{text:?} is not a numeric id"))
}

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

// ---- requests ----

/// The token from `Authorisation` (the spec's spelling) or `Authorization`, `Bearer ` optional.
pub fn token_from_headers(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get("authorisation")
        .or_else(|| headers.get(header::AUTHORIZATION))?;
    let value = value.to_str().ok()?.trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token,
        _ if value.eq_ignore_ascii_case("bearer") => "",
        _ => value,
    };
    Some(token.trim()).filter(|t| !t.is_empty())
}

/// The authenticated caller: 400 without a token (as the spec says), 401 with a bad one.
pub struct Caller(pub User);

impl FromRequestParts<App> for Caller {
    type Rejection = ChannelsError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let token = token_from_headers(&parts.headers).ok_or(Error::MissingCredentials)?;
        Ok(Self(app.authenticate(token).await?))
    }
}

/// A request body as JSON or as a URL-encoded form, whichever the client sent.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ChannelsError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| Error::invalid(format!("unreadable body: {e}")))?;
        let parsed = if is_form {
            serde_urlencoded::from_bytes(&bytes).map_err(|e| e.to_string())
        } else {
            serde_json::from_slice(&bytes).map_err(|e| e.to_string())
        };
        parsed
            .map(Body)
            .map_err(|e| Error::invalid(format!("invalid body: {e}")).into())
    }
}

// ---- errors ----

/// The core's errors as the channels spec shows them: a status code and a `null` body.
#[derive(Debug)]
pub struct ChannelsError(pub Error);

impl<E: Into<Error>> From<E> for ChannelsError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

/// The channels spec answers a missing token with 400 and unchanged details with 406.
pub fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::MissingCredentials => StatusCode::BAD_REQUEST,
        Error::NotModified(_) => StatusCode::NOT_ACCEPTABLE,
        other => other.status(),
    }
}

impl IntoResponse for ChannelsError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let reason = self.0.public_message();
        let mut response = (status, axum::Json(serde_json::Value::Null)).into_response();
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

    #[test]
    fn ids_come_as_strings_or_numbers() {
        let id: NumericId = serde_json::from_str("\"1596544373547\"").unwrap();
        assert_eq!(id, NumericId(1596544373547));
        let id: NumericId = serde_json::from_str("42").unwrap();
        assert_eq!(id, NumericId(42));
        assert!(serde_json::from_str::<NumericId>("\"-1\"").is_err());
        assert!(serde_json::from_str::<NumericId>("\"x\"").is_err());
    }

    #[test]
    fn tokens_come_from_either_spelling_with_or_without_bearer() {
        let mut headers = HeaderMap::new();
        assert_eq!(token_from_headers(&headers), None);
        headers.insert("authorisation", HeaderValue::from_static("abc"));
        assert_eq!(token_from_headers(&headers), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(token_from_headers(&headers), Some("xyz"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(token_from_headers(&headers), None);
    }
}
