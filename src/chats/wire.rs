//! The chats dialect on the wire: Bearer tokens, 24-hex ids, camelCase fields, JSON errors.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use bson::oid::ObjectId;

use crate::core::{App, Origin};
use crate::error::Error;
use crate::store::User;

/// The caller, from `Authorization: Bearer <token>`; 401 without a valid one.
pub struct Caller(pub User);

impl FromRequestParts<App> for Caller {
    type Rejection = ChatsError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let token = crate::auth::bearer_token(&parts.headers).ok_or(Error::MissingCredentials)?;
        Ok(Self(app.authenticate(token).await?))
    }
}

/// A JSON body; a malformed one is a 400 in this dialect's error shape.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ChatsError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state)
            .await
            .map_err(|e| Error::invalid(e.body_text()))?;
        Ok(Self(value))
    }
}

/// Errors as `{"message": "..."}` with the status that fits.
#[derive(Debug)]
pub struct ChatsError(pub Error);

impl<E: Into<Error>> From<E> for ChatsError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

impl IntoResponse for ChatsError {
    fn into_response(self) -> Response {
        let message = self.0.public_message();
        (self.0.status(), Json(json!({ "message": message }))).into_response()
    }
}

/// A 24-hex ObjectId from a path or a body.
pub fn object_id(raw: &str, what: &str) -> Result<ObjectId, Error> {
    ObjectId::parse_str(raw.trim())
        .map_err(|_| Error::invalid(format!("{what} must be a 24-hex id")))
}

pub fn object_ids(raw: &[String], what: &str) -> Result<Vec<ObjectId>, Error> {
    raw.iter().map(|id| object_id(id, what)).collect()
}

/// The caller's own socket, left out of the events about their change. The spec's pattern is
/// `/^[A-Za-z0-9\-_]{16,25}$/`.
pub fn origin(socket: Option<String>) -> Result<Origin, Error> {
    match socket {
        None => Ok(None),
        Some(id)
            if (16..=25).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(Some(id))
        }
        Some(_) => Err(Error::invalid(
            "socket must be a socket id of 16 to 25 letters, digits, '-' or '_'",
        )),
    }
}

#[derive(serde::Deserialize)]
struct SocketOnly {
    socket: Option<String>,
}

/// The optional `{socket}` body of joins, removals and deletions; clients often send none.
pub async fn socket_of(request: Request) -> Result<Option<String>, ChatsError> {
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json {
        return Ok(None);
    }
    let Body(body) = Body::<SocketOnly>::from_request(request, &()).await?;
    Ok(body.socket)
}

/// Query parameters; malformed ones are a 400 in this dialect's error shape.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ChatsError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::invalid(e.body_text()))?;
        Ok(Self(value))
    }
}

/// Path segments; a malformed one is a 400 in this dialect's error shape.
pub struct Ids<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Ids<T> {
    type Rejection = ChatsError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::invalid(e.body_text()))?;
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn socket_ids_follow_the_spec_pattern() {
        assert!(origin(None).unwrap().is_none());
        assert!(
            origin(Some("u3C2x9asfB9vE5y8A6AD".into()))
                .unwrap()
                .is_some()
        );
        assert!(origin(Some("short".into())).is_err());
        assert!(origin(Some("u3C2x9asfB9vE5y8A6AD!".into())).is_err());
        assert!(origin(Some("x".repeat(26))).is_err());
    }
}
