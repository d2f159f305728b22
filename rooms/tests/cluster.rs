//! Two nodes on one real Redis: presence, sessions across nodes, and riding out a Redis
//! restart. Each test starts its own `redis-server` (from PATH, or `TEST_REDIS_SERVER`), so it
//! can stop and start it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rooms::cluster::RedisLink;
use rooms::{Closing, Ended, Hub, Outgoing, PushIntent, PushSink, Room, Session};
use serde_json::json;

struct NoPush;
impl PushSink for NoPush {
    fn push(&self, _: PushIntent) {}
}

/// A `redis-server` of this test's own, on a port it keeps across restarts.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let binary = std::env::var("TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {binary} ({e}): run the tests with tests/run.sh, which installs it"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn node(redis: &Redis) -> Hub {
    let link = RedisLink::connect(&redis.url()).await.unwrap();
    Hub::clustered(Arc::new(NoPush), link).await.unwrap()
}

fn said(text: &str) -> Outgoing {
    Outgoing::new(
        Room::chat("hooks", "c1"),
        "message",
        json!({ "message": text }),
    )
}

async fn next(session: &mut Session) -> Result<String, Ended> {
    tokio::time::timeout(Duration::from_secs(5), session.next_frame())
        .await
        .expect("a frame within 5 s")
        .map(|frame| frame.to_string())
}

/// Until `check` holds, for at most `within`.
async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_user_connected_to_one_node_is_online_on_every_node() {
    let redis = Redis::start();
    let (one, two) = (node(&redis).await, node(&redis).await);
    let ada = vec!["ada".to_string(), "bob".to_string()];

    let guard = two.connect("ada").await;
    assert_eq!(one.online_among(&ada).await, ["ada".to_string()].into());
    let again = one.connect("ada").await;
    drop(guard);
    // Still connected to node one.
    assert!(two.online_among(&ada).await.contains("ada"));
    drop(again);
    assert!(
        eventually(Duration::from_secs(2), async || two
            .online_among(&ada)
            .await
            .is_empty())
        .await
    );
}

#[tokio::test]
async fn sessions_hear_events_raised_on_the_other_node() {
    let redis = Redis::start();
    let (one, two) = (node(&redis).await, node(&redis).await);
    let mut at_two = two.sessions().open([Room::account("bob")]);
    let mut at_one = one.sessions().open([Room::chat("hooks", "c1")]);
    let transport = one.sessions_transport();

    // A join made on node one reaches the session on node two.
    transport
        .join(&Room::account("bob"), &Room::chat("hooks", "c1"))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    transport.emit(&said("hi")).await;
    assert_eq!(next(&mut at_one).await.unwrap(), r#"{"message":"hi"}"#);
    assert_eq!(next(&mut at_two).await.unwrap(), r#"{"message":"hi"}"#);

    // So does a leave, and then a sign-out.
    transport
        .leave(&Room::account("bob"), &Room::chat("hooks", "c1"))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    transport.emit(&said("not for bob")).await;
    assert!(next(&mut at_one).await.unwrap().contains("not for bob"));
    transport
        .disconnect(&Room::account("bob"), Closing::SignedOut)
        .await;
    assert_eq!(
        next(&mut at_two).await.unwrap_err(),
        Ended::Closed(Closing::SignedOut)
    );
}

#[tokio::test]
async fn nodes_ride_out_a_redis_restart() {
    let mut redis = Redis::start();
    let (one, two) = (node(&redis).await, node(&redis).await);
    let mut at_one = one.sessions().open([Room::chat("hooks", "c1")]);
    let mut at_two = two.sessions().open([Room::chat("hooks", "c1")]);
    let users = vec!["ada".to_string()];
    let _ada = two.connect("ada").await;

    redis.stop();
    // Publishing does not wait on the missing Redis, and local sessions still hear.
    let started = Instant::now();
    for _ in 0..3 {
        one.sessions_transport().emit(&said("during")).await;
        assert!(next(&mut at_one).await.unwrap().contains("during"));
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        eventually(Duration::from_secs(5), async || !one
            .cluster()
            .unwrap()
            .is_up())
        .await
    );
    // Presence falls back to this node's own connections.
    assert!(two.online_among(&users).await.contains("ada"));
    assert!(one.online_among(&users).await.is_empty());

    redis.restart();
    let mut heard = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && !heard {
        one.sessions_transport().emit(&said("after")).await;
        let _ = next(&mut at_one).await;
        heard = tokio::time::timeout(Duration::from_millis(500), at_two.next_frame())
            .await
            .is_ok_and(|frame| frame.is_ok_and(|f| f.contains("after")));
    }
    assert!(heard, "cross-node delivery resumed after Redis came back");
    // The restarted Redis lost its data; presence is renewed from each node.
    assert!(
        eventually(Duration::from_secs(10), async || one
            .online_among(&users)
            .await
            .contains("ada"))
        .await
    );
}
