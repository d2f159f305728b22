//! Routing by interest: a node hears, on Redis, only what concerns the users it holds
//! connections of.
//!
//! Each chat and each user has a channel. A node listens on a user's channel while it holds a
//! connection of theirs, and on a chat's while it holds a connection of one of its members,
//! whatever the dialect (some dialects tell a member of a chat through the member's own
//! rooms, so being in a chat's room is not the test). It stops listening `LINGER` after the
//! last such connection goes, so that a client that reconnects does not churn subscriptions,
//! and subscriptions go to Redis in batches.
//!
//! An event travels once on each channel it concerns, as every dialect's rendering, encoded by
//! the node that raised it: rendering reads what that node knows at that moment (the author,
//! the members), and every receiving node would otherwise render the same event again. Each
//! receiving node hands it to its own connections. An event that makes users members of a chat
//! also makes the nodes holding them listen on the chat, and the raising node waits (briefly)
//! until they do, so that the next message reaches them.
//!
//! A node that cannot keep up with what it hears closes the connections it could not tell: their
//! clients reconnect and catch up from what they saw last, rather than miss something silently.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, OnceCell, mpsc, oneshot, watch};

use crate::cluster::{Names, RedisLink};
use crate::{Closing, Outgoing, Room, Transports, UserId, carry_out};

/// How long a node keeps listening on a channel after its last interested connection went.
pub const LINGER: Duration = Duration::from_secs(1);
/// Channels per SUBSCRIBE or UNSUBSCRIBE.
const BATCH: usize = 512;
/// Messages heard and not yet handed to connections; past it, the node has fallen behind.
pub const BACKLOG: usize = 65_536;
/// The longest the raiser of a membership change waits for the nodes that must listen anew.
const ACK_WAIT: Duration = Duration::from_secs(1);
/// The longest a connection waits for its channels to be listened on.
const LISTEN_WAIT: Duration = Duration::from_secs(2);
/// How often, and how far apart, a node tries to listen again after Redis returned.
const RELISTEN_TRIES: usize = 20;
const RELISTEN_PAUSE: Duration = Duration::from_millis(500);
/// How long a cluster's nodes take to agree on a new topology, about.
const SETTLE: Duration = Duration::from_secs(2);
/// Events heard on several channels, remembered to be handed over once.
const SEEN: usize = 4096;

/// Who an event concerns across nodes, in the core's terms.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Audience {
    /// Chats whose members' nodes hear it.
    pub chats: Vec<String>,
    /// Users whose nodes hear it (besides the chats' members): e.g. those not yet members.
    pub users: Vec<UserId>,
    /// Users who became members of a chat.
    pub joined: Vec<(UserId, String)>,
    /// Users who are no longer members of a chat.
    pub left: Vec<(UserId, String)>,
}

impl Audience {
    pub fn chat(chat: impl Into<String>) -> Self {
        Self {
            chats: vec![chat.into()],
            ..Self::default()
        }
    }

    pub fn user(user: UserId) -> Self {
        Self {
            users: vec![user],
            ..Self::default()
        }
    }
}

/// What one dialect's transport does for an event, as it is sent.
#[derive(Debug, Serialize)]
pub(crate) struct StepOut<'a> {
    pub dialect: &'a str,
    pub joins: &'a [(Room, Room)],
    pub leaves: &'a [(Room, Room)],
    pub outgoing: &'a [Outgoing],
}

/// What one dialect's transport does for an event, as it is received.
#[derive(Debug, Deserialize)]
struct Step {
    dialect: String,
    #[serde(default)]
    joins: Vec<(Room, Room)>,
    #[serde(default)]
    leaves: Vec<(Room, Room)>,
    #[serde(default)]
    outgoing: Vec<Outgoing>,
}

/// One event between nodes.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope<S> {
    node: String,
    id: u64,
    /// Channels it was published on; a node hearing it on several hands it over once.
    copies: usize,
    /// Every node that hears it says so once it listens on the chats `joined` names.
    #[serde(default)]
    ack: bool,
    #[serde(default)]
    joined: Vec<(UserId, String)>,
    #[serde(default)]
    left: Vec<(UserId, String)>,
    #[serde(default = "Vec::new")]
    steps: Vec<S>,
    #[serde(default)]
    close: Option<(Room, Closing)>,
}

/// Which channels this node wants, and which it listens on.
#[derive(Default)]
struct Interests {
    users: HashMap<UserId, Held>,
    /// Per chat, the local users who are its members.
    chats: HashMap<String, usize>,
    listening: HashSet<String>,
    /// Listened on, wanted by nobody since then.
    idle: HashMap<String, Instant>,
}

