//! Pushes through FCM HTTP v1, against an in-process recording fake of Google's token and
//! messaging endpoints: the exact requests, one per device per event, token deletion on
//! UNREGISTERED, retries on 429, and nothing for users who are online.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::TestServer;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use palaver::core::HubUser;
use palaver::store::Platform;
use rooms::Present;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Sent {
    path: String,
    authorization: String,
    body: Value,
}

#[derive(Default)]
struct FakeFcm {
    sent: Mutex<Vec<Sent>>,
    attempts: Mutex<HashMap<String, u32>>,
}

async fn token() -> Json<Value> {
    Json(json!({ "access_token": "fake-access-token", "expires_in": 3600, "token_type": "Bearer" }))
}

/// `gone-*` tokens are unregistered; `busy-*` tokens are rate limited on their first attempt;
/// `bad-*` tokens are refused for good.
async fn send(
    State(fake): State<Arc<FakeFcm>>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    let device = body["message"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    fake.sent.lock().unwrap().push(Sent {
        path: uri.path().to_owned(),
        authorization,
        body,
    });
    let attempt = {
        let mut attempts = fake.attempts.lock().unwrap();
        let n = attempts.entry(device.clone()).or_default();
        *n += 1;
        *n
    };
    if device.starts_with("gone-") {
        let error = json!({ "error": { "code": 404, "status": "NOT_FOUND", "message": "Requested entity was not found.",
            "details": [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED" }] } });
        return (StatusCode::NOT_FOUND, [("retry-after", "0")], Json(error));
    }
    if device.starts_with("bad-") {
        let error = json!({ "error": { "code": 400, "status": "INVALID_ARGUMENT", "message": "invalid message" } });
        return (StatusCode::BAD_REQUEST, [("retry-after", "0")], Json(error));
    }
    if device.starts_with("busy-") && attempt == 1 {
        let error =
            json!({ "error": { "code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota" } });
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            Json(error),
        );
    }
    (
        StatusCode::OK,
        [("retry-after", "0")],
        Json(json!({ "name": format!("projects/palaver-test/messages/{attempt}") })),
    )
}

async fn start_fake() -> (String, Arc<FakeFcm>) {
    let fake = Arc::new(FakeFcm::default());
    let app = Router::new()
        .route("/token", post(token))
        .route("/v1/projects/{*rest}", post(send))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, fake)
}

/// A service-account key of the shape Google issues, with a fresh RSA key and the fake's
/// token endpoint.
fn service_account(dir: &std::path::Path, token_uri: &str) -> std::path::PathBuf {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let path = dir.join("service-account.json");
    let account = json!({
        "type": "service_account",
        "project_id": "palaver-test",
        "private_key_id": "test-key",
        "private_key": pem,
        "client_email": "push@palaver-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    });
    std::fs::write(&path, account.to_string()).unwrap();
    path
}

async fn wait_for(fake: &FakeFcm, count: usize) -> Vec<Sent> {
    for _ in 0..100 {
        if fake.sent.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything beyond `count` would be a duplicate: give it a moment to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::mem::take(&mut *fake.sent.lock().unwrap())
}

/// A server whose pushes go to a fresh fake FCM; keep the returned directory alive.
async fn server_with_fake_fcm() -> (TestServer, Arc<FakeFcm>, tempfile::TempDir) {
    let (fake_url, fake) = start_fake().await;
    let keys = tempfile::tempdir().unwrap();
    let credentials = service_account(keys.path(), &format!("{fake_url}/token"));
    let s = TestServer::start_configured(|config| {
        config.fcm_credentials = Some(credentials);
        config.fcm_base_url = fake_url.clone();
    })
    .await;
    (s, fake, keys)
}

#[tokio::test]
async fn offline_devices_get_one_fcm_message_per_event() {
    let (s, fake, _keys) = server_with_fake_fcm().await;
    let (ada_num, ada_token) = s.signup("ada").await;
    let (bob_num, _) = s.signup("bob").await;
    let app = &s.server.app;
    let ada = s.user(&ada_num).await;
    let bob = s.user(&bob_num).await;
    for (token, platform) in [
        ("bob-phone", Platform::Android),
        ("gone-tablet", Platform::Ios),
        ("busy-browser", Platform::Web),
    ] {
        app.register_device(&bob, token, platform, "chats")
            .await
            .unwrap();
    }
    app.register_device(&ada, "ada-phone", Platform::Android, "chats")
        .await
        .unwrap();

    // Bob is offline when ada opens a channel with him.
    let channel = s.create_channel(&ada_token, &bob_num).await;
    let chat = app
        .member_chat(&ada, channel.parse().unwrap())
        .await
        .unwrap();
    let sent = wait_for(&fake, 4).await;
    assert_eq!(sent.len(), 4, "one per device plus one retry: {sent:#?}");
    for request in &sent {
        assert_eq!(request.path, "/v1/projects/palaver-test/messages:send");
        assert_eq!(request.authorization, "Bearer fake-access-token");
    }
    let to_phone: Vec<_> = sent
        .iter()
        .filter(|r| r.body["message"]["token"] == "bob-phone")
        .collect();
    assert_eq!(to_phone.len(), 1);
    assert_eq!(
        to_phone[0].body,
        json!({ "message": {
            "token": "bob-phone",
            "notification": { "title": "New chat", "body": "ada started a chat with you" },
            "data": { "chat_id": chat.id.to_hex(), "event": "chat-created" },
            "android": { "priority": "high" },
            "apns": { "headers": { "apns-priority": "10" } },
        } })
    );
    let to_browser = sent
        .iter()
        .filter(|r| r.body["message"]["token"] == "busy-browser")
        .count();
    assert_eq!(to_browser, 2, "rate limited once, then retried");
    assert!(
        sent.iter()
            .all(|r| r.body["message"]["token"] != "ada-phone"),
        "nobody is pushed for their own action"
    );

    // The unregistered token is forgotten.
    let devices: Vec<String> = app
        .store
        .devices
        .distinct("token", bson::doc! { "user_id": bob.id })
        .await
        .unwrap()
        .into_iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    let mut devices = devices;
    devices.sort();
    assert_eq!(devices, ["bob-phone", "busy-browser"]);

    // Online: the socket event, no push.
    let online = app.hub.connect(Present::User(bob.id.hub_user())).await;
    app.post_message(&ada, &chat, "you there?").await.unwrap();
    assert!(wait_for(&fake, 1).await.is_empty());
    drop(online);

    // Offline again: exactly one message per remaining device.
    app.post_message(&ada, &chat, "call me").await.unwrap();
    let sent = wait_for(&fake, 2).await;
    let mut tokens: Vec<&str> = sent
        .iter()
        .map(|r| r.body["message"]["token"].as_str().unwrap())
        .collect();
    tokens.sort();
    assert_eq!(tokens, ["bob-phone", "busy-browser"]);
    assert_eq!(
        sent[0].body["message"]["notification"],
        json!({ "title": "ada", "body": "call me" })
    );
    s.stop().await;
}

#[tokio::test]
async fn a_device_fcm_refuses_does_not_keep_the_others_from_their_push() {
    let (s, fake, _keys) = server_with_fake_fcm().await;
    let (_, ada_token) = s.signup("ada").await;
    let (bob_num, _) = s.signup("bob").await;
    let bob = s.user(&bob_num).await;
    // Registered first, so it is tried first.
    for token in ["bad-watch", "bob-phone"] {
        s.server
            .app
            .register_device(&bob, token, Platform::Android, "chats")
            .await
            .unwrap();
    }
    s.create_channel(&ada_token, &bob_num).await;
    let sent = wait_for(&fake, 2).await;
    let tokens: Vec<&str> = sent
        .iter()
        .map(|r| r.body["message"]["token"].as_str().unwrap())
        .collect();
    assert_eq!(
        tokens,
        ["bad-watch", "bob-phone"],
        "refused once, not retried, and the next device still served"
    );
    // A refusal is not an unregistration: the device is kept.
    let kept = s
        .server
        .app
        .store
        .devices
        .count_documents(bson::doc! { "user_id": bob.id })
        .await
        .unwrap();
    assert_eq!(kept, 2);
    s.stop().await;
}
