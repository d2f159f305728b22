//! Extractors every dialect uses, rejecting in the dialect's error shape.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use serde::de::DeserializeOwned;

use super::error::{HttpError, Unreadable, Wire};
use crate::core::App;
use crate::error::Error;
use crate::realtime;
use crate::store::User;

/// The signed-in caller, from wherever dialect `W`'s clients put their token. No token is
/// `MissingCredentials`; a wrong, expired or revoked one is `Unauthorized`. A write (any
/// method but `GET`, `HEAD` and `OPTIONS`) spends one event of the user's budget, the one
/// their Socket.IO and WebSocket events spend too, whatever the dialect: over it,
/// `RateLimited`.
pub struct Caller<W> {
    pub user: User,
    wire: PhantomData<W>,
}

impl<W: Wire> FromRequestParts<App> for Caller<W> {
    type Rejection = HttpError<W>;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let token = crate::auth::token(W::TOKEN_FORMS, &parts.headers, parts.uri.query(), None)
            .ok_or(Error::MissingCredentials)?;
        let user = app.authenticate(&token).await?;
        let reads = [Method::GET, Method::HEAD, Method::OPTIONS];
        if !reads.contains(&parts.method) {
            realtime::spend_users(&app.hub, &user.id)?;
        }
        Ok(Self {
            user,
            wire: PhantomData,
        })
    }
}

/// A request body as JSON or as a URL-encoded form, whichever the client sent (JSON when it
/// says nothing).
pub struct Body<T, W> {
    pub value: T,
    wire: PhantomData<W>,
}

impl<T: DeserializeOwned, W: Wire, S: Send + Sync> FromRequest<S> for Body<T, W> {
    type Rejection = HttpError<W>;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        });
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| W::unreadable(Unreadable::Json, e.body_text()))?;
        // Errors name the field at fault: `status: unknown variant "maybe"`.
        let parsed = if form {
            let fields = serde_urlencoded::Deserializer::new(form_urlencoded::parse(&bytes));
            serde_path_to_error::deserialize(fields)
                .map_err(|e| W::unreadable(Unreadable::Form, e.to_string()))
        } else {
            let json = &mut serde_json::Deserializer::from_slice(&bytes);
            serde_path_to_error::deserialize(json)
                .map_err(|e| W::unreadable(Unreadable::Json, e.to_string()))
        };
        Ok(Self {
            value: parsed?,
            wire: PhantomData,
        })
    }
}

/// Query parameters.
pub struct Query<T, W> {
    pub value: T,
    wire: PhantomData<W>,
}

impl<T: DeserializeOwned, W: Wire, S: Send + Sync> FromRequestParts<S> for Query<T, W> {
    type Rejection = HttpError<W>;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let value = serde_urlencoded::from_str(query)
            .map_err(|e| W::unreadable(Unreadable::Query, e.to_string()))?;
        Ok(Self {
            value,
            wire: PhantomData,
        })
    }
}

/// Path segments.
pub struct Path<T, W> {
    pub value: T,
    wire: PhantomData<W>,
}

impl<T: DeserializeOwned + Send, W: Wire, S: Send + Sync> FromRequestParts<S> for Path<T, W> {
    type Rejection = HttpError<W>;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| W::unreadable(Unreadable::Path, e.body_text()))?;
        Ok(Self {
            value,
            wire: PhantomData,
        })
    }
}
