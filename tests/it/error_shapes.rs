//! Every refusal in its dialect's shape: a method a path does not take, and searches too long
//! to run, are answered by the dialect's error JSON and the right status, never a bare 405 or
//! a 500 from the database.

use crate::common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Status, content type and JSON body of a request with a token in every header the dialects
/// read.
async fn call(
    ts: &TestServer,
    method: Method,
    path: &str,
    token: &str,
) -> (StatusCode, String, Value) {
    let response = ts
        .http
        .request(method, ts.url(path))
        .header("Authorisation", token)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    (
        status,
        kind,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn a_method_a_path_does_not_take_is_405_in_the_dialects_shape() {
    let ts = TestServer::start().await;
    let (_, token) = ts.signup("ada").await;
    let cases = [
        // channels: the status and a `null` body
        (Method::DELETE, "/new", Value::Null),
        // chats: {"message"}
        (
            Method::PATCH,
            "/chats",
            serde_json::json!({ "message": "method not allowed" }),
        ),
        // hooks: {"detail"}
        (
            Method::DELETE,
            "/profile/",
            serde_json::json!({ "detail": "method not allowed" }),
        ),
        // requests: {"error", "code", "payload"}
        (
            Method::PUT,
            "/chat/totals",
            serde_json::json!({ "error": "method not allowed", "code": "METHOD_NOT_ALLOWED", "payload": null }),
        ),
    ];
    for (method, path, body) in cases {
        let (status, kind, answer) = call(&ts, method.clone(), path, &token).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(kind, "application/json", "{method} {path}");
        assert_eq!(answer, body, "{method} {path}");
    }
    ts.stop().await;
}

#[tokio::test]
async fn a_path_no_door_serves_is_404_in_json() {
    let ts = TestServer::start().await;
    for (method, path) in [
        (Method::GET, "/nowhere"),
        (Method::POST, "/chat/socket-nope/deeper/still"),
        (Method::DELETE, "/user/unknown/"),
    ] {
        let (status, kind, answer) = call(&ts, method.clone(), path, "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(kind, "application/json", "{method} {path}");
        assert_eq!(answer, serde_json::json!({ "message": "not found" }));
    }
    ts.stop().await;
}

#[tokio::test]
async fn searches_too_long_to_run_are_refused_with_400() {
    let ts = TestServer::start().await;
    let (_, token) = ts.signup("ada").await;
    let long = "a".repeat(1001);
    for path in [
        format!("/chats?search={long}"),
        format!("/chats/explore/communities?search={long}"),
    ] {
        let (status, _, answer) = call(&ts, Method::GET, &path, &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("at most 100"),
            "{answer}"
        );
    }
    let (status, _, _) = call(
        &ts,
        Method::GET,
        &format!("/chats?search={}", "a".repeat(100)),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    ts.stop().await;
}

#[tokio::test]
async fn pages_out_of_range_and_repeated_keys_are_refused_not_failed() {
    let ts = TestServer::start().await;
    let (_, token) = ts.signup("ada").await;
    let far = "page=9223372036854775807&limit=2";
    let chat = "0123456789abcdef01234567";
    for path in [
        format!("/chats?{far}"),
        format!("/chats/explore/communities?search=abc&{far}"),
        format!("/chats/{chat}/files?{far}"),
    ] {
        let (status, _, answer) = call(&ts, Method::GET, &path, &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(answer["message"].is_string(), "{path}: {answer}");
    }

    // The hooks dialect: a page past any end is DRF's 404, a repeated key its 400, as JSON.
    let hooks = ts.hooks_account("pages@example.org", "").await;
    for (path, expected) in [
        (
            "/follow/like/?status=pending&page=9223372036854775807",
            StatusCode::NOT_FOUND,
        ),
        ("/profile/?user_id=1&user_id=2", StatusCode::BAD_REQUEST),
    ] {
        let (status, kind, answer) = call(&ts, Method::GET, path, &hooks.access).await;
        assert_eq!(status, expected, "{path}: {answer}");
        assert_eq!(kind, "application/json", "{path}");
        assert!(answer["detail"].is_string(), "{path}: {answer}");
    }
    ts.stop().await;
}
