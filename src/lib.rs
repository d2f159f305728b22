//! Palaver: one realtime chat server speaking the protocols of five chat backends.

pub mod auth;
pub mod channels;
pub mod chats;
pub mod config;
pub mod core;
pub mod error;
pub mod fixtures;
pub mod health;
pub mod hooks;
pub mod hooligram;
pub mod http;
pub mod kit;
pub mod media;
pub mod memory;
pub mod proxies;
pub mod push;
pub mod realtime;
pub mod requests;
pub mod serve;
pub mod sms;
pub mod store;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use rooms::cluster::{Names, RedisLink};
use rooms::{Closing, Sessions, Transport};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_http::ServiceBuilderExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::core::accounts::SignInLimits;
use crate::core::{App, Core, Publisher, Tokens};
use crate::http::origins::{self, Origins};
use crate::kit::{Clients, Kit};
use crate::proxies::Proxies;
use crate::realtime::admin::Operators;
use crate::realtime::admin::page::Page;
use crate::realtime::{SocketDialect, SocketIoTransport};
use crate::store::Store;

/// How long a stopping node waits for its queued pushes to go out.
const PUSH_FLUSH: Duration = Duration::from_secs(10);

/// Every dialect Palaver speaks. A new dialect is its folder and a line here.
const DIALECTS: [fn() -> Kit; 5] = [
    channels::kit,
    chats::kit,
    hooks::kit,
    hooligram::kit,
    requests::kit,
];

/// What Palaver's keys and channels in Redis start with, and its Redis metrics' names.
const REDIS_NAMES: Names = Names {
    keys: "palaver:",
    metrics: "palaver_",
};

/// The header that carries each request's id.
const REQUEST_ID: &str = "x-request-id";

/// Largest body an endpoint reads, unless it says otherwise (chat photos do).
const BODY_LIMIT: usize = 1024 * 1024;
/// Largest request body of all, whatever the endpoint.
const REQUEST_LIMIT: usize = 6 * 1024 * 1024;

