//! The chats dialect on the wire: Bearer tokens, 24-hex ids, camelCase fields, JSON errors.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::core::App;
use crate::error::Error;
use crate::store::User;

/// The caller, from `Authorization: Bearer <token>`; 401 without a valid one.
pub struct Caller(pub User);

impl FromRequestParts<App> for Caller {
    type Rejection = ChatsError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(Error::MissingCredentials)?;
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
