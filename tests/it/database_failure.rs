//! When the database goes away: every endpoint answers 503 at once, in its dialect's shape and
//! with `Retry-After`, the node reports not ready, and it recovers by itself when the database
//! returns. And what was acknowledged before a crash of the database is still there after it.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::{self, TestServer};
use bson::doc;
use bson::oid::ObjectId;
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
        let port = common::free_port();
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

    // Three times: four senders post as fast as the user may until the database dies under
    // them, each keeping what was acknowledged, and the database comes back.
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
                            // Faster than one user may write: back off, as a client does.
                            Ok(a) if a.status() == StatusCode::TOO_MANY_REQUESTS => {
                                tokio::time::sleep(Duration::from_millis(100)).await;
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

/// What a relay to the database loses of the next insert that passes through it.
#[derive(Clone, Copy, PartialEq)]
enum Lose {
    Nothing,
    /// The insert's command: the database never sees it.
    Command,
    /// The database's answer to it: the insert is applied, and its writer cannot know.
    Answer,
}

/// A TCP relay to the database that drops the connection carrying the next insert command,
/// losing that command or the answer to it, once.
struct Relay {
    port: u16,
    lose: Arc<std::sync::Mutex<Lose>>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let lose = Arc::new(std::sync::Mutex::new(Lose::Nothing));
        let armed = lose.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(upstream.as_str())
                    .await
                    .unwrap();
                tokio::spawn(relay(client, server, armed.clone()));
            }
        });
        Self { port, lose }
    }

    fn arm(&self, lose: Lose) {
        *self.lose.lock().unwrap() = lose;
    }

    fn disarmed(&self) -> bool {
        *self.lose.lock().unwrap() == Lose::Nothing
    }
}

/// One connection through the relay. An insert command starts with its name, a BSON string
/// element `insert`; a connection that loses something closes both ways.
async fn relay(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    lose: Arc<std::sync::Mutex<Lose>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let doomed = Arc::new(AtomicBool::new(false));
    let answers_lost = doomed.clone();
    let answers = tokio::spawn(async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = from_server.read(&mut buf).await {
            if answers_lost.load(Ordering::SeqCst) || to_client.write_all(&buf[..n]).await.is_err()
            {
                return;
            }
        }
    });
    let mut buf = vec![0; 64 * 1024];
    while let Ok(n @ 1..) = from_client.read(&mut buf).await {
        let chunk = &buf[..n];
        let is_insert = chunk.windows(8).any(|w| w == b"\x02insert\x00");
        let lost = {
            let mut lose = lose.lock().unwrap();
            let lost = if is_insert { *lose } else { Lose::Nothing };
            if lost != Lose::Nothing {
                *lose = Lose::Nothing;
            }
            lost
        };
        match lost {
            Lose::Command => break,
            Lose::Answer => doomed.store(true, Ordering::SeqCst),
            Lose::Nothing => {}
        }
        if to_server.write_all(chunk).await.is_err() {
            break;
        }
    }
    answers.abort();
}

/// Message batches' client leaves retries to them: an insert whose command or answer is lost
/// on the way is stored once, and its writer is told it is stored.
#[tokio::test]
async fn a_lost_insert_is_stored_once() {
    let mut options = mongodb::options::ClientOptions::parse(common::mongodb_uri())
        .await
        .unwrap();
    let relay = Relay::start(options.hosts[0].to_string()).await;
    options.hosts = vec![mongodb::options::ServerAddress::Tcp {
        host: "127.0.0.1".into(),
        port: Some(relay.port),
    }];
    options.retry_writes = Some(false);
    let client = mongodb::Client::with_options(options).unwrap();
    let collection = client
        .database(&common::new_database_name())
        .collection::<bson::Document>("messages");
    let batches = palaver::store::InsertBatches::inserts(collection.clone());

    for lose in [Lose::Command, Lose::Answer] {
        relay.arm(lose);
        let id = ObjectId::new();
        let outcome = batches.insert(doc! { "_id": id, "text": "hello" }).await;
        assert!(relay.disarmed(), "the insert went through the relay");
        assert_eq!(outcome.unwrap(), Some(()), "told it is stored");
        let copies = collection
            .count_documents(doc! { "_id": id })
            .await
            .unwrap();
        assert_eq!(copies, 1, "stored once");
    }
}