/// A user with connections on this node.
struct Held {
    connections: usize,
    chats: HashSet<String>,
    /// Done once the user's channels are listened on: later connections wait for it too.
    ready: Arc<OnceCell<()>>,
}

/// Names of the channels under one prefix.
#[derive(Clone)]
struct Channels {
    prefix: String,
}

impl Channels {
    fn user(&self, user: UserId) -> String {
        format!("{}u:{user}", self.prefix)
    }
    fn chat(&self, chat: &str) -> String {
        format!("{}c:{chat}", self.prefix)
    }
    fn node(&self, node: &str) -> String {
        format!("{}n:{node}", self.prefix)
    }
}

/// What a channel under the prefix is about.
#[derive(Debug, PartialEq, Eq)]
enum About<'a> {
    User(UserId),
    Chat(&'a str),
    Node(&'a str),
}

impl Channels {
    fn about<'a>(&self, channel: &'a str) -> Option<About<'a>> {
        let rest = channel.strip_prefix(self.prefix.as_str())?;
        let (kind, id) = rest.split_once(':')?;
        match kind {
            "u" => id.parse().ok().map(About::User),
            "c" => Some(About::Chat(id)),
            "n" => Some(About::Node(id)),
            _ => None,
        }
    }
}

impl Interests {
    /// The channels of `wanted` not listened on yet; the others are wanted again.
    fn needs(&mut self, wanted: Vec<String>) -> Vec<String> {
        wanted
            .into_iter()
            .filter(|channel| {
                self.idle.remove(channel);
                !self.listening.contains(channel)
            })
            .collect()
    }

    fn unwanted(&mut self, channel: String) {
        self.idle.insert(channel, Instant::now());
    }

    /// `user` (held here) is a member of `chats`: the chat channels newly wanted.
    fn follow(&mut self, names: &Channels, user: UserId, chats: Vec<String>) -> Vec<String> {
        let Some(held) = self.users.get_mut(&user) else {
            return Vec::new();
        };
        let mut wanted = Vec::new();
        for chat in chats {
            if held.chats.insert(chat.clone()) {
                let members = self.chats.entry(chat.clone()).or_default();
                *members += 1;
                if *members == 1 {
                    wanted.push(names.chat(&chat));
                }
            }
        }
        wanted
    }

    fn unfollow(&mut self, names: &Channels, user: UserId, chat: &str) {
        let Some(held) = self.users.get_mut(&user) else {
            return;
        };
        if held.chats.remove(chat) {
            self.forget_member(names, chat);
        }
    }

    fn forget_member(&mut self, names: &Channels, chat: &str) {
        if let Some(members) = self.chats.get_mut(chat) {
            *members -= 1;
            if *members == 0 {
                self.chats.remove(chat);
                self.unwanted(names.chat(chat));
            }
        }
    }

    /// One connection of `user` fewer.
    fn release(&mut self, names: &Channels, user: UserId) {
        let Some(held) = self.users.get_mut(&user) else {
            return;
        };
        held.connections -= 1;
        if held.connections > 0 {
            return;
        }
        let Some(held) = self.users.remove(&user) else {
            return;
        };
        for chat in &held.chats {
            self.forget_member(names, chat);
        }
        self.unwanted(names.user(user));
    }

