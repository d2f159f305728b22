//! Many nodes sharing one Redis: a link with publish/subscribe that survives Redis restarts
//! (here), and presence that counts every node's connections (`presence`). What travels
//! between nodes, and to which, is [`crate::routing`]'s business.
//!
//! When Redis is unreachable, each node goes on serving its own connections: publishing is
//! skipped (the outage is logged once), presence falls back to this node's connections, and
//! everything resumes by itself once Redis answers again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use rand::RngCore;
use redis::{PushInfo, PushKind, RedisResult, Value};
use tokio::sync::{mpsc, watch};

use crate::connection::Connection;

mod presence;
pub use presence::{PRESENCE_TTL, RedisPresence};

/// A message received on a channel: (channel, payload).
pub type Message = (String, Vec<u8>);

/// Takes every message on the channels under one prefix, on the link's reader: it must not
/// block.
pub type PrefixHandler = Box<dyn Fn(String, Vec<u8>) + Send + Sync>;

/// Who takes what Redis pushes: one receiver per channel, or one handler for every channel
/// under a prefix (the routed channels, too many to give each a queue).
#[derive(Default)]
struct Handlers {
    channels: HashMap<String, mpsc::Sender<Message>>,
    prefixes: Vec<(String, PrefixHandler)>,
}

/// How often the link checks that Redis answers (and notices it came back).
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// The longest any Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// One node's connection to the shared Redis: commands and subscriptions over one RESP3
/// connection, re-established (with its subscriptions) after Redis restarts.
pub struct RedisLink {
    node: String,
    names: Names,
    errors: metrics::Counter,
    connection: Connection,
    handlers: Arc<RwLock<Handlers>>,
    up: AtomicBool,
    returns: watch::Sender<u64>,
    drops: Arc<watch::Sender<u64>>,
}

/// What the keys and channels a link writes start with, and what its metrics are called: the
/// caller's to choose, so that the crate names nothing of its own and applications sharing a
/// Redis or a metrics registry keep apart.
#[derive(Debug, Clone, Copy)]
pub struct Names {
    /// Before every key and channel, e.g. `"app:"`.
    pub keys: &'static str,
    /// Before every metric's name, e.g. `"app_"`.
    pub metrics: &'static str,
}

impl Names {
    /// The metric called `name`, under the caller's prefix.
    pub fn metric(&self, name: &str) -> String {
        format!("{}{name}", self.metrics)
    }
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("node", &self.node)
            .field("up", &self.is_up())
            .finish()
    }
}

/// Push messages go to whoever subscribed to their channel; one that cannot take it is
/// counted in `drops`.
fn dispatch(handlers: &RwLock<Handlers>, drops: &watch::Sender<u64>, push: PushInfo) {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) || push.data.len() < 2 {
        return;
    }
    let mut data = push.data.into_iter();
    let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(channel), Ok(payload)) = (
        redis::from_redis_value::<String>(channel),
        redis::from_redis_value::<Vec<u8>>(payload),
    ) else {
        tracing::warn!("unreadable message from Redis");
        return;
    };
    let handlers = handlers.read().unwrap();
    if let Some((_, handler)) = handlers
        .prefixes
        .iter()
        .find(|(prefix, _)| channel.starts_with(prefix.as_str()))
    {
        handler(channel, payload);
        return;
    }
    if let Some(handler) = handlers.channels.get(&channel)
        && handler.try_send((channel.clone(), payload)).is_err()
    {
        tracing::warn!(%channel, "a Redis subscriber fell behind; message dropped");
        drops.send_modify(|n| *n += 1);
    }
}

