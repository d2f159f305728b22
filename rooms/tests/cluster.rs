//! Two nodes on one real Redis: presence, sessions across nodes, and riding out a Redis
//! restart. Each test starts its own `redis-server` (from PATH, or `TEST_REDIS_SERVER`), so it
//! can stop and start it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rooms::cluster::RedisLink;
use rooms::{
    Attendance, Audience, Closing, Ended, Hub, Outgoing, PushIntent, PushSink, Room, Route, Session,
};
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
    let hub = Hub::clustered(Arc::new(NoPush), link).await;
    hub.set_transports(vec![("hooks", hub.sessions_transport())]);
    hub
}

fn said(text: &str) -> Outgoing {
    Outgoing::new(
        Room::chat("hooks", "c1"),
        "message",
        json!({ "message": text }),
    )
}

/// What the "hooks" dialect does for an event, here and on the nodes `audience` names.
async fn deliver(hub: &Hub, audience: &Audience, joins: &[(Room, Room)], outgoing: &[Outgoing]) {
    let transport = hub.sessions_transport();
    let route = Route {
        dialect: "hooks",
        transport: transport.as_ref(),
        joins,
        leaves: &[],
        outgoing,
    };
    hub.deliver_or_push(&[route], audience, &[], |_| None).await;
}

async fn say(hub: &Hub, text: &str) {
    deliver(hub, &Audience::chat("c1"), &[], &[said(text)]).await;
}

/// `user`'s connection on `hub`, a member of `chats`, in its account's room.
async fn attend(hub: &Hub, user: &str, chats: &[&str]) -> (Attendance, Session) {
    let chats: Vec<String> = chats.iter().map(|c| c.to_string()).collect();
    let attendance = hub.attend(user, async { chats }).await;
    let session = hub.sessions().open([Room::account(user)]);
    (attendance, session)
}

async fn next(session: &mut Session) -> Result<String, Ended> {
    tokio::time::timeout(Duration::from_secs(5), session.next_frame())
        .await
        .expect("a frame within 5 s")
        .map(|frame| frame.to_string())
}

async fn nothing_more(session: &mut Session) -> bool {
    tokio::time::timeout(Duration::from_millis(300), session.next_frame())
        .await
        .is_err()
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
    let (_ada, mut at_one) = attend(&one, "ada", &["c1"]).await;
    at_one.join(&Room::chat("hooks", "c1"));
    let (_bob, mut at_two) = attend(&two, "bob", &[]).await;

    // Bob joins the chat on node one: node two listens on it before this returns, and his
    // session there is in its room.
    let audience = Audience {
        users: vec!["bob".into()],
        joined: vec![("bob".into(), "c1".into())],
        ..Audience::default()
    };
    let joins = [(Room::account("bob"), Room::chat("hooks", "c1"))];
    deliver(&one, &audience, &joins, &[]).await;
    say(&one, "hi").await;
    assert_eq!(next(&mut at_one).await.unwrap(), r#"{"message":"hi"}"#);
    assert_eq!(next(&mut at_two).await.unwrap(), r#"{"message":"hi"}"#);

    // A sign-out on node one closes his session on node two.
    one.close_user(&[one.sessions_transport()], "bob", Closing::SignedOut)
        .await;
    assert_eq!(
        next(&mut at_two).await.unwrap_err(),
        Ended::Closed(Closing::SignedOut)
    );
}

#[tokio::test]
async fn a_node_hears_only_the_chats_and_users_it_holds() {
    let redis = Redis::start();
    let (one, two, three) = (
        node(&redis).await,
        node(&redis).await,
        node(&redis).await,
    );
    let (_ada, mut at_one) = attend(&one, "ada", &["c1"]).await;
    let (bob, mut at_two) = attend(&two, "bob", &["c1"]).await;
    at_one.join(&Room::chat("hooks", "c1"));
    at_two.join(&Room::chat("hooks", "c1"));
    let _eve = attend(&three, "eve", &["c2"]).await;
    let heard = (two.messages_heard(), three.messages_heard());

    for n in 0..10 {
        say(&one, &format!("hi {n}")).await;
    }
    for n in 0..10 {
        let hi = format!("hi {n}");
        assert!(next(&mut at_one).await.unwrap().contains(&hi));
        assert!(next(&mut at_two).await.unwrap().contains(&hi));
    }
    assert_eq!(two.messages_heard() - heard.0, 10, "each message once");
    assert_eq!(three.messages_heard(), heard.1, "nothing for a chat it has no member of");

    // Bob's last connection goes: node two stops listening on the chat after a while.
    let listening = two.channels_listened();
    drop((bob, at_two));
    let stopped = eventually(Duration::from_secs(5), async || {
        two.channels_listened() < listening
    })
    .await;
    assert!(stopped, "the chat's and bob's channels are let go");
    let before = two.messages_heard();
    say(&one, "bob is gone").await;
    assert!(next(&mut at_one).await.unwrap().contains("gone"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(two.messages_heard(), before);
}

#[tokio::test]
async fn a_member_who_leaves_stops_hearing_and_one_who_reconnects_quickly_keeps_it() {
    let redis = Redis::start();
    let (one, two) = (node(&redis).await, node(&redis).await);
    let (ada, at_two) = attend(&two, "ada", &["c1"]).await;
    let listening = two.channels_listened();
    // A reconnect within the linger: nothing is unsubscribed or subscribed again.
    drop((ada, at_two));
    let (_ada, mut at_two) = attend(&two, "ada", &["c1"]).await;
    at_two.join(&Room::chat("hooks", "c1"));
    tokio::time::sleep(rooms::routing::LINGER * 2).await;
    assert_eq!(two.channels_listened(), listening);
    say(&one, "still here").await;
    assert!(next(&mut at_two).await.unwrap().contains("still here"));

    let audience = Audience {
        chats: vec!["c1".into()],
        left: vec![("ada".into(), "c1".into())],
        ..Audience::default()
    };
    deliver(&one, &audience, &[], &[]).await;
    let let_go = eventually(Duration::from_secs(5), async || {
        two.channels_listened() < listening
    })
    .await;
    assert!(let_go, "node two stops listening on a chat none of its users is in");
    let before = two.messages_heard();
    say(&one, "gone").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(two.messages_heard(), before);
    assert!(nothing_more(&mut at_two).await);
}

#[tokio::test]
async fn nodes_ride_out_a_redis_restart() {
    let mut redis = Redis::start();
    let (one, two) = (node(&redis).await, node(&redis).await);
    let (_bob, mut at_one) = attend(&one, "bob", &["c1"]).await;
    let (_ada, mut at_two) = attend(&two, "ada", &["c1"]).await;
    at_one.join(&Room::chat("hooks", "c1"));
    at_two.join(&Room::chat("hooks", "c1"));
    let users = vec!["ada".to_string()];

    redis.stop();
    // Publishing does not wait on the missing Redis, and local sessions still hear.
    let started = Instant::now();
    for _ in 0..3 {
        say(&one, "during").await;
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
        say(&one, "after").await;
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
