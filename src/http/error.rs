//! The core's errors at the HTTP edge: a status for each, and each dialect's shape.

use std::marker::PhantomData;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::TokenForm;
use crate::error::Error;

/// What part of a request could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    Json,
    Form,
    Query,
    Path,
}

/// A dialect's conventions on the wire.
pub trait Wire: Send + Sync + 'static {
    /// Where this dialect's clients put their token on a request, in the order looked at.
    const TOKEN_FORMS: &'static [TokenForm];

    /// The status an error answers with; dialects whose spec says otherwise override it.
    fn status(err: &Error) -> StatusCode {
        status(err)
    }

    /// The whole answer to an error, in this dialect's shape.
    fn respond(err: &Error) -> Response;

    /// The error for a part of the request that could not be read.
    fn unreadable(part: Unreadable, detail: String) -> Error {
        let part = match part {
            Unreadable::Json | Unreadable::Form => "body",
            Unreadable::Query => "query",
            Unreadable::Path => "path",
        };
        Error::invalid(format!("invalid {part}: {detail}"))
    }
}

/// The HTTP status of each of the core's errors, for dialects whose spec does not say otherwise.
pub fn status(err: &Error) -> StatusCode {
    match err {
        Error::MissingCredentials | Error::Unauthorized => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Invalid(_) | Error::NotModified(_) | Error::Fields(_) | Error::LimitTooLarge(_) => {
            StatusCode::BAD_REQUEST
        }
        Error::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error answered in dialect `W`'s shape.
pub struct HttpError<W: Wire>(pub Error, PhantomData<W>);

impl<W: Wire> std::fmt::Debug for HttpError<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<W: Wire, E: Into<Error>> From<E> for HttpError<W> {
    fn from(err: E) -> Self {
        Self(err.into(), PhantomData)
    }
}

/// How soon a client may try again after a 503 (an outage, which is short or reported).
const RETRY_AFTER_SECONDS: &str = "1";

impl<W: Wire> IntoResponse for HttpError<W> {
    fn into_response(self) -> Response {
        let mut response = W::respond(&self.0);
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            metrics::counter!(crate::telemetry::RATE_LIMITED, "scope" => "http").increment(1);
        }
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// What a dialect's paths answer to a method they do not take, in its shape (set on each
/// dialect's routes with `Router::method_not_allowed_fallback`).
pub async fn method_not_allowed<W: Wire>() -> HttpError<W> {
    HttpError::from(Error::MethodNotAllowed)
}