/// A running server: its address, its state, and the means to stop it.
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    shutdown: oneshot::Sender<()>,
    /// How long the node keeps serving once told to stop (`DRAIN_TIME`).
    drain: Duration,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Bind and serve on the configured address with an already connected store.
    pub async fn start(config: &Config, store: Store) -> anyhow::Result<Self> {
        let push: Arc<dyn rooms::PushSink> = match config.fcm() {
            Some(fcm) => Arc::new(push::fcm::FcmPush::start(&fcm, store.devices.clone())?),
            None => Arc::new(push::LogPushSink),
        };
        Self::start_with_push(config, store, push).await
    }

    /// As `start`, with pushes for offline users going to `push`.
    pub async fn start_with_push(
        config: &Config,
        store: Store,
        push: Arc<dyn rooms::PushSink>,
    ) -> anyhow::Result<Self> {
        // First: what the rooms crate counts is counted from its start.
        telemetry::install();
        let tokens = Tokens::from_config(config.jwt_secret.as_deref(), &config.data_dir)?;
        let media = config.s3()?.map(|s3| media::Media::new(&s3));
        if let Some(media) = &media {
            media.ensure_bucket().await?;
        }
        let verifier = sms::Verifier::new(config.twilio()?)?;
        let limits = SignInLimits::new(config.sign_ups_per_minute);

        // Each dialect is rendered for, and sent through, the transport its clients use.
        let sessions = Arc::new(Sessions::default());
        let mut publishing = Vec::new();
        let mut socket_io = SocketIoPaths::default();
        let mut dialect_routes = Router::new();
        for kit in DIALECTS.map(|kit| kit()) {
            let transport: Arc<dyn Transport> = match kit.clients {
                Clients::SocketIo { path, handlers } => socket_io.add(path, handlers),
                Clients::WebSocket => sessions.clone(),
            };
            publishing.push((kit.renderer, transport));
            dialect_routes = dialect_routes.merge(kit.routes);
        }
        let publisher = Publisher::new(publishing);
        // What other nodes raise is handed to the same transports.
        let transports = publisher.transports();
        let hub = match &config.redis_url {
            Some(url) => {
                let link = RedisLink::connect(url, REDIS_NAMES)
                    .await
                    .context("connecting to Redis (REDIS_URL)")?;
                let backlog = config.redis_backlog;
                rooms::Hub::clustered_with_backlog(push, link, backlog, sessions, transports).await
            }
            None => rooms::Hub::single_node(push, sessions, transports),
        };
        let app: App = Core::start(store, tokens, hub, media, verifier, limits, publisher).await?;

        let operators = config.admin()?.map(Operators::new);
        let request_timeout = Duration::from_secs(config.request_timeout);
        let admin_page = operators.as_ref().map(|_| Page::start(&config.data_dir));
        // Every door behind one stack, wrapped once: `Router::layer` would wrap each route
        // on its own, and a Socket.IO layer wrapped twice is two servers that do not know
        // each other's sessions (a polling POST met another route's layer than its GET).
        // Each Socket.IO path's layer answers its own path and hands on the rest; the stack is
        // boxed at each path, since the table says how many there are.
        let mut doors = BoxCloneSyncService::new(routes(
            app.clone(),
            dialect_routes,
            request_timeout,
            admin_page,
        ));
        for at in socket_io.0 {
            let (path, spoken) = (at.path, at.spoken);
            let layer =
                realtime::socketio::serve(&app, path, spoken, operators.clone(), &at.transport)
                    .await?;
            let door = ServiceBuilder::new()
                .map_response_body(axum::body::Body::new)
                .layer(layer)
                .service(doors);
            doors = BoxCloneSyncService::new(door);
        }

        let origins = Arc::new(Origins::parse(&config.cors_origins)?);
        let service = ServiceBuilder::new()
            .map_request_body(axum::body::Body::new)
            .layer(origins.cors(exposed_headers()))
            .layer(axum::middleware::from_fn_with_state(
                origins,
                origins::refuse_foreign,
            ))
            .map_response_body(axum::body::Body::new)
            .service(doors);
        let limits = serve::Limits {
            header_timeout: Duration::from_secs(config.header_timeout),
            per_address: config.max_connections_per_address,
            proxies: Arc::new(Proxies::parse(
                &config.trusted_proxies,
                config.proxy_protocol,
            )?),
        };
        let listener = TcpListener::bind((config.host, config.port)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stop) = oneshot::channel::<()>();
        let sessions = app.hub.sessions().clone();
        let said_goodbye = sessions.clone();
        let stopping = app.clone();
        let drain = Duration::try_from_secs_f64(config.drain_time)
            .context("DRAIN_TIME: a number of seconds")?;
        let stop = async move {
            let _ = stop.await;
            // Balancers hear first, and have `drain` to stop sending clients here; then plain
            // WebSockets are told the server is going away (1001); Socket.IO connections are
            // cut with the rest (see `serve`), so that every client reconnects elsewhere.
            stopping.begin_stopping();
            if !drain.is_zero() {
                tracing::info!("stopping: serving {drain:?} more while balancers drain this node");
                tokio::time::sleep(drain).await;
            }
            sessions.close_all(Closing::Shutdown);
        };
        let farewells = async move { said_goodbye.all_gone().await };
        let task = tokio::spawn(serve::serve(listener, service, limits, stop, farewells));
        tracing::info!("listening on http://{addr}");
        Ok(Self {
            addr,
            app,
            shutdown,
            drain,
            task,
        })
    }

    /// Stop for a rolling deploy: report not ready, stop accepting, let requests in flight
    /// finish (briefly), close every connection so that clients reconnect elsewhere, and write
    /// and send what is still queued.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        let bound = self.drain + serve::SHUTDOWN_GRACE + Duration::from_secs(5);
        tokio::time::timeout(bound, self.task).await???;
        let flushed = async {
            // Messages still being stored and announced by handlers that outlived their
            // connections.
            self.app.settled().await;
            // The last messages' chat activity is queued, not yet written.
            if let Err(e) = self.app.store.chat_activity.settled().await {
                tracing::warn!("chats' last activity not all written: {e}");
            }
            while self.app.hub.pushes_pending() > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if tokio::time::timeout(PUSH_FLUSH, flushed).await.is_err() {
            let left = self.app.hub.pushes_pending();
            tracing::warn!("stopping with {left} pushes unsent");
        }
        Ok(())
    }

    /// Wait until the server stops by itself (it only does on an error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await??;
        Ok(())
    }
}

