//! The chats dialect on the wire: Bearer tokens, 24-hex ids, camelCase fields, JSON errors.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::TokenForm;
use crate::core::Origin;
use crate::error::Error;
use crate::http::{self, HttpError, Wire};

/// The chats dialect's conventions: `Authorization: Bearer <token>`, and errors as
/// `{"message": "…"}` with the status that fits.
pub struct ChatsWire;

pub type ChatsError = HttpError<ChatsWire>;
pub type Caller = http::Caller<ChatsWire>;
pub type Body<T> = http::Body<T, ChatsWire>;
pub type Params<T> = http::Query<T, ChatsWire>;
pub type Ids<T> = http::Path<T, ChatsWire>;

impl Wire for ChatsWire {
    const TOKEN_FORMS: &'static [TokenForm] = &[TokenForm::Bearer("authorization")];

    fn respond(err: &Error) -> Response {
        let message = err.public_message();
        (Self::status(err), Json(json!({ "message": message }))).into_response()
    }
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
    let Body { value: body, .. } = Body::<SocketOnly>::from_request(request, &()).await?;
    Ok(body.socket)
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
