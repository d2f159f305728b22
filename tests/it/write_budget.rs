//! One budget per user for every write, whatever the dialect or the transport: REST writes
//! spend the same events as Socket.IO and WebSocket ones (30 a second after a burst of 60),
//! and are refused with 429 in their dialect's shape beyond it. Accounts made without a
//! password are counted per client address with password sign-ups.

use std::time::Instant;

use crate::common::{TestServer, ws_next, ws_open};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// More writes at once than one user's burst.
const AT_ONCE: usize = 100;

/// `AT_ONCE` copies of a write, sent at once, as they are answered.
fn writes(
    ts: &TestServer,
    method: Method,
    path: &str,
    header: (&str, String),
    body: Value,
) -> FuturesUnordered<impl Future<Output = reqwest::Result<reqwest::Response>>> {
    (0..AT_ONCE)
        .map(|_| {
            ts.http
                .request(method.clone(), ts.url(path))
                .header(header.0, &header.1)
                .json(&body)
                .send()
        })
        .collect()
}

/// Send `AT_ONCE` copies of a write at once; the answers that were refused (429), with their
/// bodies and `X-Palaver-Error`. One burst (60) goes through, and what the budget refills
/// (30 a second) while the rest arrive: the rest is refused.
async fn flood(
    ts: &TestServer,
    method: Method,
    path: &str,
    header: (&str, String),
    body: Value,
) -> Vec<(Value, Option<String>)> {
    let started = Instant::now();
    let mut answers = writes(ts, method, path, header, body);
    let mut refused = Vec::new();
    while let Some(answer) = answers.next().await {
        let answer = answer.unwrap();
        if answer.status() != StatusCode::TOO_MANY_REQUESTS {
            continue;
        }
        let reason = answer
            .headers()
            .get("x-palaver-error")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = answer.text().await.unwrap();
        refused.push((serde_json::from_str(&text).unwrap(), reason));
    }
    let refilled = (30.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    let expected = (AT_ONCE - 60).saturating_sub(refilled).max(1);
    let count = refused.len();
    assert!(
        (expected..=AT_ONCE - 60).contains(&count),
        "{path}: {count} of {AT_ONCE} refused, {expected} at least"
    );
    refused
}

#[tokio::test]
async fn rest_writes_are_held_to_the_users_budget_in_every_dialect() {
    let ts = TestServer::start().await;

    // channels: the status and a `null` body, the reason in a header.
    let (_, ada) = ts.signup("ada").await;
    let body = json!({ "username": "ada", "avatarURL": "" });
    let refused = flood(
        &ts,
        Method::POST,
        "/update-account",
        ("authorisation", ada),
        body,
    )
    .await;
    assert!(
        refused
            .iter()
            .all(|(body, reason)| body.is_null() && reason.is_some())
    );

    // chats: {"message"}.
    let (bob, cat) = (ts.member("bob").await, ts.member("cat").await);
    let (_, chat) = ts
        .call(
            Method::POST,
            "/chats",
            &bob.token,
            Some(json!({ "user": cat.id })),
        )
        .await;
    let path = format!("/chats/{}/messages", chat["chat"]["_id"].as_str().unwrap());
    let bearer = ("authorization", format!("Bearer {}", bob.token));
    let refused = flood(&ts, Method::POST, &path, bearer, json!({ "content": "hi" })).await;
    assert!(refused.iter().all(|(body, _)| body["message"].is_string()));

    // requests: {"error", "code", "payload"}.
    let (_, dan) = ts.signup("dan").await;
    let (eve, _) = ts.signup("eve").await;
    let path = format!("/chat/{}", ts.requests_chat(&dan, &eve).await);
    let refused = flood(
        &ts,
        Method::POST,
        &path,
        ("authorization", dan),
        json!({ "text": "hi" }),
    )
    .await;
    assert!(
        refused
            .iter()
            .all(|(body, _)| body["code"] == "RATE_LIMITED")
    );

    // hooks: DRF's throttling answer.
    let fan = ts.hooks_account("fan@example.org", "Fan").await;
    let bearer = ("authorization", format!("Bearer {}", fan.access));
    let refused = flood(
        &ts,
        Method::PUT,
        "/profile/update/",
        bearer,
        json!({ "bio": "hi" }),
    )
    .await;
    assert!(
        refused
            .iter()
            .all(|(body, _)| *body == json!({ "detail": "Request was throttled." }))
    );

    // Reading is never held back.
    let (_, reader) = ts.signup("reader").await;
    for _ in 0..AT_ONCE {
        let (status, _) = ts.get("/users?users=1", Some(&reader)).await;
        assert_eq!(status, StatusCode::OK);
    }
    ts.stop().await;
}

#[tokio::test]
async fn rest_and_websocket_writes_share_one_budget() {
    let ts = TestServer::start().await;
    let (saliu, rebecca) = ts.confirmed_pair().await;
    let mut socket = ws_open(&ts, &format!("/ws/chat/{}/", rebecca.num), &saliu.access).await;
    let bearer = ("authorization", format!("Bearer {}", saliu.access));
    let mut answers = writes(
        &ts,
        Method::PUT,
        "/profile/update/",
        bearer,
        json!({ "bio": "busy" }),
    );
    // REST has spent the user's budget once a write is refused...
    while let Some(answer) = answers.next().await {
        if answer.unwrap().status() == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    // ...and the socket's frames, sent right then, find it spent: but for what refills
    // meanwhile (30 a second), they are refused. On their own, within the connection's
    // burst (60), none would be. Frames the server answers without any work, so that they
    // are read as fast as they come whatever the load.
    const FRAMES: usize = 50;
    for _ in 0..FRAMES {
        socket.send(Message::Text("{}".into())).await.unwrap();
    }
    let mut refused = 0;
    for _ in 0..FRAMES {
        let answer = ws_next(&mut socket).await;
        if answer["error"] == "too many requests; slow down" {
            refused += 1;
        }
    }
    assert!(refused > 0, "none of {FRAMES} frames refused");
    while answers.next().await.is_some() {}
    drop(answers);
    ts.stop().await;
}

#[tokio::test]
async fn accounts_are_created_at_most_20_a_minute_per_address_with_or_without_password() {
    let ts = TestServer::start().await;
    let mut made = Vec::new();
    for i in 0..20 {
        made.push(ts.signup(&format!("user{i}")).await);
    }
    let (status, body) = ts
        .post("/new", None, json!({ "username": "one more" }))
        .await;
    assert_eq!((status, body), (StatusCode::TOO_MANY_REQUESTS, Value::Null));
    // A password sign-up from the same address counts against the same limit.
    let signup = json!({
        "email": "late@example.org", "password": "correct horse battery",
        "password2": "correct horse battery",
    });
    let (status, body) = ts
        .hooks(Method::POST, "/user/signup/", None, Some(signup))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // Logging in to an account that exists is no new account.
    let (id, _) = &made[0];
    let login = json!({ "accountID": id, "username": "user0" });
    let (status, _) = ts.post("/new", None, login).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    ts.stop().await;
}
