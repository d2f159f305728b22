//! Liveness, readiness and metrics for load balancers, orchestrators and operators, owned by
//! no dialect.
//!
//! `/healthz` answers while the process serves requests at all; `/readyz` only while this node
//! can do its work: the database answers, Redis too when the node shares it, and the node is
//! not stopping. A balancer sends new clients elsewhere meanwhile.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::core::App;

pub fn router() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(scrape))
}

/// Prometheus text (see `telemetry` for what is in it).
async fn scrape() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::render(),
    )
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(app): State<App>) -> impl IntoResponse {
    let database = app.store.is_up().await;
    let redis = app.hub.cluster().map(|link| link.is_up());
    let stopping = app.is_stopping();
    let ready = database && redis != Some(false) && !stopping;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "database": database,
        "redis": redis,
        "stopping": stopping,
    });
    (status, Json(body))
}
