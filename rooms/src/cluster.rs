//! Many nodes sharing one Redis: a link with publish/subscribe that survives Redis restarts,
//! and presence that counts every node's connections. What travels between nodes, and to
//! which, is [`crate::routing`]'s business.
//!
//! When Redis is unreachable, each node goes on serving its own connections: publishing is
//! skipped (the outage is logged once), presence falls back to this node's connections, and
//! everything resumes by itself once Redis answers again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use rand::RngCore;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, RedisResult};
use tokio::sync::{mpsc, oneshot, watch};

use crate::UserId;
use crate::presence::{LocalPresence, Presence};

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
    manager: ConnectionManager,
    handlers: Arc<RwLock<Handlers>>,
    up: AtomicBool,
    returns: watch::Sender<u64>,
    drops: Arc<watch::Sender<u64>>,
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
fn dispatch(
    handlers: &RwLock<Handlers>,
    drops: &watch::Sender<u64>,
    push: PushInfo,
) {
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

/// The URL with RESP3 asked for: subscriptions share the command connection only with it.
fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}protocol=resp3")
}

fn new_node_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl RedisLink {
    /// Connect to Redis at `url`. Redis must answer now; later outages are ridden out.
    pub async fn connect(url: &str) -> RedisResult<Arc<Self>> {
        let client = redis::Client::open(resp3(url))?;
        let handlers = Arc::new(RwLock::new(Handlers::default()));
        let dispatching = handlers.clone();
        let drops = Arc::new(watch::channel(0).0);
        let dropping = drops.clone();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |push: PushInfo| {
                dispatch(&dispatching, &dropping, push);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_with_config(client, config).await?;
        let (returns, _) = watch::channel(0);
        let link = Arc::new(Self {
            node: new_node_id(),
            manager,
            handlers,
            up: AtomicBool::new(true),
            returns,
            drops,
        });
        tokio::spawn(watch_health(Arc::downgrade(&link)));
        tracing::info!(node = %link.node, "connected to Redis: events, presence and caches are shared with the other nodes");
        Ok(link)
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

    pub(crate) fn connection(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// Publish to every node subscribed to `channel`. While Redis is unreachable this does
    /// nothing: the other nodes cannot be told, and this node must not wait.
    pub async fn publish(&self, channel: &str, payload: &[u8]) {
        self.publish_counted(channel, payload).await;
    }

    /// Publish, and say how many subscribers (one per node) received it: `None` when it could
    /// not be sent.
    pub async fn publish_counted(&self, channel: &str, payload: &[u8]) -> Option<usize> {
        if !self.is_up() {
            return None;
        }
        let mut connection = self.connection();
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(channel).arg(payload);
        self.answered(publish.query_async::<usize>(&mut connection))
            .await
    }

    /// The answer to a command, or `None` (and Redis counted as lost) when it fails or takes
    /// longer than `COMMAND_TIMEOUT`.
    async fn answered<T>(&self, command: impl Future<Output = RedisResult<T>>) -> Option<T> {
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
        let counted = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::pipe()
                .incr(key, 1)
                .expire(key, ttl_seconds as i64)
                .ignore()
                .query_async::<(i64,)>(&mut connection),
        )
        .await;
        match counted {
            Ok(Ok((count,))) => Some(count),
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
        self.connection().subscribe(channel).await?;
        Ok(receiver)
    }

    pub async fn unsubscribe(&self, channel: &str) -> RedisResult<()> {
        self.handlers.write().unwrap().channels.remove(channel);
        self.connection().unsubscribe(channel).await
    }

    /// Hand every message on a channel under `prefix` to `handler`; which of those channels
    /// this node hears is up to `listen` and `stop_listening`.
    pub fn route_prefix(&self, prefix: &str, handler: PrefixHandler) {
        let mut handlers = self.handlers.write().unwrap();
        handlers.prefixes.push((prefix.to_owned(), handler));
    }

    /// Subscribe to these channels, in one command; true once Redis confirmed it.
    pub async fn listen(&self, channels: &[String]) -> bool {
        let mut connection = self.connection();
        self.answered(connection.subscribe(channels)).await.is_some()
    }

    /// Unsubscribe from these channels, in one command.
    pub async fn stop_listening(&self, channels: &[String]) -> bool {
        let mut connection = self.connection();
        self.answered(connection.unsubscribe(channels)).await.is_some()
    }

    /// How many connections (one per node) are subscribed to `channel`.
    pub async fn subscribers(&self, channel: &str) -> RedisResult<u16> {
        let mut connection = self.connection();
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut connection)
            .await?;
        Ok(count)
    }

    /// Redis stopped answering: say so once, and skip it until it answers again.
    pub(crate) fn lost(&self, why: &str) {
        metrics::counter!("palaver_redis_errors_total").increment(1);
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(node = %self.node, "Redis is unreachable ({why}): this node serves its own connections only until it returns");
        }
    }
}

/// Ask Redis every second who we are: no answer means it is down; a new connection id means
/// the link was re-established (and its subscriptions restored) after an outage.
async fn watch_health(link: Weak<RedisLink>) {
    let mut last_id: Option<i64> = None;
    let mut every = tokio::time::interval(HEALTH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(link) = link.upgrade() else { return };
        let mut connection = link.connection();
        let asked = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("CLIENT")
                .arg("ID")
                .query_async::<i64>(&mut connection),
        )
        .await;
        match asked {
            Ok(Ok(id)) => {
                let was_down = !link.up.swap(true, Ordering::Relaxed);
                if was_down {
                    tracing::info!(node = %link.node, "Redis answers again: cross-node delivery resumes");
                }
                if was_down || last_id.is_some_and(|last| last != id) {
                    link.returns.send_modify(|n| *n += 1);
                }
                last_id = Some(id);
            }
            Ok(Err(e)) => link.lost(&e.to_string()),
            Err(_) => link.lost("timed out"),
        }
    }
}

