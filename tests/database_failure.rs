//! When the database goes away, every endpoint answers the spec's 500 with a `null` body, and
//! the server keeps running.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use palaver::push::LogPushSink;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn every_endpoint_answers_500_when_the_database_is_gone() {
    let server_bin = std::env::var("TEST_SECANTUSD")
        .expect("TEST_SECANTUSD is not set: run the tests with tests/run.sh");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut database = Command::new(server_bin)
        .args([
            "--host",
            "127.0.0.1",
            "--storage-path",
            ":memory:",
            "--log-level",
            "ERROR",
        ])
        .args(["--port", &port.to_string()])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let s = TestServer::start_with(&uri, "failure", Arc::new(LogPushSink)).await;
    let (ada, token) = s.signup("ada").await;
    let (bob, _) = s.signup("bob").await;
    let channel = s.create_channel(&token, &bob).await;
    database.kill().unwrap();
    database.wait().unwrap();

    let body = json!({ "to": bob, "type": 1, "username": "x", "avatarURL": "" });
    let (users_path, messages_path, dms_path) = (
        format!("/users?users={ada}"),
        format!("/messages?channel_id={channel}"),
        format!("/dmchannels?channels={channel}"),
    );
    let (new, update, create, users, messages, dms) = tokio::join!(
        s.post("/new", None, json!({ "username": "carol" })),
        s.post("/update-account", Some(&token), body.clone()),
        s.post("/create-channel", Some(&token), body.clone()),
        s.get(&users_path, Some(&token)),
        s.get(&messages_path, Some(&token)),
        s.get(&dms_path, Some(&token)),
    );
    for (name, (status, body)) in [
        ("new", new),
        ("update-account", update),
        ("create-channel", create),
        ("users", users),
        ("messages", messages),
        ("dmchannels", dms),
    ] {
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{name}");
        assert_eq!(body, Value::Null, "{name}");
    }
    // Still serving: requests that need no database are answered.
    let (status, _) = s.get("/users?users=1", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    s.stop().await;
}
