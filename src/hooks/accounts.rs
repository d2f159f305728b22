//! `/user/`: sign-up, sign-in, sign-out on every device, and simplejwt's token refresh.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::wire::{Body, Caller, HooksError, bad_credentials, required};
use crate::core::App;
use crate::core::accounts::SignUp;
use crate::core::tokens::TokenType;
use crate::error::Error;

/// The lifetimes of the spec's example tokens: 5 hours and a day.
const ACCESS_TTL: Duration = Duration::from_secs(5 * 3600);
const REFRESH_TTL: Duration = Duration::from_secs(24 * 3600);

pub fn router() -> Router<App> {
    Router::new()
        .route("/user/signup/", post(sign_up))
        .route("/user/signin/", post(sign_in))
        .route("/user/signout/", post(sign_out))
        .route("/user/token/refresh/", post(refresh))
}

#[derive(Deserialize)]
struct SignUpForm {
    email: Option<String>,
    password: Option<String>,
    password2: Option<String>,
    user_type: Option<String>,
}

async fn sign_up(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body { value: form, .. }: Body<SignUpForm>,
) -> Result<(StatusCode, Json<serde_json::Value>), HooksError> {
    let [email, password, password2] = required([
        ("email", &form.email),
        ("password", &form.password),
        ("password2", &form.password2),
    ])?;
    let user = app
        .sign_up(
            SignUp {
                email: email.to_owned(),
                password: password.to_owned(),
                password2: password2.to_owned(),
                user_type: form.user_type,
            },
            Some(peer.ip()),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "email": user.email, "user_type": user.user_type })),
    ))
}

#[derive(Deserialize)]
struct SignInForm {
    email: Option<String>,
    password: Option<String>,
}

async fn sign_in(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body { value: form, .. }: Body<SignInForm>,
) -> Result<Response, HooksError> {
    let [email, password] = required([("email", &form.email), ("password", &form.password)])?;
    let user = match app.sign_in(email, password, Some(peer.ip())).await {
        Ok(user) => user,
        Err(Error::Unauthorized) => return Ok(bad_credentials()),
        Err(e) => return Err(e.into()),
    };
    let body = json!({
        "refresh": app.tokens.issue_typed(&user, REFRESH_TTL, TokenType::Refresh)?,
        "access": app.tokens.issue_typed(&user, ACCESS_TTL, TokenType::Access)?,
        "user": { "email": user.email, "user_id": user.num },
    });
    Ok(Json(body).into_response())
}

/// Every token of the user, on every device, stops working at once.
async fn sign_out(
    State(app): State<App>,
    Caller { user, .. }: Caller,
) -> Result<Json<serde_json::Value>, HooksError> {
    app.revoke_sessions(&user).await?;
    Ok(Json(json!({ "message": "Logged Out from all devices" })))
}

#[derive(Deserialize)]
struct RefreshForm {
    refresh: Option<String>,
}

async fn refresh(
    State(app): State<App>,
    Body { value: form, .. }: Body<RefreshForm>,
) -> Result<Json<serde_json::Value>, HooksError> {
    let [refresh] = required([("refresh", &form.refresh)])?;
    let access = app.refresh_access(refresh, ACCESS_TTL).await?;
    Ok(Json(json!({ "access": access })))
}
