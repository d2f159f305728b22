//! Palaver's load generator, and the ceiling it is compared with.
//!
//! - `loadgen ceiling --port P`: a bare tokio WebSocket server that broadcasts each text frame
//!   to the other sockets of its room (`/?room=R`): no Socket.IO, no database. What no chat
//!   server on this machine can beat. With `--store URI` it first inserts each frame into that
//!   MongoDB, batched as Palaver does (what arrives while an insert is on its way goes in the
//!   next `insertMany`), and broadcasts it once stored: what no chat server that keeps its
//!   messages in that database can beat.
//! - `loadgen run`: N connections in rooms of K (one sender and K-1 listeners each), Socket.IO
//!   (Engine.IO v4 over WebSocket, the channels dialect's `message` event, which Node's
//!   baseline also serves) or plain WebSocket (the ceiling), from several loopback source
//!   addresses. Senders put their send time in the message; each delivery's latency goes in an
//!   HDR histogram. It holds one rate, or steps the rate up until p99 passes 50 ms or
//!   deliveries fall behind, and prints one JSON object.
//! - `loadgen idle`: N idle connections held for a while, their pings answered; how many
//!   stayed open. Each is a user of their own in a direct chat with another, as real ones are:
//!   over Socket.IO (the channels dialect) or a plain WebSocket (the hooks dialect's
//!   `ws/notification/`, signed in). `--shared-user` makes them all one user's, to hold many
//!   quickly.
//! - `loadgen fanout`: rooms whose members sit on different nodes, held idle until told to
//!   go, then one message into each. Several of these processes share one benchmark when its
//!   connections would pass one process's open-files limit: they time deliveries by the
//!   machine's clock, and each prints its latencies for the benchmark to merge.
//!
//! Every run is bounded in time and stops by itself.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The ceiling: a bare WebSocket broadcast server.
    Ceiling {
        #[arg(long)]
        port: u16,
        /// Store each message in this MongoDB before broadcasting it.
        #[arg(long)]
        store: Option<String>,
        /// The database it stores into.
        #[arg(long, default_value = "ceiling")]
        database: String,
    },
    /// Connections in rooms, one sender each, at a rate or stepped up to saturation.
    Run(RunArgs),
    /// Idle connections, held with their pings answered.
    Idle(IdleArgs),
    /// Rooms spread over nodes, held idle until a file appears, then one message into each.
    Fanout(FanoutArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// Engine.IO v4 over WebSocket, `message` events as the channels dialect speaks them.
    Socketio,
    /// Plain WebSocket text frames (the ceiling).
    Ws,
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(long, value_enum)]
    protocol: Protocol,
    /// The server's base URL, e.g. http://127.0.0.1:3000; several, comma-separated, spread
    /// each room's members over those nodes (accounts are made through the first).
    #[arg(long)]
    url: String,
    #[arg(long)]
    connections: usize,
    #[arg(long, default_value_t = 10)]
    room_size: usize,
    /// Messages per second offered, in all (deliveries are this times K-1).
    #[arg(long)]
    rate: f64,
    /// Seconds per rate.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Step the rate up by half each time until p99 passes `p99_limit_ms` or deliveries fall
    /// behind, starting at `rate`; at most this many steps.
    #[arg(long, default_value_t = 0)]
    steps: usize,
    #[arg(long, default_value_t = 50.0)]
    p99_limit_ms: f64,
    /// Highest rate one sender may offer (a server's per-connection event budget).
    #[arg(long, default_value_t = f64::INFINITY)]
    max_sender_rate: f64,
    /// The server's process, whose memory is looked at: before the connections, once they are
    /// open, after each step, and after they have been quiet for `quiet` seconds at the end.
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long, default_value_t = 5)]
    quiet: u64,
    #[arg(long, default_value_t = 16)]
    sources: u8,
}

#[derive(clap::Args)]
struct IdleArgs {
    /// Socket.IO, or a plain WebSocket (`ws/notification/`).
    #[arg(long, value_enum, default_value_t = Protocol::Socketio)]
    protocol: Protocol,
    #[arg(long)]
    url: String,
    #[arg(long)]
    connections: usize,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Every connection is one user's (Socket.IO only): no set-up per connection.
    #[arg(long)]
    shared_user: bool,
    /// The server's process, whose memory is looked at along the way (same machine).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Written once every connection is open and the server serves it (a heap profile is
    /// taken then).
    #[arg(long)]
    ready: Option<PathBuf>,
    /// Make the users and chats, then hold `seconds` without connecting: what the set-up
    /// alone costs the server.
    #[arg(long)]
    set_up_only: bool,
    #[arg(long, default_value_t = 16)]
    sources: u8,
}