/// A Socket.IO path the dialects are heard on: the dialects spoken there, and the transport
/// that reaches its sockets.
struct SocketIoPath {
    path: &'static str,
    spoken: Vec<Arc<dyn SocketDialect>>,
    transport: Arc<SocketIoTransport>,
}

#[derive(Default)]
struct SocketIoPaths(Vec<SocketIoPath>);

impl SocketIoPaths {
    /// `handlers` spoken at `path`: the transport of that path's sockets.
    fn add(&mut self, path: &'static str, handlers: Arc<dyn SocketDialect>) -> Arc<dyn Transport> {
        let at = match self.0.iter().position(|p| p.path == path) {
            Some(at) => at,
            None => {
                self.0.push(SocketIoPath {
                    path,
                    spoken: Vec::new(),
                    transport: Arc::default(),
                });
                self.0.len() - 1
            }
        };
        self.0[at].spoken.push(handlers);
        self.0[at].transport.clone()
    }
}

/// A path no door serves: no dialect owns it, so the answer is in no dialect's shape.
async fn no_route() -> (StatusCode, axum::Json<serde_json::Value>) {
    let body = serde_json::json!({ "message": "not found" });
    (StatusCode::NOT_FOUND, axum::Json(body))
}

/// Each request's log lines say who made it: the client's address, as the connection found
/// it (through a trusted proxy when there is one), and the request id it is answered with.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string());
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok());
    tracing::info_span!(
        "request",
        method = %request.method(),
        uri = %request.uri(),
        client = client.as_deref(),
        id = id,
    )
}

/// Headers a page on another origin may read.
fn exposed_headers() -> Vec<HeaderName> {
    vec![
        HeaderName::from_static(REQUEST_ID),
        HeaderName::from_static(channels::wire::ERROR_HEADER),
        axum::http::header::RETRY_AFTER,
    ]
}

fn routes(
    app: App,
    dialects: Router<App>,
    request_timeout: Duration,
    admin_page: Option<Arc<Page>>,
) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    let operators = match admin_page {
        Some(page) => page.router(),
        None => Router::new(),
    };
    dialects
        .merge(health::router())
        .with_state(app)
        .merge(operators)
        .fallback(no_route)
        // A request, its body included, is read and answered within this, so a body sent a
        // few bytes at a time cannot hold a connection (WebSockets only wait for the upgrade).
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(REQUEST_LIMIT))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenForm;

    #[test]
    fn every_dialect_is_named_once() {
        let mut names: Vec<&str> = DIALECTS.iter().map(|kit| kit().renderer.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DIALECTS.len());
    }

    #[test]
    fn dialects_on_one_socket_io_path_share_its_server() {
        struct Quiet;
        impl SocketDialect for Quiet {
            fn name(&self) -> &'static str {
                "quiet"
            }
            fn token_forms(&self) -> &'static [TokenForm] {
                &[]
            }
        }
        let mut paths = SocketIoPaths::default();
        let first = paths.add("/one", Arc::new(Quiet));
        let other = paths.add("/two", Arc::new(Quiet));
        let second = paths.add("/one", Arc::new(Quiet));
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(&first, &other));
        let spoken: Vec<_> = paths.0.iter().map(|p| (p.path, p.spoken.len())).collect();
        assert_eq!(spoken, [("/one", 2), ("/two", 1)]);
    }
}
