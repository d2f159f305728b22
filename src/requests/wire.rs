//! The requests dialect on the wire: the raw JWT in `Authorization` (`Bearer ` optional), and
//! errors as `{"error": "…", "code": "…", "payload": null}`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::TokenForm;
use crate::error::Error;
use crate::http::{self, HttpError, Wire};

pub struct RequestsWire;

pub type RequestsError = HttpError<RequestsWire>;
pub type Caller = http::Caller<RequestsWire>;
pub type Body<T> = http::Body<T, RequestsWire>;
pub type Params<T> = http::Query<T, RequestsWire>;
pub type Ids<T> = http::Path<T, RequestsWire>;

impl Wire for RequestsWire {
    const TOKEN_FORMS: &'static [TokenForm] = &[TokenForm::Raw("authorization")];

    fn respond(err: &Error) -> Response {
        let body = json!({ "error": err.public_message(), "code": code(err), "payload": null });
        (Self::status(err), Json(body)).into_response()
    }
}

/// The machine-readable kind of an error.
fn code(err: &Error) -> &'static str {
    match err {
        Error::MissingCredentials | Error::Unauthorized => "UNAUTHORIZED",
        Error::Forbidden(_) => "FORBIDDEN",
        Error::NotFound(_) => "NOT_FOUND",
        Error::Conflict(_) => "CONFLICT",
        Error::LimitTooLarge(_) => "RESULT_LIMIT",
        Error::Invalid(_) | Error::NotModified(_) | Error::Fields(_) => "BAD_REQUEST",
        Error::RateLimited => "RATE_LIMITED",
        Error::MethodNotAllowed => "METHOD_NOT_ALLOWED",
        Error::Unavailable(_) => "SERVICE_UNAVAILABLE",
        Error::Database(_) | Error::Internal(_) => "INTERNAL_ERROR",
    }
}