    /// Channels nobody has wanted for `LINGER`: no longer listened on.
    fn sweep(&mut self, now: Instant) -> Vec<String> {
        let stale: Vec<String> = self
            .idle
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= LINGER)
            .map(|(channel, _)| channel.clone())
            .collect();
        for channel in &stale {
            self.idle.remove(channel);
            self.listening.remove(channel);
        }
        stale
    }

    /// The local users whose events a channel carries.
    fn users_of(&self, about: &About<'_>) -> Vec<UserId> {
        match about {
            About::User(user) if self.users.contains_key(user) => vec![*user],
            About::Chat(chat) => self
                .users
                .iter()
                .filter(|(_, held)| held.chats.contains(*chat))
                .map(|(user, _)| *user)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Events (by raising node and id) already handed over, oldest first.
#[derive(Default)]
struct Seen {
    order: VecDeque<(String, u64)>,
    set: HashSet<(String, u64)>,
}

/// A batch of channels to listen on, and who waits for it.
struct Listen {
    channels: Vec<String>,
    done: oneshot::Sender<()>,
}

/// What routing counts, under the caller's metric names.
struct Meters {
    published: metrics::Counter,
    published_bytes: metrics::Counter,
    received: metrics::Counter,
    received_bytes: metrics::Counter,
    fell_behind: metrics::Counter,
    subscription_changes: metrics::Counter,
    channels: metrics::Gauge,
}

impl Meters {
    fn new(names: &Names) -> Self {
        let counter = |name| metrics::counter!(names.metric(name));
        Self {
            published: counter("redis_published_total"),
            published_bytes: counter("redis_published_bytes_total"),
            received: counter("redis_received_total"),
            received_bytes: counter("redis_received_bytes_total"),
            fell_behind: counter("redis_fell_behind_total"),
            subscription_changes: counter("redis_subscription_changes_total"),
            channels: metrics::gauge!(names.metric("redis_channels")),
        }
    }
}

/// This node's side of routing by interest.
pub struct Router {
    link: Arc<RedisLink>,
    names: Channels,
    meters: Meters,
    transports: Arc<Transports>,
    interests: Mutex<Interests>,
    listens: mpsc::UnboundedSender<Listen>,
    next_id: AtomicU64,
    /// Messages heard on routed channels, this node's own and acknowledgements included.
    heard: AtomicU64,
    acks: Mutex<HashMap<u64, mpsc::UnboundedSender<()>>>,
    seen: Mutex<Seen>,
    /// Channels whose messages could not be taken, and the word that there are some.
    behind: Arc<(Mutex<HashSet<String>>, Notify)>,
}

impl Router {
    /// Start routing for this node on the link's channels under `to:`, holding up to
    /// `backlog` messages heard and not yet handed over.
    /// Events from other nodes go to `transports`.
    pub(crate) async fn start(
        link: Arc<RedisLink>,
        transports: Arc<Transports>,
        backlog: usize,
    ) -> Arc<Self> {
        let prefix = link.key("to:");
        let meters = Meters::new(link.names());
        let names = Channels {
            prefix: prefix.clone(),
        };
        let (listens, listen_queue) = mpsc::unbounded_channel();
        let (heard, heard_queue) = mpsc::channel::<(String, Vec<u8>)>(backlog);
        let behind: Arc<(Mutex<HashSet<String>>, Notify)> = Arc::default();
        let router = Arc::new(Self {
            link: link.clone(),
            names,
            meters,
            transports,
            interests: Mutex::default(),
            listens,
            next_id: AtomicU64::new(0),
            heard: AtomicU64::new(0),
            acks: Mutex::default(),
            seen: Mutex::default(),
            behind: behind.clone(),
        });
        link.route_prefix(
            &prefix,
            Box::new(move |channel, payload| {
                if let Err(e) = heard.try_send((channel, payload)) {
                    let (channel, _) = e.into_inner();
                    behind.0.lock().unwrap().insert(channel);
                    behind.1.notify_one();
                }
            }),
        );
        let weak = Arc::downgrade(&router);
        tokio::spawn(keep_listening(weak.clone(), listen_queue, link.returns()));
        tokio::spawn(hear(weak, heard_queue));
        router.listen(vec![router.names.node(link.node())]).await;
        router
    }

    /// Listen on these channels (those not listened on yet), once Redis confirms it.
    async fn listen(&self, wanted: Vec<String>) {
        let channels = self.interests.lock().unwrap().needs(wanted);
        if channels.is_empty() {
            return;
        }
        let (done, confirmed) = oneshot::channel();
        if self.listens.send(Listen { channels, done }).is_ok() {
            let _ = tokio::time::timeout(LISTEN_WAIT, confirmed).await;
        }
    }

    /// One more connection of `user` here: once this returns, this node hears the user's
    /// events and their chats' (`chats` is read only for their first connection).
    pub async fn attend(
        self: &Arc<Self>,
        user: UserId,
        chats: impl Future<Output = Vec<String>>,
    ) -> Attending {
        let ready = {
            let mut interests = self.interests.lock().unwrap();
            let held = interests.users.entry(user).or_insert_with(|| Held {
                connections: 0,
                chats: HashSet::new(),
                ready: Arc::default(),
            });
            held.connections += 1;
            held.ready.clone()
        };
        let attending = Attending {
            router: Arc::downgrade(self),
            user,
        };
        ready
            .get_or_init(|| async {
                // The user's channel first: a membership change after the chats are read
                // then reaches this node on it.
                self.listen(vec![self.names.user(user)]).await;
                let chats = chats.await;
                let wanted = self
                    .interests
                    .lock()
                    .unwrap()
                    .follow(&self.names, user, chats);
                self.listen(wanted).await;
            })
            .await;
        attending
    }

    /// Users joined and left chats: this node listens on the chats its own users joined (and
    /// stops on those none of them is in any more).
    async fn apply_membership(&self, joined: &[(UserId, String)], left: &[(UserId, String)]) {
        let wanted = {
            let mut interests = self.interests.lock().unwrap();
            for (user, chat) in left {
                interests.unfollow(&self.names, *user, chat);
            }
            let mut wanted = Vec::new();
            for (user, chat) in joined {
                wanted.extend(interests.follow(&self.names, *user, vec![chat.clone()]));
            }
            wanted
        };
        self.listen(wanted).await;
    }

    /// Tell the other nodes concerned by `audience` what the transports did here: the steps
    /// each dialect's transport took, and connections to close. Returns once the nodes that
    /// must listen on a chat anew do (or `ACK_WAIT` passed).
    pub(crate) async fn publish(
        &self,
        audience: &Audience,
        steps: Vec<StepOut<'_>>,
        close: Option<(Room, Closing)>,
    ) {
        self.apply_membership(&audience.joined, &audience.left)
            .await;
        let mut channels: Vec<String> = audience
            .chats
            .iter()
            .map(|chat| self.names.chat(chat))
            .chain(audience.users.iter().map(|user| self.names.user(*user)))
            .collect();
        channels.sort_unstable();
        channels.dedup();
        if channels.is_empty() {
            return;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let ack = !audience.joined.is_empty();
        let envelope = Envelope {
            node: self.link.node().to_owned(),
            id,
            copies: channels.len(),
            ack,
            joined: audience.joined.clone(),
            left: audience.left.clone(),
            steps,
            close,
        };
        let payload = match serde_json::to_vec(&envelope) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!("could not encode an event for the other nodes: {e}");
                return;
            }
        };
        let mut acks = None;
        if ack {
            let (sender, receiver) = mpsc::unbounded_channel();
            self.acks.lock().unwrap().insert(id, sender);
            acks = Some(receiver);
        }
        let mut hearing = 0;
        for channel in &channels {
            if let Some(nodes) = self.link.publish_routed(channel, &payload).await {
                hearing += nodes;
            }
        }
        self.meters.published.increment(channels.len() as u64);
        let bytes = (payload.len() * channels.len()) as u64;
        self.meters.published_bytes.increment(bytes);
        if let Some(mut acks) = acks {
            let all = async {
                for _ in 0..hearing {
                    if acks.recv().await.is_none() {
                        return;
                    }
                }
            };
            if tokio::time::timeout(ACK_WAIT, all).await.is_err() {
                tracing::warn!(
                    hearing,
                    "not every node said it listens on a chat its users joined"
                );
            }
            self.acks.lock().unwrap().remove(&id);
        }
    }

    /// Close `user`'s connections on every node that holds one.
    pub(crate) async fn close_user(&self, user: UserId, why: Closing) {
        let audience = Audience::user(user);
        let room = Room::account(user);
        self.publish(&audience, Vec::new(), Some((room, why))).await;
    }

    /// Whether an event heard on several channels was handed over already.
    fn seen_before(&self, node: &str, id: u64) -> bool {
        let key = (node.to_owned(), id);
        let mut seen = self.seen.lock().unwrap();
        if !seen.set.insert(key.clone()) {
            return true;
        }
        seen.order.push_back(key);
        if seen.order.len() > SEEN
            && let Some(oldest) = seen.order.pop_front()
        {
            seen.set.remove(&oldest);
        }
        false
    }

    /// Hand what another node raised to this node's connections.
    async fn take(&self, channel: &str, payload: &[u8]) {
        self.meters.received.increment(1);
        self.meters.received_bytes.increment(payload.len() as u64);
        self.heard.fetch_add(1, Ordering::Relaxed);
        if let Some(About::Node(_)) = self.names.about(channel) {
            let id = std::str::from_utf8(payload)
                .ok()
                .and_then(|s| s.parse().ok());
            if let Some(id) = id
                && let Some(acks) = self.acks.lock().unwrap().get(&id)
            {
                let _ = acks.send(());
            }
            return;
        }
        let envelope: Envelope<Step> = match serde_json::from_slice(payload) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::warn!(%channel, "unreadable event from another node: {e}");
                return;
            }
        };
        let mine = envelope.node == self.link.node();
        let again = envelope.copies > 1 && self.seen_before(&envelope.node, envelope.id);
        if !mine && !again {
            self.apply_membership(&envelope.joined, &envelope.left)
                .await;
            self.hand_over(&envelope).await;
        }
        if envelope.ack {
            let to = self.names.node(&envelope.node);
            self.link
                .publish_routed(&to, envelope.id.to_string().as_bytes())
                .await;
        }
    }

    async fn hand_over(&self, envelope: &Envelope<Step>) {
        for step in &envelope.steps {
            let Some(transport) = self.transports.of(&step.dialect) else {
                tracing::warn!(dialect = %step.dialect, "an event for a dialect this node does not speak");
                continue;
            };
            carry_out(transport, &step.joins, &step.leaves, &step.outgoing).await;
        }
        if let Some((members_of, why)) = &envelope.close {
            self.transports.disconnect(members_of, *why).await;
        }
    }

    /// Messages on these channels could not be taken: close the local connections they were
    /// for, so that their clients reconnect and catch up.
    async fn fell_behind(&self, channels: HashSet<String>) {
        let users: HashSet<UserId> = {
            let interests = self.interests.lock().unwrap();
            channels
                .iter()
                .filter_map(|channel| self.names.about(channel))
                .flat_map(|about| interests.users_of(&about))
                .collect()
        };
        tracing::warn!(
            channels = channels.len(),
            users = users.len(),
            "this node fell behind what other nodes sent: closing the connections it could not tell, for their clients to reconnect and catch up"
        );
        self.meters.fell_behind.increment(channels.len() as u64);
        for user in users {
            let room = Room::account(user);
            self.transports.disconnect(&room, Closing::FellBehind).await;
        }
    }

    /// Listen on every channel again (Redis returned, or a cluster failed over): until Redis
    /// confirms each, for a while.
    async fn listen_again(&self) {
        let all: Vec<String> = self
            .interests
            .lock()
            .unwrap()
            .listening
            .iter()
            .cloned()
            .collect();
        for chunk in all.chunks(BATCH) {
            for _ in 0..RELISTEN_TRIES {
                if self.link.listen(chunk).await {
                    break;
                }
                tokio::time::sleep(RELISTEN_PAUSE).await;
            }
        }
    }

    /// How many messages this node heard on routed channels so far.
    pub fn heard_count(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }

    /// How many channels this node listens on now.
    pub fn listening(&self) -> usize {
        self.interests.lock().unwrap().listening.len()
    }
}

