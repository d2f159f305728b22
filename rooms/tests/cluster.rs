//! Two nodes on one real Redis: presence, sessions across nodes, and riding out a Redis
//! restart. Each test starts its own `redis-server` (from PATH, or `TEST_REDIS_SERVER`), so it
//! can stop and start it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rooms::cluster::{Names, RedisLink};
use rooms::{
    Attendance, Audience, Closing, DialectTransports, Ended, Hub, Outgoing, Present, PushIntent,
    PushSink, Room, Route, Session, Sessions, UserId,
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
        let port = free_port();
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port for a cluster node: its cluster bus listens 10,000 above it, so that one must be a
/// port too, and free.
fn cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port <= 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

fn redis_cli() -> String {
    let server = std::env::var("TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    server.replace("redis-server", "redis-cli")
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new(redis_cli())
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A Redis Cluster of three masters, each with a replica, on loopback, made by
/// `redis-cli --cluster create`; a master's failure is noticed within a second.
struct RedisCluster {
    nodes: Vec<(u16, Child)>,
    _dir: tempfile_dir::Dir,
}

mod tempfile_dir {
    /// A directory of its own, removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl RedisCluster {
    fn start() -> Self {
        let binary = std::env::var("TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let dir = tempfile_dir::Dir::new(&format!("rooms-cluster-{}", free_port()));
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = cluster_port();
            let child = Command::new(&binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                .args(["--repl-diskless-sync-delay", "0"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .arg("--dir")
                .arg(&dir.0)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server runs");
            nodes.push((port, child));
        }
        for (port, _) in &nodes {
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not listen");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new(redis_cli())
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create");
        let cluster = Self { nodes, _dir: dir };
        cluster.wait_until_ok();
        cluster
    }

    /// Until every node says the cluster is ok and every replica is in step with its master
    /// (a replica that never was may not take over).
    /// Bounded at 60 s: on two busy cores, with other tests' clusters starting beside it, a
    /// CI run once saw 30 s pass first.
    fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = self.nodes.iter().all(|(port, _)| {
                let replication = cli(*port, &["info", "replication"]);
                cli(*port, &["cluster", "info"]).contains("cluster_state:ok")
                    && (replication.contains("master_link_status:up")
                        || replication.contains("connected_slaves:1"))
            });
            if ok {
                return;
            }
            if Instant::now() >= deadline {
                for (port, _) in &self.nodes {
                    let state = cli(*port, &["cluster", "info"]);
                    let state = state.lines().find(|l| l.starts_with("cluster_state"));
                    let replication = cli(*port, &["info", "replication"]);
                    let role = replication
                        .lines()
                        .filter(|l| l.starts_with("role") || l.starts_with("master_link_status"));
                    eprintln!("{port}: {state:?} {:?}", role.collect::<Vec<_>>());
                }
                panic!("the cluster did not come up");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        let seeds: Vec<String> = self.nodes[..3]
            .iter()
            .map(|(port, _)| format!("redis://127.0.0.1:{port}"))
            .collect();
        seeds.join(",")
    }

    /// Kill with SIGKILL the master that owns `key`'s slot; its replica takes over.
    fn kill_master_of(&mut self, key: &str) {
        let some = self.nodes[0].0;
        let slot: u16 = cli(some, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .unwrap();
        let table = cli(some, &["cluster", "nodes"]);
        let owner = table
            .lines()
            .filter(|line| line.contains("master"))
            .find(|line| {
                line.split_whitespace().skip(8).any(|range| {
                    let (from, to) = range.split_once('-').unwrap_or((range, range));
                    let (from, to): (u16, u16) = (from.parse().unwrap(), to.parse().unwrap());
                    (from..=to).contains(&slot)
                })
            })
            .expect("a master owns the slot");
        let address = owner.split_whitespace().nth(1).unwrap();
        let port: u16 = address.split(['@', ':']).nth(1).unwrap().parse().unwrap();
        let at = self.nodes.iter().position(|(p, _)| *p == port).unwrap();
        let (_, mut child) = self.nodes.remove(at);
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A test on one Redis, and the same on a Redis Cluster.
macro_rules! on_redis_and_cluster {
    ($single:ident, $cluster:ident, $body:ident) => {
        #[tokio::test]
        async fn $single() {
            let redis = Redis::start();
            $body(&redis.url()).await;
        }

        #[tokio::test]
        async fn $cluster() {
            let cluster = RedisCluster::start();
            $body(&cluster.url()).await;
        }
    };
}

async fn node(redis: &Redis) -> Hub {
    node_at(&redis.url()).await
}

/// The test nodes' keys and metrics.
const NAMES: Names = Names {
    keys: "rooms-test:",
    metrics: "rooms_test_",
};

async fn node_at(url: &str) -> Hub {
    let link = RedisLink::connect(url, NAMES).await.unwrap();
    let sessions = Arc::new(Sessions::default());
    Hub::clustered(Arc::new(NoPush), link, sessions.clone(), hooks(sessions)).await
}

/// The test nodes' one dialect, heard through their sessions.
fn hooks(sessions: Arc<Sessions>) -> DialectTransports {
    vec![("hooks", sessions)]
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
    let transport = hub.sessions();
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

/// A user by name: its bytes, padded.
fn id(name: &str) -> UserId {
    let mut bytes = [0; 12];
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    UserId::from_bytes(bytes)
}

/// `user`'s connection on `hub`, a member of `chats`, in its account's room.
async fn attend(hub: &Hub, user: &str, chats: &[&str]) -> (Attendance, Session) {
    let chats: Vec<String> = chats.iter().map(|c| c.to_string()).collect();
    let attendance = hub.attend(id(user), async { chats }).await;
    let session = hub.sessions().open([Room::account(id(user))]);
    (attendance, session)
}

async fn next(session: &mut Session) -> Result<String, Ended> {
    tokio::time::timeout(Duration::from_secs(5), session.next_frame())
        .await
        .expect("a frame within 5 s")
        .map(|frame| frame.text.to_string())
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
    let ada = vec![id("ada"), id("bob")];

    let guard = two.connect(Present::User(id("ada"))).await;
    assert_eq!(one.online_among(&ada).await, [id("ada")].into());
    let again = one.connect(Present::User(id("ada"))).await;
    drop(guard);
    // Still connected to node one.
    assert!(two.online_among(&ada).await.contains(&id("ada")));
    drop(again);
    assert!(
        eventually(Duration::from_secs(2), async || two
            .online_among(&ada)
            .await
            .is_empty())
        .await
    );
}

on_redis_and_cluster!(
    sessions_hear_events_raised_on_the_other_node,
    sessions_hear_events_raised_on_the_other_node_through_a_cluster,
    hear_the_other_node
);

async fn hear_the_other_node(url: &str) {
    let (one, two) = (node_at(url).await, node_at(url).await);
    let (_ada, mut at_one) = attend(&one, "ada", &["c1"]).await;
    at_one.join(&Room::chat("hooks", "c1"));
    let (_bob, mut at_two) = attend(&two, "bob", &[]).await;

    // Bob joins the chat on node one: node two listens on it before this returns, and his
    // session there is in its room.
    let audience = Audience {
        users: vec![id("bob")],
        joined: vec![(id("bob"), "c1".into())],
        ..Audience::default()
    };
    let joins = [(Room::account(id("bob")), Room::chat("hooks", "c1"))];
    deliver(&one, &audience, &joins, &[]).await;
    say(&one, "hi").await;
    assert_eq!(next(&mut at_one).await.unwrap(), r#"{"message":"hi"}"#);
    assert_eq!(next(&mut at_two).await.unwrap(), r#"{"message":"hi"}"#);

    // A sign-out on node one closes his session on node two.
    one.close_user(id("bob"), Closing::SignedOut).await;
    assert_eq!(
        next(&mut at_two).await.unwrap_err(),
        Ended::Closed(Closing::SignedOut)
    );
}

on_redis_and_cluster!(
    a_node_hears_only_the_chats_and_users_it_holds,
    a_node_hears_only_the_chats_and_users_it_holds_on_a_cluster,
    hear_only_ones_own
);

async fn hear_only_ones_own(url: &str) {
    let (one, two, three) = (node_at(url).await, node_at(url).await, node_at(url).await);
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
    assert_eq!(
        three.messages_heard(),
        heard.1,
        "nothing for a chat it has no member of"
    );

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

on_redis_and_cluster!(
    a_member_who_leaves_stops_hearing_and_one_who_reconnects_quickly_keeps_it,
    subscriptions_follow_membership_on_a_cluster,
    follow_membership
);

async fn follow_membership(url: &str) {
    let (one, two) = (node_at(url).await, node_at(url).await);
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
        left: vec![(id("ada"), "c1".into())],
        ..Audience::default()
    };
    deliver(&one, &audience, &[], &[]).await;
    let let_go = eventually(Duration::from_secs(5), async || {
        two.channels_listened() < listening
    })
    .await;
    assert!(
        let_go,
        "node two stops listening on a chat none of its users is in"
    );
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
    let users = vec![id("ada")];

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
    assert!(two.online_among(&users).await.contains(&id("ada")));
    assert!(one.online_among(&users).await.is_empty());

    redis.restart();
    let heard = resumes(&one, &mut at_two, Duration::from_secs(15)).await;
    assert!(heard, "cross-node delivery resumed after Redis came back");
    // The restarted Redis lost its data; presence is renewed from each node.
    assert!(online_again(&one, "ada").await);
}

/// Whether what `one` says reaches `at_two` again within `within`, said until it does.
async fn resumes(one: &Hub, at_two: &mut Session, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        say(one, "after").await;
        while let Ok(Ok(frame)) =
            tokio::time::timeout(Duration::from_millis(300), at_two.next_frame()).await
        {
            if frame.text.contains("after") {
                return true;
            }
        }
    }
    false
}

/// Whether `hub` sees `user` online again within 10 s (their node wrote it again).
async fn online_again(hub: &Hub, user: &str) -> bool {
    let users = vec![id(user)];
    eventually(Duration::from_secs(10), async || {
        hub.online_among(&users).await.contains(&id(user))
    })
    .await
}

#[tokio::test]
async fn nodes_resume_by_themselves_when_a_cluster_master_fails() {
    let mut cluster = RedisCluster::start();
    let url = cluster.url();
    let (one, two) = (node_at(&url).await, node_at(&url).await);
    let (_bob, at_one) = attend(&one, "bob", &["c1"]).await;
    let (_ada, mut at_two) = attend(&two, "ada", &["c1"]).await;
    at_one.join(&Room::chat("hooks", "c1"));
    at_two.join(&Room::chat("hooks", "c1"));
    say(&one, "before").await;
    assert!(next(&mut at_two).await.unwrap().contains("before"));

    // The master of the chat's channel goes; its replica takes over within seconds.
    cluster.kill_master_of("rooms-test:to:c:c1");
    let started = Instant::now();
    let heard = resumes(&one, &mut at_two, Duration::from_secs(30)).await;
    if !heard {
        let port = cluster.nodes[0].0;
        eprintln!("NODES\n{}", cli(port, &["cluster", "nodes"]));
        for (port, _) in &cluster.nodes {
            eprintln!(
                "{port}: {}",
                cli(*port, &["pubsub", "shardnumsub", "rooms-test:to:c:c1"]).replace('\n', " ")
            );
        }
    }
    assert!(
        heard,
        "delivery across nodes resumed by itself after the failover"
    );
    println!(
        "delivery resumed {:?} after the master was killed",
        started.elapsed()
    );
    // Presence, on every shard, is written again.
    assert!(online_again(&one, "ada").await);
}

#[tokio::test]
async fn a_node_that_falls_behind_closes_the_connections_it_could_not_tell() {
    let redis = Redis::start();
    let one = node(&redis).await;
    // Node two holds at most four messages it has not handed over yet.
    let link = RedisLink::connect(&redis.url(), NAMES).await.unwrap();
    let sessions = Arc::new(Sessions::default());
    let two =
        Hub::clustered_with_backlog(Arc::new(NoPush), link, 4, sessions.clone(), hooks(sessions))
            .await;
    let (_ada, mut at_two) = attend(&two, "ada", &["c1"]).await;
    at_two.join(&Room::chat("hooks", "c1"));
    let (_eve, mut elsewhere) = attend(&two, "eve", &["c2"]).await;

    // A burst arrives in one read: more than the backlog holds before node two's single
    // thread gets to hand any over.
    let burst = 200;
    let told: Vec<_> = (0..burst).map(|n| said(&format!("burst {n}"))).collect();
    let audience = Audience::chat("c1");
    let transport = one.sessions();
    let steps: Vec<Route> = told
        .chunks(1)
        .map(|out| Route {
            dialect: "hooks",
            transport: transport.as_ref(),
            joins: &[],
            leaves: &[],
            outgoing: out,
        })
        .collect();
    let all = steps
        .iter()
        .map(|step| one.deliver_or_push(std::slice::from_ref(step), &audience, &[], |_| None));
    futures::future::join_all(all).await;

    // Ada's session is closed, for her client to reconnect and catch up, rather than left
    // open with a gap.
    let mut heard = 0;
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(5), at_two.next_frame()).await {
            Ok(Ok(_)) => heard += 1,
            Ok(Err(ended)) => break Some(ended),
            Err(_) => break None,
        }
    };
    println!("heard {heard} of {burst}, then {ended:?}");
    assert_eq!(ended, Some(Ended::Closed(Closing::FellBehind)));
    // Eve, in another chat, is left alone.
    assert!(nothing_more(&mut elsewhere).await);
    assert_eq!(two.sessions().len(), 1);
}
