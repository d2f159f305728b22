//! `/profile/`: read anyone's profile, change one's own (JSON, or form data with a picture).

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::views;
use super::wire::{Body, Caller, HooksError, IdValue, Params, required_id};
use crate::core::App;
use crate::core::profiles::{DISPLAY_PIC_MAX_BYTES, Picture, ProfileChange, text_field};
use crate::error::Error;

pub fn router() -> Router<App> {
    Router::new().route("/profile/", get(show)).route(
        "/profile/update/",
        // Room for a picture a little over the limit, so it is refused by name with a reason.
        put(update).layer(DefaultBodyLimit::max(2 * DISPLAY_PIC_MAX_BYTES)),
    )
}

#[derive(Deserialize)]
struct Whose {
    user_id: Option<IdValue>,
}

/// The caller's profile, or with `?user_id=` anyone's.
async fn show(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Params { value: whose, .. }: Params<Whose>,
) -> Result<Json<Value>, HooksError> {
    let user = match &whose.user_id {
        None => me,
        Some(_) => {
            let num = required_id("user_id", &whose.user_id)?;
            app.user_by_num(num).await?.ok_or(Error::NotFound("user"))?
        }
    };
    Ok(Json(views::profile(&user)))
}

/// Interests as JSON sends them: a list, or one interest on its own.
#[derive(Deserialize)]
#[serde(untagged)]
enum Interests {
    Many(Vec<String>),
    One(String),
}

/// The interests the spec lets a profile list.
const INTERESTS: [&str; 20] = [
    "social networking",
    "dancing",
    "fun times",
    "social",
    "career",
    "business",
    "environment",
    "fitness",
    "nature",
    "sports",
    "recreation",
    "running",
    "cycling",
    "comedy",
    "coffee",
    "night waalks",
    "foodie",
    "dating",
    "relationship",
    "others",
];

#[derive(Deserialize)]
struct JsonProfile {
    #[serde(flatten)]
    text: std::collections::HashMap<String, Value>,
    interests: Option<Interests>,
}

async fn update(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    request: Request,
) -> Result<Json<Value>, HooksError> {
    let change = if crate::media::is_multipart(request.headers()) {
        let form = Multipart::from_request(request, &())
            .await
            .map_err(|e| Error::invalid(e.body_text()))?;
        read_form(form).await?
    } else {
        let Body { value: json, .. } = Body::<JsonProfile>::from_request(request, &()).await?;
        from_json(json)?
    };
    let change = ProfileChange {
        interest_choices: Some(&INTERESTS),
        ..change
    };
    let user = app.update_profile_details(&me, change).await?;
    Ok(Json(views::profile(&user)))
}

fn from_json(json: JsonProfile) -> Result<ProfileChange, Error> {
    let mut change = ProfileChange::default();
    for (name, value) in json.text {
        let Some(field) = text_field(&name) else {
            continue;
        };
        let text = match value {
            Value::Null => String::new(),
            Value::String(text) => text,
            Value::Number(n) => n.to_string(),
            _ => return Err(Error::Fields(vec![(field, "Not a valid string.".into())])),
        };
        change.text.push((field, text));
    }
    change.interests = json.interests.map(|i| match i {
        Interests::Many(list) => list,
        Interests::One(one) => vec![one],
    });
    Ok(change)
}

/// Form data as DRF reads it: `interests` repeated once per interest (a JSON list in one
/// field is taken too), `display_pic` a file.
async fn read_form(mut form: Multipart) -> Result<ProfileChange, Error> {
    let mut change = ProfileChange::default();
    let bad_form = |e: axum::extract::multipart::MultipartError| Error::invalid(e.body_text());
    while let Some(field) = form.next_field().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "display_pic" {
            let file_name = field.file_name().map(str::to_owned);
            let bytes = field.bytes().await.map_err(bad_form)?.to_vec();
            change.display_pic = Some(Picture { file_name, bytes });
            continue;
        }
        let value = field.text().await.map_err(bad_form)?;
        if name == "interests" {
            let interests = change.interests.get_or_insert_with(Vec::new);
            match serde_json::from_str::<Vec<String>>(&value) {
                Ok(list) => interests.extend(list),
                Err(_) if value.trim().is_empty() => {}
                Err(_) => interests.push(value),
            }
        } else if let Some(field) = text_field(&name) {
            change.text.push((field, value));
        }
    }
    Ok(change)
}