#[derive(clap::Args)]
struct FanoutArgs {
    /// The nodes' base URLs, comma-separated: member m of room r connects to node (r + m) mod
    /// n, so each room's members sit on different nodes (accounts are made through the first).
    #[arg(long)]
    url: String,
    /// Rooms this process makes.
    #[arg(long)]
    rooms: usize,
    /// The number of this process's first room: processes sharing a run take distinct ranges.
    #[arg(long, default_value_t = 0)]
    first: usize,
    #[arg(long, default_value_t = 10)]
    room_size: usize,
    /// Written, with how many connections opened, once every connection is open.
    #[arg(long)]
    ready: PathBuf,
    /// The senders start once this file exists (waited for an hour at most).
    #[arg(long)]
    go: PathBuf,
    /// Seconds over which the senders send their one message each, at random points.
    #[arg(long, default_value_t = 5.0)]
    over: f64,
    /// Seconds after the sending that late deliveries still count.
    #[arg(long, default_value_t = 120)]
    wait: u64,
    #[arg(long, default_value_t = 16)]
    sources: u8,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Ceiling {
                port,
                store,
                database,
            } => {
                let store = match store {
                    Some(uri) => Some(Store::connect(&uri, &database).await?),
                    None => None,
                };
                ceiling(port, store).await
            }
            Command::Run(args) => {
                let report = run(args).await?;
                println!("{report}");
                Ok(())
            }
            Command::Idle(args) => {
                let report = idle(args).await?;
                println!("{report}");
                Ok(())
            }
            Command::Fanout(args) => {
                let report = fanout(args).await?;
                println!("{report}");
                Ok(())
            }
        }
    })
}

// ---- the ceiling ----

/// Each room's frames, with the sending socket's number.
type Rooms = Arc<Mutex<std::collections::HashMap<String, broadcast::Sender<(u64, Arc<str>)>>>>;

/// A message to store, and who waits for it to be stored.
type Stored = (mongodb::bson::Document, tokio::sync::oneshot::Sender<()>);

/// Messages inserted as Palaver inserts them: one `insertMany` (unordered, the driver's retries
/// off) at a time, of everything that arrived while the previous one was on its way.
#[derive(Clone)]
struct Store(tokio::sync::mpsc::UnboundedSender<Stored>);

impl Store {
    async fn connect(uri: &str, database: &str) -> anyhow::Result<Self> {
        let mut options = mongodb::options::ClientOptions::parse(uri).await?;
        options.retry_writes = Some(false);
        let messages = mongodb::Client::with_options(options)?
            .database(database)
            .collection::<mongodb::bson::Document>("messages");
        let (queue, mut arrived) = tokio::sync::mpsc::unbounded_channel::<Stored>();
        tokio::spawn(async move {
            while let Some(first) = arrived.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = arrived.try_recv() {
                    batch.push(more);
                }
                let (docs, waiting): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                if let Err(e) = messages.insert_many(docs).ordered(false).await {
                    eprintln!("ceiling: insert failed: {e}");
                }
                for waiter in waiting {
                    let _ = waiter.send(());
                }
            }
        });
        Ok(Self(queue))
    }

    /// Store one message of `room`, sent by socket `from`; back once it is stored.
    async fn insert(&self, room: &str, from: u64, text: &str) {
        let (stored, wait) = tokio::sync::oneshot::channel();
        let doc = mongodb::bson::doc! {
            "_id": mongodb::bson::oid::ObjectId::new(),
            "room": room,
            "from": from as i64,
            "text": text,
            "at": mongodb::bson::DateTime::now(),
        };
        if self.0.send((doc, stored)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// Each room's sockets hear every frame sent by another socket of the room (once stored, with
/// a store).
// The handshake callback's error type is tungstenite's, large as it is.
#[allow(clippy::result_large_err)]
async fn ceiling(port: u16, store: Option<Store>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let rooms: Rooms = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (rooms, me) = (rooms.clone(), next.fetch_add(1, Ordering::Relaxed));
        let store = store.clone();
        tokio::spawn(async move {
            let mut room = String::new();
            let callback =
                |request: &tokio_tungstenite::tungstenite::handshake::server::Request, response| {
                    let query = request.uri().query().unwrap_or_default();
                    room = query.strip_prefix("room=").unwrap_or_default().to_owned();
                    Ok(response)
                };
            let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                return;
            };
            let sender = {
                let mut rooms = rooms.lock().unwrap();
                rooms
                    .entry(room.clone())
                    .or_insert_with(|| broadcast::channel(1024).0)
                    .clone()
            };
            let mut heard = sender.subscribe();
            let (mut sink, mut stream) = socket.split();
            loop {
                tokio::select! {
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            let text: Arc<str> = Arc::from(text.as_str());
                            match &store {
                                None => {
                                    let _ = sender.send((me, text));
                                }
                                // Each message is stored and broadcast in a task of its own,
                                // as socketioxide runs each event's handler: the socket goes
                                // on reading while the insert is on its way.
                                Some(store) => {
                                    let (store, sender, room) =
                                        (store.clone(), sender.clone(), room.clone());
                                    tokio::spawn(async move {
                                        store.insert(&room, me, &text).await;
                                        let _ = sender.send((me, text));
                                    });
                                }
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                    out = heard.recv() => match out {
                        Ok((from, text)) if from != me => {
                            if sink.send(Message::Text(text.as_ref().into())).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return,
                    },
                }
            }
        });
    }
}

// ---- connections ----

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The moment all latencies are measured from: senders and listeners share this process's
/// clock.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn micros_now() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// A TCP connection from `127.0.0.<2 + i % sources>`, so that many connections fit in the
/// port range.
async fn tcp_from(addr: SocketAddr, i: usize, sources: u8) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    let last = 2 + (i % sources.max(1) as usize) as u8;
    socket.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
        0,
    ))?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn host_of(url: &str) -> anyhow::Result<SocketAddr> {
    let host = url
        .trim_start_matches("http://")
        .trim_start_matches("ws://")
        .trim_end_matches('/');
    host.parse()
        .with_context(|| format!("{host} is not an ip:port"))
}

