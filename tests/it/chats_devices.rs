//! Push device registration in the chats dialect: Bearer auth, validation, ownership.

use crate::common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn register(s: &TestServer, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = s.http.post(s.url("/devices")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn remove(s: &TestServer, token: &str, device: &str) -> StatusCode {
    s.http
        .delete(s.url(&format!("/devices/{device}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn devices_are_registered_idempotently_and_removed_by_their_owner() {
    let s = TestServer::start().await;
    let (_, ada) = s.signup("ada").await;
    let (_, bob) = s.signup("bob").await;

    let (status, body) = register(
        &s,
        Some(&ada),
        json!({ "token": "fcm-token-1", "platform": "android" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let device = &body["device"];
    assert_eq!(device["token"], "fcm-token-1");
    assert_eq!(device["platform"], "android");
    assert_eq!(device["_id"].as_str().map(str::len), Some(24));
    assert!(
        device["updatedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // Registering again keeps one device.
    let (status, again) = register(
        &s,
        Some(&ada),
        json!({ "token": "fcm-token-1", "platform": "android" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["device"]["_id"], device["_id"]);

    // Only the owner may remove it; then it is gone.
    assert_eq!(remove(&s, &bob, "fcm-token-1").await, StatusCode::NOT_FOUND);
    assert_eq!(
        remove(&s, &ada, "fcm-token-1").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(remove(&s, &ada, "fcm-token-1").await, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn a_token_follows_whoever_signed_in_on_that_device_last() {
    let s = TestServer::start().await;
    let (_, ada) = s.signup("ada").await;
    let (_, bob) = s.signup("bob").await;
    register(
        &s,
        Some(&ada),
        json!({ "token": "shared-phone", "platform": "ios" }),
    )
    .await;
    let (status, _) = register(
        &s,
        Some(&bob),
        json!({ "token": "shared-phone", "platform": "ios" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        remove(&s, &ada, "shared-phone").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        remove(&s, &bob, "shared-phone").await,
        StatusCode::NO_CONTENT
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_registrations_are_refused_with_a_json_reason() {
    let s = TestServer::start().await;
    let (_, ada) = s.signup("ada").await;
    let (status, body) = register(&s, None, json!({ "token": "t", "platform": "web" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].is_string());
    let (status, _) = register(
        &s,
        Some("not-a-jwt"),
        json!({ "token": "t", "platform": "web" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for bad in [
        json!({ "token": "t", "platform": "blackberry" }),
        json!({ "token": "", "platform": "web" }),
        json!({ "token": "has space", "platform": "web" }),
        json!({ "platform": "web" }),
    ] {
        let (status, body) = register(&s, Some(&ada), bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{bad}: {body}"
        );
    }
    let response = s
        .http
        .post(s.url("/devices"))
        .bearer_auth(&ada)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}