fn new_node_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl RedisLink {
    /// Connect to Redis at `url` (several comma-separated seed URLs name a Redis Cluster).
    /// Redis must answer now; later outages are ridden out.
    /// Its keys, channels and metrics are named after `names`.
    pub async fn connect(url: &str, names: Names) -> RedisResult<Arc<Self>> {
        let handlers = Arc::new(RwLock::new(Handlers::default()));
        let dispatching = handlers.clone();
        let drops = Arc::new(watch::channel(0).0);
        let dropping = drops.clone();
        let pushed = move |push: PushInfo| dispatch(&dispatching, &dropping, push);
        let connection = Connection::open(url, COMMAND_TIMEOUT, pushed).await?;
        let (returns, _) = watch::channel(0);
        let link = Arc::new(Self {
            node: new_node_id(),
            errors: metrics::counter!(names.metric("redis_errors_total")),
            names,
            connection,
            handlers,
            up: AtomicBool::new(true),
            returns,
            drops,
        });
        tokio::spawn(watch_health(Arc::downgrade(&link)));
        let kind = if link.connection.is_cluster() {
            "a Redis Cluster"
        } else {
            "Redis"
        };
        tracing::info!(node = %link.node, "connected to {kind}: events, presence and caches are shared with the other nodes");
        Ok(link)
    }

    /// What the caller named this link's keys, channels and metrics after.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The key or channel called `name`, under the caller's prefix.
    pub fn key(&self, name: impl std::fmt::Display) -> String {
        format!("{}{name}", self.names.keys)
    }

    /// This node's id among the nodes.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether Redis answered the last time it was asked.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Changes each time the link is re-established after losing Redis: whatever was
    /// published or written meanwhile was lost, so caches must be dropped and presence
    /// written again.
    pub fn returns(&self) -> watch::Receiver<u64> {
        self.returns.subscribe()
    }

    /// Changes each time a message published to this node was dropped because its subscriber
    /// fell behind: that subscriber missed it.
    pub fn drops(&self) -> watch::Receiver<u64> {
        self.drops.subscribe()
    }

    pub(crate) fn connection(&self) -> Connection {
        self.connection.clone()
    }

    /// Publish to every node subscribed to `channel`. While Redis is unreachable this does
    /// nothing: the other nodes cannot be told, and this node must not wait.
    pub async fn publish(&self, channel: &str, payload: &[u8]) {
        self.publish_with("PUBLISH", channel, payload).await;
    }

    /// Publish on a routed channel (sharded on a cluster), and say how many nodes heard it.
    pub(crate) async fn publish_routed(&self, channel: &str, payload: &[u8]) -> Option<usize> {
        let command = self.connection.routed_publish();
        self.publish_with(command, channel, payload).await
    }

    /// `None` when it could not be sent (nothing is, while Redis is unreachable).
    async fn publish_with(&self, command: &str, channel: &str, payload: &[u8]) -> Option<usize> {
        if !self.is_up() {
            return None;
        }
        let mut connection = self.connection();
        let mut publish = redis::cmd(command);
        publish.arg(channel).arg(payload);
        self.answered(publish.query_async::<usize>(&mut connection))
            .await
    }

    /// The answer to a command, or `None` (and Redis counted as lost) when it fails or takes
    /// longer than `COMMAND_TIMEOUT`.
    pub(crate) async fn answered<T>(
        &self,
        command: impl Future<Output = RedisResult<T>>,
    ) -> Option<T> {
        match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(e)) => {
                self.lost(&e.to_string());
                None
            }
            Err(_) => {
                self.lost("timed out");
                None
            }
        }
    }

    /// Add one to the counter at `key` (kept `ttl_seconds`) and read it; `None` while Redis
    /// is unreachable.
    pub async fn count(&self, key: &str, ttl_seconds: u64) -> Option<i64> {
        let mut connection = self.connection();
        let mut pipe = redis::pipe();
        pipe.incr(key, 1).expire(key, ttl_seconds as i64).ignore();
        let counted = self.answered(pipe.query_async::<(i64,)>(&mut connection));
        counted.await.map(|(count,)| count)
    }

    /// Receive what is published on `channel` (buffering up to `buffer` messages).
    pub async fn subscribe(
        &self,
        channel: &str,
        buffer: usize,
    ) -> RedisResult<mpsc::Receiver<Message>> {
        let (sender, receiver) = mpsc::channel(buffer);
        self.handlers
            .write()
            .unwrap()
            .channels
            .insert(channel.to_owned(), sender);
        self.connection().subscribe(&[channel.to_owned()]).await?;
        Ok(receiver)
    }

    pub async fn unsubscribe(&self, channel: &str) -> RedisResult<()> {
        self.handlers.write().unwrap().channels.remove(channel);
        self.connection().unsubscribe(&[channel.to_owned()]).await
    }

    /// Hand every message on a channel under `prefix` to `handler`; which of those channels
    /// this node hears is up to `listen` and `stop_listening`.
    pub fn route_prefix(&self, prefix: &str, handler: PrefixHandler) {
        let mut handlers = self.handlers.write().unwrap();
        handlers.prefixes.push((prefix.to_owned(), handler));
    }

    /// Subscribe to these routed channels, in one command (one per channel, concurrently, on
    /// a cluster); true once Redis confirmed it.
    pub(crate) async fn listen(&self, channels: &[String]) -> bool {
        let mut connection = self.connection();
        let subscribed = connection.subscribe_routed(channels);
        self.answered(subscribed).await.is_some()
    }

    /// Unsubscribe from these routed channels.
    pub(crate) async fn stop_listening(&self, channels: &[String]) -> bool {
        let mut connection = self.connection();
        let unsubscribed = connection.unsubscribe_routed(channels);
        self.answered(unsubscribed).await.is_some()
    }

    /// How many connections (one per node) are subscribed to `channel`.
    pub async fn subscribers(&self, channel: &str) -> RedisResult<u16> {
        let mut connection = self.connection();
        // `[channel, count]` from one Redis; a map of the sums from a cluster's nodes.
        let counted: Value = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut connection)
            .await?;
        let count = match counted {
            Value::Array(items) => items.into_iter().nth(1),
            Value::Map(pairs) => pairs.into_iter().next().map(|(_, count)| count),
            _ => None,
        };
        Ok(count
            .and_then(|c| redis::from_redis_value(c).ok())
            .unwrap_or(0))
    }

    /// Redis stopped answering: say so once, and skip it until it answers again.
    pub(crate) fn lost(&self, why: &str) {
        self.errors.increment(1);
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(node = %self.node, "Redis is unreachable ({why}): this node serves its own connections only until it returns");
        }
    }
}