/// A Socket.IO connection on the default namespace, signed in with `token` and listening to
/// `channel` (the channels dialect's headers, which Node's baseline reads too).
async fn socketio(
    url: &str,
    token: &str,
    channel: &str,
    i: usize,
    sources: u8,
) -> anyhow::Result<Socket> {
    let addr = host_of(url)?;
    let mut request =
        format!("ws://{addr}/socket.io/?EIO=4&transport=websocket").into_client_request()?;
    request
        .headers_mut()
        .insert("authorisation", token.parse()?);
    request.headers_mut().insert("channels", channel.parse()?);
    let stream = tcp_from(addr, i, sources).await?;
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(
        request,
        MaybeTlsStream::Plain(stream),
        Some(client_config()),
    )
    .await?;
    expect_prefix(&mut socket, "0").await?;
    socket.send(Message::Text("40".into())).await?;
    expect_prefix(&mut socket, "40").await?;
    Ok(socket)
}

/// Wait for a frame starting `prefix`, answering pings meanwhile.
async fn expect_prefix(socket: &mut Socket, prefix: &str) -> anyhow::Result<()> {
    loop {
        let wait = tokio::time::timeout(Duration::from_secs(20), socket.next()).await;
        match wait {
            Ok(Some(Ok(Message::Text(text)))) if text.starts_with(prefix) => return Ok(()),
            Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "2" => {
                socket.send(Message::Text("3".into())).await?;
            }
            other => bail!("expected an Engine.IO frame starting {prefix}, got {other:?}"),
        }
    }
}

/// A plain WebSocket at `path` (after the server's `/`, query included).
async fn plain_ws(url: &str, path: &str, i: usize, sources: u8) -> anyhow::Result<Socket> {
    let addr = host_of(url)?;
    let stream = tcp_from(addr, i, sources).await?;
    let (socket, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}/{path}"),
        MaybeTlsStream::Plain(stream),
        Some(client_config()),
    )
    .await?;
    Ok(socket)
}

/// Reads of 4 kB rather than tungstenite's 128 kB: tens of thousands of connections in one
/// load generator.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096)
}

// ---- a run ----

/// One rate's figures, shared by the listeners while it runs.
struct Phase {
    latencies: Mutex<Histogram<u64>>,
    /// Messages the senders sent: a sender's first one comes at a random point of its
    /// period, so over a short step fewer or more than the rate times the step go out.
    sent: AtomicU64,
    delivered: AtomicU64,
}