/// How long a node's word that a user is online lasts unless renewed: a node that dies stops
/// counting within this time.
pub const PRESENCE_TTL: Duration = Duration::from_secs(15);
/// How often each node renews its users' presence.
const PRESENCE_RENEW: Duration = Duration::from_secs(5);
/// The longest a new connection waits for its presence to be written.
const CONNECT_WAIT: Duration = Duration::from_millis(500);
/// Commands per pipeline when renewing many users at once.
const PIPELINE: usize = 500;

fn presence_key(user: &str) -> String {
    format!("palaver:presence:{user}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

enum PresenceWrite {
    Online(UserId, oneshot::Sender<()>),
    Offline(UserId),
}

/// Presence across nodes. Each user has a sorted set in Redis of the nodes where they are
/// connected, each scored with when that node's word expires; a user is online while any score
/// is in the future. One task per node writes, in order, so a quick disconnect and reconnect
/// cannot be applied backwards.
pub struct RedisPresence {
    local: LocalPresence,
    link: Arc<RedisLink>,
    writes: mpsc::UnboundedSender<PresenceWrite>,
}

impl RedisPresence {
    pub fn start(link: Arc<RedisLink>) -> Arc<Self> {
        let (writes, queue) = mpsc::unbounded_channel();
        let presence = Arc::new(Self {
            local: LocalPresence::default(),
            link,
            writes,
        });
        let returns = presence.link.returns();
        tokio::spawn(write_presence(Arc::downgrade(&presence), queue, returns));
        presence
    }

    /// Say in one pipeline that these users are online here, for another `PRESENCE_TTL`.
    fn online_commands(&self, pipe: &mut redis::Pipeline, users: &[UserId]) {
        let expires = now_ms() + PRESENCE_TTL.as_millis() as u64;
        for user in users {
            let key = presence_key(user);
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(expires)
                .arg(self.link.node())
                .ignore();
            pipe.cmd("PEXPIRE")
                .arg(&key)
                .arg(PRESENCE_TTL.as_millis() as u64)
                .ignore();
        }
    }

    /// Run the pipeline even when Redis is thought down: the writer is the only one waiting,
    /// and a write that gets through is one fewer wrong answer elsewhere.
    async fn run(&self, pipe: &redis::Pipeline) {
        let mut connection = self.link.connection();
        match tokio::time::timeout(COMMAND_TIMEOUT, pipe.exec_async(&mut connection)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.link.lost(&e.to_string()),
            Err(_) => self.link.lost("timed out"),
        }
    }

    /// Apply queued changes in order, in one pipeline.
    async fn write(&self, batch: Vec<PresenceWrite>) {
        let mut pipe = redis::pipe();
        let mut done = Vec::new();
        for write in batch {
            match write {
                PresenceWrite::Online(user, notify) => {
                    self.online_commands(&mut pipe, std::slice::from_ref(&user));
                    done.push(notify);
                }
                // Connected again meanwhile: the user stays.
                PresenceWrite::Offline(user) if !self.local.is_online(&user) => {
                    pipe.cmd("ZREM")
                        .arg(presence_key(&user))
                        .arg(self.link.node())
                        .ignore();
                }
                PresenceWrite::Offline(_) => {}
            }
        }
        self.run(&pipe).await;
        for notify in done {
            let _ = notify.send(());
        }
    }

    /// Renew every user connected here (which also restores them after Redis restarted).
    async fn renew(&self) {
        for chunk in self.local.users().chunks(PIPELINE) {
            let mut pipe = redis::pipe();
            self.online_commands(&mut pipe, chunk);
            self.run(&pipe).await;
        }
    }
}

async fn write_presence(
    presence: Weak<RedisPresence>,
    mut queue: mpsc::UnboundedReceiver<PresenceWrite>,
    mut returns: watch::Receiver<u64>,
) {
    let mut renew = tokio::time::interval(PRESENCE_RENEW);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = returns.changed() => {
                if changed.is_err() { return }
                let Some(presence) = presence.upgrade() else { return };
                presence.renew().await;
            }
            write = queue.recv() => {
                let Some(write) = write else { return };
                let mut batch = vec![write];
                while batch.len() < PIPELINE {
                    match queue.try_recv() {
                        Ok(write) => batch.push(write),
                        Err(_) => break,
                    }
                }
                let Some(presence) = presence.upgrade() else { return };
                presence.write(batch).await;
            }
            _ = renew.tick() => {
                let Some(presence) = presence.upgrade() else { return };
                presence.renew().await;
            }
        }
    }
}