/// What Redis said when asked whether it is there.
#[derive(Debug, PartialEq, Eq)]
enum Health {
    /// Serving; the generation changes when what it was changed under the link: a new
    /// connection to one Redis (its id), a failover in a cluster (its epoch, which only grows).
    Up(Option<i64>),
    /// A cluster not serving every slot.
    Failing,
}

fn health(answer: Value) -> Health {
    let text = match answer {
        Value::VerbatimString { text, .. } => text,
        Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Value::Int(id) => return Health::Up(Some(id)),
        _ => return Health::Up(None),
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::to_owned)
    };
    if field("cluster_state").as_deref() != Some("ok") {
        return Health::Failing;
    }
    Health::Up(field("cluster_current_epoch").and_then(|e| e.parse().ok()))
}

/// Ask Redis every second whether it is there: no answer means it is down; a new generation
/// means the link was re-established after an outage, or a cluster failed over (subscriptions
/// restored by the redis crate may have gone to a master that is gone).
async fn watch_health(link: Weak<RedisLink>) {
    let mut last: Option<i64> = None;
    let mut every = tokio::time::interval(HEALTH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(link) = link.upgrade() else { return };
        let mut connection = link.connection();
        let ask = connection.health_command();
        let asked = link
            .answered(ask.query_async::<Value>(&mut connection))
            .await;
        match asked.map(health) {
            None => {}
            Some(Health::Failing) => link.lost("the cluster is failing over"),
            Some(Health::Up(generation)) => {
                let was_down = !link.up.swap(true, Ordering::Relaxed);
                if was_down {
                    tracing::info!(node = %link.node, "Redis answers again: cross-node delivery resumes");
                }
                let changed = match (last, generation) {
                    (Some(last), Some(now)) if connection.is_cluster() => now > last,
                    (Some(last), Some(now)) => now != last,
                    _ => false,
                };
                if was_down || changed {
                    link.returns.send_modify(|n| *n += 1);
                }
                if let Some(now) = generation {
                    last = Some(match last {
                        Some(last) if connection.is_cluster() => last.max(now),
                        _ => now,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_says_whether_it_serves_and_what_changed() {
        assert_eq!(health(Value::Int(7)), Health::Up(Some(7)));
        let info = |text: &str| Value::VerbatimString {
            format: redis::VerbatimFormat::Text,
            text: text.into(),
        };
        let ok = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_current_epoch:7\r\n";
        assert_eq!(health(info(ok)), Health::Up(Some(7)));
        let fail = "cluster_state:fail\r\ncluster_current_epoch:7\r\n";
        assert_eq!(health(info(fail)), Health::Failing);
        assert_eq!(health(Value::Okay), Health::Up(None));
    }

    #[test]
    fn a_message_a_subscriber_cannot_take_is_counted() {
        let push = |payload: &str| PushInfo {
            kind: PushKind::Message,
            data: vec![
                redis::Value::BulkString(b"news".to_vec()),
                redis::Value::BulkString(payload.as_bytes().to_vec()),
            ],
        };
        let (sender, mut receiver) = mpsc::channel(1);
        let handlers = RwLock::new(Handlers {
            channels: HashMap::from([("news".to_owned(), sender)]),
            prefixes: Vec::new(),
        });
        let (drops, seen) = watch::channel(0);
        dispatch(&handlers, &drops, push("first"));
        assert_eq!(*seen.borrow(), 0);
        dispatch(&handlers, &drops, push("second"));
        assert_eq!(*seen.borrow(), 1, "the second did not fit");
        assert_eq!(receiver.try_recv().unwrap().1, b"first");
        assert!(receiver.try_recv().is_err());
    }
}