impl Phase {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            latencies: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        })
    }

    /// Waits until every message sent in this phase has reached its K-1 listeners, or `cap`
    /// has passed: late deliveries still count, for a while, but a step whose messages have
    /// all arrived need not wait out the whole while.
    async fn arrived(&self, k: usize, cap: Duration) {
        let began = Instant::now();
        // A sender that was writing when its plan ended counts its message a moment later.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while began.elapsed() < cap {
            let expected = self.sent.load(Ordering::Relaxed) * (k as u64 - 1);
            if self.delivered.load(Ordering::Relaxed) >= expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The warm-up's phase, the first: its figures are not reported.
const WARM_UP: usize = 0;

/// What senders do now: send at `per_sender` a second, tagging messages with `phase`.
#[derive(Clone, Copy)]
struct Plan {
    phase: usize,
    per_sender: f64,
}

async fn run(args: RunArgs) -> anyhow::Result<Value> {
    let k = args.room_size.max(2);
    let rooms = (args.connections / k).max(1);
    let http = reqwest::Client::new();
    let phases: Arc<Mutex<Vec<Arc<Phase>>>> = Arc::default();
    let (plan_tx, plan_rx) = watch::channel(None::<Plan>);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut rss = Rss::of(args.server_pid);

    // Rooms: a sender user and a listener user with K-1 sockets (Socket.IO), or K sockets in
    // one room (the ceiling).
    let setups = futures::stream::iter(0..rooms)
        .map(|room| {
            let http = http.clone();
            let url = args.url.split(',').next().unwrap_or_default().to_owned();
            async move {
                match args.protocol {
                    Protocol::Ws => Ok::<_, anyhow::Error>(Pair {
                        channel: room.to_string(),
                        ..Pair::default()
                    }),
                    Protocol::Socketio => setup_room(&http, &url, room).await,
                }
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let urls: Vec<&str> = args.url.split(',').collect();
    let first = urls[0].to_owned();
    let mut index = 0;
    for setup in setups {
        let Pair {
            sender,
            listener,
            channel,
        } = setup?;
        for member in 0..k {
            let socket = match args.protocol {
                Protocol::Socketio => {
                    let token = if member == 0 {
                        &sender.token
                    } else {
                        &listener.token
                    };
                    let url = urls[member % urls.len()];
                    socketio(url, token, &channel, index, args.sources).await?
                }
                Protocol::Ws => {
                    let path = format!("?room={channel}");
                    plain_ws(&first, &path, index, args.sources).await?
                }
            };
            index += 1;
            let role = if member == 0 {
                Role::Sender(plan_rx.clone(), channel.clone())
            } else {
                Role::Listener
            };
            let (phases, stop) = (phases.clone(), stop.clone());
            tasks.push(tokio::spawn(drive(
                socket,
                args.protocol,
                role,
                phases,
                stop,
            )));
        }
    }

    rss.sample("connected");

    // A warm-up: one message or two from every sender, not measured (a server's first
    // message in a chat may load what it caches), and time for them to arrive.
    let warm_up = Phase::new();
    phases.lock().unwrap().push(warm_up.clone());
    plan_tx.send_replace(Some(Plan {
        phase: WARM_UP,
        per_sender: 1.0,
    }));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    plan_tx.send_replace(None);
    warm_up.arrived(k, Duration::from_secs(3)).await;

    // Each rate in turn.
    let mut results = Vec::new();
    let mut rate = args.rate;
    let cap = args.max_sender_rate * rooms as f64;
    for _ in 0..=args.steps {
        let offered = rate.min(cap);
        let phase = Phase::new();
        let index = {
            let mut phases = phases.lock().unwrap();
            phases.push(phase.clone());
            phases.len() - 1
        };
        let began = Instant::now();
        plan_tx.send_replace(Some(Plan {
            phase: index,
            per_sender: offered / rooms as f64,
        }));
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        plan_tx.send_replace(None);
        let sending = began.elapsed().as_secs_f64();
        phase.arrived(k, Duration::from_secs(2)).await;
        let sent = phase.sent.load(Ordering::Relaxed);
        let expected = sent * (k as u64 - 1);
        let delivered = phase.delivered.load(Ordering::Relaxed);
        let h = phase.latencies.lock().unwrap().clone();
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let result = json!({
            "offered_messages_per_s": offered,
            "sent": sent,
            "expected_deliveries": expected,
            "delivered": delivered,
            "deliveries_per_s": (delivered as f64 / sending).round(),
            "p50_ms": ms(0.5),
            "p99_ms": ms(0.99),
            "max_ms": h.max() as f64 / 1000.0,
        });
        // The busiest step is the last one run: it is looked at after each.
        rss.replace("busiest");
        let kept_up = delivered as f64 >= expected as f64 * 0.99;
        let fast = ms(0.99) <= args.p99_limit_ms;
        results.push(result);
        if !kept_up || !fast || offered >= cap {
            break;
        }
        rate *= 1.5;
    }
    // Quiet again, the connections still open: what each keeps after the traffic.
    plan_tx.send_replace(None);
    tokio::time::sleep(Duration::from_secs(args.quiet)).await;
    rss.replace("quiet");
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }

    // The highest rate that was kept up with, within the p99 limit.
    let sustained = results
        .iter()
        .filter(|r| {
            r["delivered"].as_f64() >= r["expected_deliveries"].as_f64().map(|e| e * 0.99)
                && r["p99_ms"].as_f64().unwrap_or(f64::MAX) <= args.p99_limit_ms
        })
        .filter_map(|r| r["deliveries_per_s"].as_f64())
        .fold(0.0, f64::max);
    Ok(json!({
        "connections": index,
        "room_size": k,
        "rooms": rooms,
        "sustained_deliveries_per_s": sustained,
        "connections": rooms * k,
        "rss_kb": rss.report(),
        "steps": results,
    }))
}

/// A user on a channels-speaking server: their id and token.
#[derive(Clone, Default)]
struct Account {
    id: String,
    token: String,
}

/// A room on a channels-speaking server: two users and their direct channel.
#[derive(Clone, Default)]
struct Pair {
    sender: Account,
    listener: Account,
    channel: String,
}

async fn setup_room(http: &reqwest::Client, url: &str, room: usize) -> anyhow::Result<Pair> {
    let new = async |name: String| {
        let body = json!({ "username": name });
        let user = post(http, format!("{url}/new"), None, body).await?;
        let field = |f: &str| {
            user[f]
                .as_str()
                .context("no id or token")
                .map(str::to_owned)
        };
        Ok::<_, anyhow::Error>(Account {
            id: field("id")?,
            token: field("token")?,
        })
    };
    let sender = new(format!("sender{room}")).await?;
    let listener = new(format!("listener{room}")).await?;
    let body = json!({ "to": listener.id, "type": 1 });
    let created = post(
        http,
        format!("{url}/create-channel"),
        Some(&sender.token),
        body,
    )
    .await?;
    let channel = created["channel_id"]
        .as_str()
        .context("no channel")?
        .to_owned();
    Ok(Pair {
        sender,
        listener,
        channel,
    })
}

/// A JSON POST with a bearer token, tried again (twice at most) when the server fails it: a
/// benchmark's thousands of set-up requests should not end on one failure under load. Each
/// failure is told on stderr. A refusal (4xx) ends it at once: the set-up itself is wrong.
async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut tries = 0;
    loop {
        let mut request = http.post(&url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let failure = match request.send().await {
            Ok(response) if response.status().is_success() => return Ok(response.json().await?),
            Ok(response) if response.status().is_client_error() => {
                bail!(
                    "POST {url}: {}: {}",
                    response.status(),
                    response.text().await?
                );
            }
            Ok(response) => format!("{}: {}", response.status(), response.text().await?),
            Err(e) => e.to_string(),
        };
        tries += 1;
        eprintln!("POST {url} failed ({failure}), try {tries} of 3");
        if tries == 3 {
            bail!("POST {url}: {failure}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

enum Role {
    Sender(watch::Receiver<Option<Plan>>, String),
    Listener,
}

/// One connection: answer pings; a listener records each delivery's latency in its phase, a
/// sender sends as its plan says.
async fn drive(
    socket: Socket,
    protocol: Protocol,
    role: Role,
    phases: Arc<Mutex<Vec<Arc<Phase>>>>,
    stop: Arc<AtomicBool>,
) {
    let (mut sink, mut stream) = socket.split();
    let (mut plans, channel) = match role {
        Role::Sender(plans, channel) => (Some(plans), channel),
        Role::Listener => (None, String::new()),
    };
    let mut plan: Option<Plan> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    let mut acks = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            frame = stream.next() => {
                let Some(Ok(Message::Text(text))) = frame else {
                    if matches!(frame, None | Some(Err(_))) { return; }
                    continue;
                };
                if protocol == Protocol::Socketio && text.as_str() == "2" {
                    if sink.send(Message::Text("3".into())).await.is_err() { return; }
                    continue;
                }
                if plans.is_none() {
                    record(text.as_str(), &phases);
                }
            }
            changed = async { plans.as_mut().unwrap().changed().await }, if plans.is_some() => {
                if changed.is_err() { return; }
                plan = *plans.as_ref().unwrap().borrow();
                if let Some(p) = plan.filter(|p| p.per_sender > 0.0) {
                    // Senders start at random points of their period, so the offered rate is
                    // even rather than every sender's message at once.
                    let period = Duration::from_secs_f64(1.0 / p.per_sender);
                    let start = tokio::time::Instant::now() + period.mul_f64(rand::random());
                    tick = tokio::time::interval_at(start, period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                }
            }
            _ = tick.tick(), if plan.is_some() => {
                let Some(p) = plan else { continue };
                let content = format!("t {} {}", p.phase, micros_now());
                let frame = match protocol {
                    Protocol::Socketio => {
                        acks += 1;
                        let data = json!({ "content": content, "channel": channel });
                        format!("42{acks}[\"message\",{data}]")
                    }
                    Protocol::Ws => content,
                };
                if sink.send(Message::Text(frame.into())).await.is_err() { return; }
                if let Some(phase) = phases.lock().unwrap().get(p.phase) {
                    phase.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// A message's stamp, `t <phase> <micros>`, somewhere in the frame.
fn stamp(text: &str) -> Option<(usize, u64)> {
    let at = text.find("t ")?;
    let mut parts = text[at + 2..].split(|c: char| !c.is_ascii_digit());
    let (phase, sent) = (parts.next()?, parts.next()?);
    Some((phase.parse().ok()?, sent.parse().ok()?))
}

/// A delivery of a stamped message.
fn record(text: &str, phases: &Mutex<Vec<Arc<Phase>>>) {
    let Some((phase, sent)) = stamp(text) else {
        return;
    };
    let Some(phase) = phases.lock().unwrap().get(phase).cloned() else {
        return;
    };
    let latency = micros_now().saturating_sub(sent).max(1);
    phase.delivered.fetch_add(1, Ordering::Relaxed);
    let _ = phase.latencies.lock().unwrap().record(latency);
}

// ---- idle connections ----

/// What one idle connection opens with: its user's token, and its chat (named by a Socket.IO
/// connection, as Node's baseline needs; Palaver reads it from the database).
struct Opening {
    token: String,
    channel: String,
}

/// How long an idle connection may take to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);

async fn idle(args: IdleArgs) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    let url = args.url.as_str();
    let mut rss = Rss::of(args.server_pid);
    let began = Instant::now();
    let openings: Vec<Opening> = if args.shared_user {
        let body = json!({ "username": "idle" });
        let user = post(&http, format!("{url}/new"), None, body).await?;
        let token = user["token"].as_str().context("no token")?;
        (0..args.connections)
            .map(|_| Opening {
                token: token.to_owned(),
                channel: String::new(),
            })
            .collect()
    } else {
        let pairs = futures::stream::iter(0..args.connections.div_ceil(2))
            .map(|room| setup_room(&http, url, room))
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
        let mut openings = Vec::new();
        for pair in pairs {
            let Pair {
                sender,
                listener,
                channel,
            } = pair?;
            for user in [sender, listener] {
                openings.push(Opening {
                    token: user.token,
                    channel: channel.clone(),
                });
            }
        }
        openings.truncate(args.connections);
        openings
    };
    let setup_seconds = began.elapsed().as_secs_f64();
    rss.sample("set_up");
    if args.set_up_only {
        if let Some(ready) = &args.ready {
            std::fs::write(ready, "0").context("writing the ready file")?;
        }
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        return Ok(json!({ "setup_seconds": setup_seconds, "rss_kb": rss.report() }));
    }

    let open = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let protocol = args.protocol;
    // Each connection is driven (its pings answered) from the moment it opens: opening ten
    // thousand takes longer than a ping's interval and time-out, and a connection left
    // unanswered meanwhile would be closed by the server before the hold begins.
    let opened = futures::stream::iter(openings.iter().enumerate())
        .map(|(i, opening)| {
            let (open, stop) = (open.clone(), stop.clone());
            async move {
                let opened = async {
                    match protocol {
                        Protocol::Socketio => {
                            socketio(url, &opening.token, &opening.channel, i, args.sources).await
                        }
                        Protocol::Ws => {
                            let path = format!("ws/notification/?token={}", opening.token);
                            plain_ws(url, &path, i, args.sources).await
                        }
                    }
                };
                // Bounded: a server out of file descriptors leaves a connection in its accept
                // queue, never answered, and with every other connection held nothing frees one.
                let socket = tokio::time::timeout(OPEN_TIMEOUT, opened)
                    .await
                    .context("no answer to the opening handshake")??;
                open.fetch_add(1, Ordering::Relaxed);
                Ok::<_, anyhow::Error>(tokio::spawn(async move {
                    drive(socket, protocol, Role::Listener, Arc::default(), stop).await;
                    open.fetch_sub(1, Ordering::Relaxed);
                }))
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let connect_seconds = began.elapsed().as_secs_f64();
    let failed = opened.iter().filter(|o| o.is_err()).count();
    if let Some(Err(e)) = opened.iter().find(|o| o.is_err()) {
        eprintln!("{failed} connections failed, the first: {e:#}");
    }
    let tasks: Vec<_> = opened.into_iter().filter_map(Result::ok).collect();
    let connected = open.load(Ordering::Relaxed);
    let serving_seconds = serving(&http, url, connected).await;
    rss.sample("connected");
    if let Some(ready) = &args.ready {
        std::fs::write(ready, connected.to_string()).context("writing the ready file")?;
    }
    // Held past more than one ping interval (25 s by default on both servers), the server's
    // memory looked at every half second.
    let until = Instant::now() + Duration::from_secs(args.seconds);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss.sample("held_peak");
    }
    let held = open.load(Ordering::Relaxed);
    rss.replace("held_end");
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    Ok(json!({
        "asked": args.connections,
        "connected": connected,
        "failed": failed,
        "held": held,
        "setup_seconds": setup_seconds,
        "connect_seconds": connect_seconds,
        "serving_seconds": serving_seconds,
        "rss_kb": rss.report(),
    }))
}

/// Seconds until the server counts `connections` open connections in its metrics (Palaver's
/// `palaver_connections`): a connection open to the client may still be setting up on the
/// server (reading its user and chat), and its memory is measured once it serves. `None` for a
/// server without the metric, or when two minutes pass first.
async fn serving(http: &reqwest::Client, url: &str, connections: u64) -> Option<f64> {
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(120) {
        let text = http
            .get(format!("{url}/metrics"))
            // A server out of file descriptors never accepts the request: given up on, as one
            // that fails (the time to serving is then unknown).
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let counted: f64 = text
            .lines()
            .filter(|l| l.starts_with("palaver_connections{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if !text.contains("palaver_connections{") && began.elapsed() > Duration::from_secs(5) {
            return None;
        }
        if counted >= connections as f64 {
            return Some(began.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// A server's resident memory, looked at by the load generator (which runs on the same
/// machine) at named moments; a name looked at again keeps its highest figure.
struct Rss {
    pid: Option<u32>,
    seen: serde_json::Map<String, Value>,
}

impl Rss {
    /// Starts with the server's memory now, as `start`.
    fn of(pid: Option<u32>) -> Self {
        let mut rss = Self {
            pid,
            seen: serde_json::Map::new(),
        };
        rss.sample("start");
        rss
    }

    fn sample(&mut self, name: &str) {
        if let Some(kb) = self.now() {
            let before = self.seen.get(name).and_then(Value::as_u64).unwrap_or(0);
            self.seen.insert(name.to_owned(), kb.max(before).into());
        }
    }

    /// As `sample`, keeping the latest figure rather than the highest.
    fn replace(&mut self, name: &str) {
        if let Some(kb) = self.now() {
            self.seen.insert(name.to_owned(), kb.into());
        }
    }

    fn now(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
        line.trim().trim_end_matches("kB").trim().parse().ok()
    }

    fn report(&self) -> Value {
        Value::Object(self.seen.clone())
    }
}

// ---- one message into each of many rooms, from several processes ----

/// Microseconds by the machine's clock, which every process of a run shares.
fn wall_micros() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

/// What the listeners of a fan-out heard.
#[derive(Default)]
struct Heard {
    latencies: Mutex<Vec<u64>>,
    delivered: AtomicU64,
}

async fn fanout(args: FanoutArgs) -> anyhow::Result<Value> {
    let urls: Vec<String> = args.url.split(',').map(str::to_owned).collect();
    let k = args.room_size.max(2);
    let began = Instant::now();
    let http = reqwest::Client::new();
    let setups = futures::stream::iter(args.first..args.first + args.rooms)
        .map(|room| {
            let (http, url) = (http.clone(), urls[0].clone());
            async move { setup_room(&http, &url, room).await }
        })
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let setup_seconds = began.elapsed().as_secs_f64();

    // Room r's member m on node (r + m) mod n; the first member is the room's sender. Each
    // connection answers pings from the moment it is open: opening them all takes minutes.
    let began = Instant::now();
    let heard = Arc::new(Heard::default());
    let open = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let senders = Arc::new(AtomicU64::new(0));
    let (go_tx, go_rx) = watch::channel(false);
    let over = Duration::from_secs_f64(args.over);
    let members = setups.iter().enumerate().flat_map(|(i, setup)| {
        let room = args.first + i;
        (0..k).map(move |member| (room, member, setup))
    });
    let opened = futures::stream::iter(members)
        .map(|(room, member, pair)| {
            let token = if member == 0 {
                &pair.sender.token
            } else {
                &pair.listener.token
            };
            let channel = &pair.channel;
            let url = &urls[(room + member) % urls.len()];
            let go = (member == 0).then(|| (go_rx.clone(), channel.clone()));
            let (heard, open, sent, senders) =
                (heard.clone(), open.clone(), sent.clone(), senders.clone());
            async move {
                let socket = socketio(url, token, channel, room * k + member, args.sources).await?;
                open.fetch_add(1, Ordering::Relaxed);
                if go.is_some() {
                    senders.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, anyhow::Error>(tokio::spawn(async move {
                    hold(socket, go, over, &heard, &sent).await;
                    open.fetch_sub(1, Ordering::Relaxed);
                }))
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let connect_seconds = began.elapsed().as_secs_f64();
    let failed = opened.iter().filter(|o| o.is_err()).count();
    let tasks: Vec<_> = opened.into_iter().filter_map(Result::ok).collect();
    let senders = senders.load(Ordering::Relaxed);
    let connected = open.load(Ordering::Relaxed);
    let ready = json!({ "connected": connected, "failed": failed }).to_string();
    std::fs::write(&args.ready, ready).context("writing the ready file")?;

    // Held idle until the benchmark says go.
    let waited = Instant::now();
    while !args.go.exists() {
        if waited.elapsed() > Duration::from_secs(3600) {
            bail!("no go within an hour");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = open.load(Ordering::Relaxed);
    go_tx.send_replace(true);
    // Every sender has sent and every message has reached its K-1 listeners, or `wait` has
    // passed since the sending.
    tokio::time::sleep(over).await;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let expected = || sent.load(Ordering::Relaxed) * (k as u64 - 1);
    let done = || {
        sent.load(Ordering::Relaxed) == senders
            && heard.delivered.load(Ordering::Relaxed) >= expected()
    };
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for task in tasks {
        task.abort();
    }
    let latencies = std::mem::take(&mut *heard.latencies.lock().unwrap());
    Ok(json!({
        "rooms": args.rooms,
        "room_size": k,
        "asked": args.rooms * k,
        "connected": connected,
        "failed": failed,
        "held": held,
        "sent": sent.load(Ordering::Relaxed),
        "expected_deliveries": expected(),
        "delivered": heard.delivered.load(Ordering::Relaxed),
        "setup_seconds": setup_seconds,
        "connect_seconds": connect_seconds,
        "latencies_us": latencies,
    }))
}

/// One connection of a fan-out: answer pings, record each stamped message heard; a sender
/// (`go`) sends its one message at a random point within `over` of the go.
async fn hold(
    socket: Socket,
    go: Option<(watch::Receiver<bool>, String)>,
    over: Duration,
    heard: &Heard,
    sent: &AtomicU64,
) {
    let (mut sink, mut stream) = socket.split();
    let sends = go.is_some();
    let (mut go, channel) = go.unzip();
    let mut due = None;
    loop {
        tokio::select! {
            frame = stream.next() => {
                let Some(Ok(Message::Text(text))) = frame else {
                    if matches!(frame, None | Some(Err(_))) { return; }
                    continue;
                };
                if text.as_str() == "2" {
                    if sink.send(Message::Text("3".into())).await.is_err() { return; }
                } else if !sends && let Some((_, at)) = stamp(text.as_str()) {
                    heard.latencies.lock().unwrap().push(wall_micros().saturating_sub(at).max(1));
                    heard.delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            changed = async { go.as_mut().unwrap().changed().await }, if go.is_some() && due.is_none() => {
                if changed.is_err() { return; }
                due = Some(tokio::time::Instant::now() + over.mul_f64(rand::random()));
            }
            _ = async { tokio::time::sleep_until(due.unwrap()).await }, if due.is_some() => {
                due = None;
                go = None;
                let data = json!({ "content": format!("t 0 {}", wall_micros()), "channel": channel });
                let frame = format!("421[\"message\",{data}]");
                if sink.send(Message::Text(frame.into())).await.is_err() { return; }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