impl Presence for RedisPresence {
    /// Waits for the write, so that every node sees the user online once this is done; but
    /// not for long when Redis is unwell: the connection is served either way.
    fn connected<'a>(&'a self, user: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.local.add(user);
            let (notify, written) = oneshot::channel();
            if self
                .writes
                .send(PresenceWrite::Online(user.to_owned(), notify))
                .is_ok()
            {
                let _ = tokio::time::timeout(CONNECT_WAIT, written).await;
            }
        })
    }

    fn disconnected(&self, user: &str) {
        if self.local.remove(user) {
            let _ = self.writes.send(PresenceWrite::Offline(user.to_owned()));
        }
    }

    fn online_among<'a>(&'a self, users: &'a [UserId]) -> BoxFuture<'a, HashSet<UserId>> {
        Box::pin(async move {
            let mut online = self.local.among(users);
            let elsewhere: Vec<&UserId> = users.iter().filter(|u| !online.contains(*u)).collect();
            if elsewhere.is_empty() || !self.link.is_up() {
                return online;
            }
            let now = now_ms();
            let mut pipe = redis::pipe();
            for user in &elsewhere {
                pipe.cmd("ZCOUNT")
                    .arg(presence_key(user))
                    .arg(now)
                    .arg("+inf");
            }
            let mut connection = self.link.connection();
            let counted = tokio::time::timeout(
                COMMAND_TIMEOUT,
                pipe.query_async::<Vec<i64>>(&mut connection),
            )
            .await;
            match counted {
                Ok(Ok(counts)) => {
                    for (user, count) in elsewhere.into_iter().zip(counts) {
                        if count > 0 {
                            online.insert(user.clone());
                        }
                    }
                }
                // Unknown elsewhere: such users count as offline (at worst, an extra push).
                Ok(Err(e)) => self.link.lost(&e.to_string()),
                Err(_) => self.link.lost("timed out"),
            }
            online
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn urls_ask_for_resp3() {
        assert_eq!(resp3("redis://h:1"), "redis://h:1?protocol=resp3");
        assert_eq!(
            resp3("redis://h:1/0?x=1"),
            "redis://h:1/0?x=1&protocol=resp3"
        );
        assert_eq!(
            resp3("redis://h?protocol=resp3"),
            "redis://h?protocol=resp3"
        );
    }
}
