//! The hooks dialect on the wire, as Django REST Framework with simplejwt answers: Bearer
//! tokens, JSON or form bodies, `{"detail": "…"}` for auth and permission errors and
//! `{"field": ["message"]}` for invalid fields.

use axum::Json;
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::core::App;
use crate::error::Error;
use crate::store::User;

/// The caller, from `Authorization: Bearer <access token>`.
pub struct Caller(pub User);

impl FromRequestParts<App> for Caller {
    type Rejection = HooksError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let token = crate::auth::bearer_token(&parts.headers).ok_or(Error::MissingCredentials)?;
        Ok(Self(app.authenticate(token).await?))
    }
}

/// A JSON or form body, as DRF's parsers take either.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = HooksError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        });
        let value = if form {
            Form::<T>::from_request(req, state)
                .await
                .map_err(|e| Error::invalid(e.body_text()))?
                .0
        } else {
            Json::<T>::from_request(req, state)
                .await
                .map_err(|e| Error::invalid(format!("JSON parse error - {}", e.body_text())))?
                .0
        };
        Ok(Self(value))
    }
}

/// The value of each required field, or DRF's "This field is required." for every missing one.
pub fn required<'a, const N: usize>(
    fields: [(&'static str, &'a Option<String>); N],
) -> Result<[&'a str; N], Error> {
    let missing: Vec<(&'static str, String)> = fields
        .iter()
        .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
        .map(|(name, v)| {
            let message = if v.is_some() {
                "This field may not be blank."
            } else {
                "This field is required."
            };
            (*name, message.to_owned())
        })
        .collect();
    if !missing.is_empty() {
        return Err(Error::Fields(missing));
    }
    Ok(fields.map(|(_, v)| v.as_deref().unwrap_or_default()))
}

/// An id as clients send it: a JSON number, or text (form fields are always text).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum IdField {
    Number(i64),
    Text(String),
}

/// The integer id in a required field, or DRF's message for the field.
pub fn required_id(name: &'static str, field: &Option<IdField>) -> Result<i64, Error> {
    let invalid = |message: &str| Error::Fields(vec![(name, message.to_owned())]);
    match field {
        None => Err(invalid("This field is required.")),
        Some(IdField::Number(n)) => Ok(*n),
        Some(IdField::Text(t)) if t.trim().is_empty() => {
            Err(invalid("This field may not be blank."))
        }
        Some(IdField::Text(t)) => t
            .trim()
            .parse()
            .map_err(|_| invalid("A valid integer is required.")),
    }
}

/// A refusal about one field of the request, reported on that field as DRF's validators do;
/// other errors pass through.
pub fn on_field(name: &'static str) -> impl FnOnce(Error) -> Error {
    move |err| match err {
        Error::Invalid(message) | Error::Conflict(message) => {
            Error::Fields(vec![(name, capitalised(&message))])
        }
        Error::NotFound(_) => Error::Fields(vec![(
            name,
            "Invalid pk - object does not exist.".to_owned(),
        )]),
        other => other,
    }
}

/// DRF's messages are sentences.
fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    let mut sentence = first.unwrap_or_default() + chars.as_str();
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}

#[derive(Debug)]
pub struct HooksError(pub Error);

impl<E: Into<Error>> From<E> for HooksError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

impl IntoResponse for HooksError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = match &self.0 {
            Error::Fields(fields) => {
                let mut body = Map::new();
                for (field, message) in fields {
                    let messages = body.entry(*field).or_insert_with(|| json!([]));
                    if let Value::Array(list) = messages {
                        list.push(json!(message));
                    }
                }
                Value::Object(body)
            }
            Error::MissingCredentials => {
                json!({ "detail": "Authentication credentials were not provided." })
            }
            Error::Unauthorized => json!({
                "detail": "Given token not valid for any token type",
                "code": "token_not_valid",
            }),
            Error::NotFound(_) => json!({ "detail": "Not found." }),
            Error::RateLimited => json!({ "detail": "Request was throttled." }),
            other => json!({ "detail": other.public_message() }),
        };
        (status, Json(body)).into_response()
    }
}

/// simplejwt's answer to a wrong email or password.
pub fn bad_credentials() -> Response {
    let body = json!({ "detail": "No active account found with the given credentials" });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}