/// A connection's share of its user's interests, until dropped.
pub struct Attending {
    router: Weak<Router>,
    user: UserId,
}

impl Drop for Attending {
    fn drop(&mut self) {
        if let Some(router) = self.router.upgrade() {
            let mut interests = router.interests.lock().unwrap();
            interests.release(&router.names, self.user);
        }
    }
}

/// Batch the channels to listen on, stop listening on those unwanted for `LINGER`, and
/// listen on everything again when Redis returns (subscriptions sent meanwhile failed).
async fn keep_listening(
    router: Weak<Router>,
    mut listens: mpsc::UnboundedReceiver<Listen>,
    mut returns: watch::Receiver<u64>,
) {
    let mut sweep = tokio::time::interval(LINGER / 4);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            listen = listens.recv() => {
                let Some(first) = listen else { return };
                let mut batch = vec![first];
                let mut count = batch[0].channels.len();
                while count < BATCH {
                    match listens.try_recv() {
                        Ok(more) => {
                            count += more.channels.len();
                            batch.push(more);
                        }
                        Err(_) => break,
                    }
                }
                let Some(router) = router.upgrade() else { return };
                let mut channels: Vec<String> =
                    batch.iter().flat_map(|l| l.channels.iter().cloned()).collect();
                channels.sort_unstable();
                channels.dedup();
                for chunk in channels.chunks(BATCH) {
                    router.link.listen(chunk).await;
                }
                let meters = &router.meters;
                meters.subscription_changes.increment(channels.len() as u64);
                // Listened on even when Redis did not confirm: it is asked again when it returns.
                let mut interests = router.interests.lock().unwrap();
                interests.listening.extend(channels);
                meters.channels.set(interests.listening.len() as f64);
                drop(interests);
                for listen in batch {
                    let _ = listen.done.send(());
                }
            }
            _ = sweep.tick() => {
                let Some(router) = router.upgrade() else { return };
                let stale = router.interests.lock().unwrap().sweep(Instant::now());
                for chunk in stale.chunks(BATCH) {
                    router.link.stop_listening(chunk).await;
                }
                if !stale.is_empty() {
                    let meters = &router.meters;
                    meters.subscription_changes.increment(stale.len() as u64);
                    meters.channels.set(router.listening() as f64);
                }
            }
            changed = returns.changed() => {
                if changed.is_err() { return }
                let Some(router) = router.upgrade() else { return };
                // Once now, and once more when a cluster's new topology has settled: a
                // subscription made while a failover was still spreading can land on a shard
                // that no longer owns the channel.
                tokio::spawn(async move {
                    router.listen_again().await;
                    tokio::time::sleep(SETTLE).await;
                    router.listen_again().await;
                });
            }
        }
    }
}

