//! Push device registration: the FCM token of each app install that wants pushes while its
//! user has no live connection.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::wire::{Body, Caller, ChatsError};
use crate::core::App;
use crate::store::{Device, Platform};

pub fn router() -> Router<App> {
    Router::new()
        .route("/devices", post(register))
        .route("/devices/{token}", delete(remove))
}

#[derive(Deserialize)]
struct Registration {
    token: String,
    platform: Platform,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceView {
    #[serde(rename = "_id")]
    id: String,
    token: String,
    platform: Platform,
    updated_at: String,
}

impl From<Device> for DeviceView {
    fn from(device: Device) -> Self {
        Self {
            id: device.id.to_hex(),
            token: device.token,
            platform: device.platform,
            updated_at: device
                .updated_at
                .try_to_rfc3339_string()
                .unwrap_or_default(),
        }
    }
}

/// Register this install's FCM token for the caller (again: idempotent).
async fn register(
    State(app): State<App>,
    Caller { user, .. }: Caller,
    Body { value: req, .. }: Body<Registration>,
) -> Result<(StatusCode, Json<serde_json::Value>), ChatsError> {
    let device = app
        .register_device(&user, &req.token, req.platform, super::DIALECT)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "device": DeviceView::from(device) })),
    ))
}

async fn remove(
    State(app): State<App>,
    Caller { user, .. }: Caller,
    Path(token): Path<String>,
) -> Result<StatusCode, ChatsError> {
    app.remove_device(&user, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
