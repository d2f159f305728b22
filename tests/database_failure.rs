//! When the database goes away: every endpoint answers 503 at once, in its dialect's shape and
//! with `Retry-After`, the node reports not ready, and it recovers by itself when the database
//! returns. And what was acknowledged before a crash of the database is still there after it.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use common::TestServer;
use palaver::push::LogPushSink;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A database process of this test's own, so that it can kill it.
struct Database {
    port: u16,
    storage: String,
    durable: bool,
    child: Child,
}

impl Database {
    /// `storage` ":memory:" or a directory; `durable` syncs every commit (the local
    /// database's mode).
    async fn start(storage: &str, durable: bool) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port, storage, durable).await
    }

    async fn start_on(port: u16, storage: &str, durable: bool) -> Self {
        let server_bin = std::env::var("TEST_SECANTUSD")
            .expect("TEST_SECANTUSD is not set: run the tests with tests/run.sh");
        let mut command = Command::new(server_bin);
        command
            .args(["--host", "127.0.0.1", "--log-level", "ERROR"])
            .args(["--storage-path", storage, "--port", &port.to_string()])
            .stdin(Stdio::null());
        if durable {
            command.arg("--sync-on-commit");
        }
        let child = command.spawn().unwrap();
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            port,
            storage: storage.to_owned(),
            durable,
            child,
        }
    }

    fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    /// SIGKILL: no chance to flush anything.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn restart(&mut self) {
        let again = Self::start_on(self.port, &self.storage, self.durable).await;
        *self = again;
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that gives up after 5 s: an answer that waits on the database's return never
/// comes in time.
fn impatient() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn wait_until_ready(s: &TestServer, http: &reqwest::Client) {
    for _ in 0..100 {
        let answer = http.get(s.url("/readyz")).send().await;
        if answer.is_ok_and(|a| a.status() == StatusCode::OK) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("not ready again after the database came back");
}

#[tokio::test]
async fn an_unreachable_database_is_answered_503_at_once_and_recovered_from() {
    let mut database = Database::start(":memory:", false).await;
    let s = TestServer::start_with(&database.uri(), "failure", Arc::new(LogPushSink)).await;
    let (ada, token) = s.signup("ada").await;
    let (bob, _) = s.signup("bob").await;
    let channel = s.create_channel(&token, &bob).await;
    let (status, _) = s.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    database.kill();

    // The channels dialect: 503 and its `null` body, to every endpoint at once; a dozen
    // sign-ups do not queue behind each other.
    let http = impatient();
    let body = json!({ "to": bob, "type": 1, "username": "x", "avatarURL": "" });
    let mut calls = vec![
        ("POST", "/update-account".to_owned(), body.clone()),
        ("POST", "/create-channel".to_owned(), body),
        ("GET", format!("/users?users={ada}"), Value::Null),
        (
            "GET",
            format!("/messages?channel_id={channel}"),
            Value::Null,
        ),
        (
            "GET",
            format!("/dmchannels?channels={channel}"),
            Value::Null,
        ),
    ];
    for i in 0..12 {
        calls.push((
            "POST",
            "/new".into(),
            json!({ "username": format!("u{i}") }),
        ));
    }
    let answers = calls.iter().map(|(method, path, body)| {
        let request = match *method {
            "POST" => http.post(s.url(path)).json(body),
            _ => http.get(s.url(path)),
        };
        request.header("Authorisation", &token).send()
    });
    for (answer, (_, path, _)) in futures::future::join_all(answers)
        .await
        .into_iter()
        .zip(&calls)
    {
        let answer = answer.unwrap_or_else(|e| panic!("{path}: no answer in time: {e}"));
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(answer.headers()["retry-after"], "1", "{path}");
        assert_eq!(answer.json::<Value>().await.unwrap(), Value::Null, "{path}");
    }

    // Other dialects, in their shapes.
    let answer = http
        .get(s.url("/chat/totals"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    let answer = http
        .get(s.url("/chats"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = answer.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("unavailable"));

    // Not ready, but alive; what needs no database is still answered.
    let answer = http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let answer = http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let (status, _) = s.get("/users?users=1", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The database returns (empty: it kept nothing) and the node serves again by itself.
    database.restart().await;
    let mut recovered = false;
    for _ in 0..100 {
        let answer = http
            .post(s.url("/new"))
            .json(&json!({ "username": "back" }))
            .send()
            .await;
        if answer.is_ok_and(|a| a.status() == StatusCode::CREATED) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the node serves again once the database is back");
    wait_until_ready(&s, &http).await;
    s.stop().await;
}

#[tokio::test]
async fn acknowledged_messages_survive_the_database_being_killed() {
    let storage = tempfile::tempdir().unwrap();
    let mut database = Database::start(storage.path().to_str().unwrap(), true).await;
    let s = TestServer::start_with(&database.uri(), "durable", Arc::new(LogPushSink)).await;
    let (_, token) = s.signup("ada").await;
    let (bob, _) = s.signup("bob").await;
    let http = impatient();
    let path = format!("/chat/{}", s.requests_chat(&token, &bob).await);

    // Three times: four senders post until the database dies under them, each keeping what
    // was acknowledged, and the database comes back.
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let killed = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..4)
            .map(|sender| {
                let url = s.url(&path);
                let (http, token, killed) = (http.clone(), token.clone(), killed.clone());
                tokio::spawn(async move {
                    let mut acknowledged = Vec::new();
                    for i in 0.. {
                        let text = format!("round {round} sender {sender} message {i}");
                        let answer = http
                            .post(&url)
                            .header("authorization", &token)
                            .json(&json!({ "text": text }))
                            .send()
                            .await;
                        match answer {
                            Ok(a) if a.status() == StatusCode::CREATED => {
                                let message: Value = a.json().await.unwrap();
                                acknowledged.push(message["id"].as_str().unwrap().to_owned());
                            }
                            _ if killed.load(Ordering::Relaxed) => break,
                            Ok(a) => panic!("refused while the database was up: {}", a.status()),
                            Err(e) => panic!("failed while the database was up: {e}"),
                        }
                    }
                    acknowledged
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        killed.store(true, Ordering::Relaxed);
        database.kill();
        for sender in senders {
            acknowledged.extend(sender.await.unwrap());
        }
        database.restart().await;
        wait_until_ready(&s, &http).await;
    }
    assert!(
        acknowledged.len() >= 12,
        "messages were sent before each kill"
    );

    let store = palaver::store::Store::connect(&database.uri(), "durable")
        .await
        .unwrap();
    let ids: Vec<ObjectId> = acknowledged
        .iter()
        .map(|id| ObjectId::parse_str(id).unwrap())
        .collect();
    let kept = store
        .messages
        .count_documents(doc! { "_id": { "$in": &ids } })
        .await
        .unwrap();
    assert_eq!(
        kept as usize,
        ids.len(),
        "every acknowledged message is kept"
    );
    s.stop().await;
}