/// Hand each message heard to this node's connections, in the order heard; and close the
/// connections whose messages could not be taken.
async fn hear(router: Weak<Router>, mut heard: mpsc::Receiver<(String, Vec<u8>)>) {
    let behind = match router.upgrade() {
        Some(router) => router.behind.clone(),
        None => return,
    };
    loop {
        tokio::select! {
            message = heard.recv() => {
                let Some((channel, payload)) = message else { return };
                let Some(router) = router.upgrade() else { return };
                router.take(&channel, &payload).await;
            }
            _ = behind.1.notified() => {
                let channels = std::mem::take(&mut *behind.0.lock().unwrap());
                let Some(router) = router.upgrade() else { return };
                if !channels.is_empty() {
                    router.fell_behind(channels).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user;

    fn names() -> Channels {
        Channels {
            prefix: "p:".into(),
        }
    }

    fn held(interests: &mut Interests, user: UserId) {
        let held = interests.users.entry(user).or_insert_with(|| Held {
            connections: 0,
            chats: HashSet::new(),
            ready: Arc::default(),
        });
        held.connections += 1;
    }

    #[test]
    fn channels_name_what_they_carry() {
        let names = names();
        let ada = user('a');
        assert_eq!(names.about(&names.user(ada)), Some(About::User(ada)));
        assert_eq!(names.about("p:u:not-an-id"), None);
        assert_eq!(names.about(&names.chat("c1")), Some(About::Chat("c1")));
        assert_eq!(names.about(&names.node("n1")), Some(About::Node("n1")));
        assert_eq!(names.about("other:c:c1"), None);
    }

    #[test]
    fn a_chat_is_wanted_while_a_local_member_is_connected() {
        let names = names();
        let mut interests = Interests::default();
        let (ada, bob, eve) = (user('a'), user('b'), user('e'));
        held(&mut interests, ada);
        held(&mut interests, bob);
        let chats = vec!["c1".to_owned(), "c2".to_owned()];
        assert_eq!(interests.follow(&names, ada, chats), ["p:c:c1", "p:c:c2"]);
        assert!(
            interests.follow(&names, bob, vec!["c1".into()]).is_empty(),
            "already wanted"
        );
        assert!(
            interests.follow(&names, eve, vec!["c3".into()]).is_empty(),
            "not here"
        );
        interests
            .listening
            .extend(["p:c:c1".into(), "p:c:c2".into()]);

        interests.unfollow(&names, ada, "c1");
        assert!(interests.idle.is_empty(), "bob still hears c1");
        interests.release(&names, ada);
        assert_eq!(
            interests.idle.keys().collect::<HashSet<_>>(),
            HashSet::from([&"p:c:c2".to_owned(), &format!("p:u:{ada}")])
        );
        assert_eq!(interests.users_of(&About::Chat("c1")), [bob]);
        assert!(interests.users_of(&About::User(ada)).is_empty());
    }

    #[test]
    fn an_unwanted_channel_lingers_and_a_wanted_one_stays() {
        let names = names();
        let mut interests = Interests::default();
        let ada = user('a');
        let channel = names.user(ada);
        held(&mut interests, ada);
        interests.listening.insert(channel.clone());
        interests.release(&names, ada);
        let now = Instant::now();
        assert!(interests.sweep(now).is_empty(), "still lingering");
        held(&mut interests, ada);
        assert!(
            interests.needs(vec![channel.clone()]).is_empty(),
            "listened on still: nothing to send"
        );
        assert!(interests.sweep(now + LINGER).is_empty(), "wanted again");
        interests.release(&names, ada);
        assert_eq!(
            interests.sweep(Instant::now() + LINGER),
            std::slice::from_ref(&channel)
        );
        assert!(interests.listening.is_empty());
        assert_eq!(interests.needs(vec![channel.clone()]), [channel]);
    }
}
