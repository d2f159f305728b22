//! The hooks dialect on the wire, as Django REST Framework with simplejwt answers: Bearer
//! tokens, JSON or form bodies, `{"detail": "…"}` for auth and permission errors and
//! `{"field": ["message"]}` for invalid fields.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::auth::TokenForm;
use crate::error::Error;
use crate::http::ids::BadId;
pub use crate::http::ids::IdValue;
use crate::http::{self, HttpError, Unreadable, Wire};

/// DRF's conventions: `Authorization: Bearer <access token>`, errors as `{"detail": "…"}` or
/// `{"field": ["message"]}`.
pub struct HooksWire;

pub type HooksError = HttpError<HooksWire>;
pub type Caller = http::Caller<HooksWire>;
pub type Body<T> = http::Body<T, HooksWire>;
pub type Params<T> = http::Query<T, HooksWire>;

impl Wire for HooksWire {
    const TOKEN_FORMS: &'static [TokenForm] = &[TokenForm::Bearer("authorization")];

    fn respond(err: &Error) -> Response {
        let body = match err {
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
        (Self::status(err), Json(body)).into_response()
    }

    /// DRF's parsers' words.
    fn unreadable(part: Unreadable, detail: String) -> Error {
        match part {
            Unreadable::Json => Error::invalid(format!("JSON parse error - {detail}")),
            _ => Error::invalid(detail),
        }
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

/// The integer id in a required field, or DRF's message for the field.
pub fn required_id(name: &'static str, field: &Option<IdValue>) -> Result<i64, Error> {
    let invalid = |message: &str| Error::Fields(vec![(name, message.to_owned())]);
    match field.as_ref().map(IdValue::integer) {
        None => Err(invalid("This field is required.")),
        Some(Ok(id)) => Ok(id),
        Some(Err(BadId::Blank)) => Err(invalid("This field may not be blank.")),
        Some(Err(BadId::NotAnInteger)) => Err(invalid("A valid integer is required.")),
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

/// simplejwt's answer to a wrong email or password.
pub fn bad_credentials() -> Response {
    let body = json!({ "detail": "No active account found with the given credentials" });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}
