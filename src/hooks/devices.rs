//! `/devices/`: an app install's FCM registration, in fcm-django's DRF shape, so users with no
//! live connection get their notifications pushed. Not in the spec; its apps are push clients.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{Body, Caller, HooksError, required};
use crate::core::App;
use crate::error::Error;
use crate::store::Platform;

pub fn router() -> Router<App> {
    Router::new()
        .route("/devices/", post(register))
        .route("/devices/{registration_id}/", delete(remove))
}

#[derive(Deserialize)]
struct Registration {
    registration_id: Option<String>,
    #[serde(rename = "type")]
    platform: Option<String>,
}

async fn register(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Body { value: form, .. }: Body<Registration>,
) -> Result<(StatusCode, Json<Value>), HooksError> {
    let [token, platform] = required([
        ("registration_id", &form.registration_id),
        ("type", &form.platform),
    ])?;
    let platform = match platform {
        "android" => Platform::Android,
        "ios" => Platform::Ios,
        "web" => Platform::Web,
        other => {
            let message = format!("\"{other}\" is not a valid choice.");
            return Err(Error::Fields(vec![("type", message)]).into());
        }
    };
    let device = app
        .register_device(&me, token, platform, super::DIALECT)
        .await
        .map_err(super::wire::on_field("registration_id"))?;
    let body = json!({
        "registration_id": device.token,
        "type": device.platform,
        "active": true,
        "date_created": super::views::timestamp(device.updated_at),
    });
    Ok((StatusCode::CREATED, Json(body)))
}

async fn remove(
    State(app): State<App>,
    Caller { user: me, .. }: Caller,
    Path(token): Path<String>,
) -> Result<StatusCode, HooksError> {
    app.remove_device(&me, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
