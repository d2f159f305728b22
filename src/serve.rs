//! Accepting connections. `axum::serve` gives hyper no timer, so a client that sends its
//! headers one line at a time could hold a connection for ever; here each connection is
//! served by hyper with a timer (a header time-out), `TCP_NODELAY` (a small event goes out at
//! once instead of waiting on the peer's delayed ACK), and a cap per client address. The
//! request time-out that bounds a trickled body is a layer on the REST routes (`lib.rs`).
//!
//! Stopping: no new connections, requests in flight finish (for at most `SHUTDOWN_GRACE`; a
//! long-poll waiting for data is not waited for), plain WebSockets' Close frames go out (for
//! at most `FAREWELL_WAIT`), then every connection still open, long-polls and upgraded ones
//! included, is cut: its TCP stream ends.
//! That is how Node's socket.io server stops, and what makes every Socket.IO client reconnect
//! (to another node): an Engine.IO close packet would tell some clients, python-socketio's
//! among them, that the server let them go on purpose, and they would never come back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tower::{Service, ServiceExt};

use crate::proxies::{self, Origin, Proxies};
use crate::telemetry;

/// How long requests in flight may take to finish once the server is stopping...
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// ...and upgraded connections to say goodbye (a WebSocket's Close frame) after them.
pub const FAREWELL_WAIT: Duration = Duration::from_secs(1);

/// What a connection may do, and whom to believe about where it comes from.
#[derive(Clone)]
pub struct Limits {
    /// To send a request's headers, and the longest a connection may go without a request
    /// (its first one included, from the moment it is accepted).
    pub header_timeout: Duration,
    /// Connections open at once per client address.
    pub per_address: usize,
    pub proxies: Arc<Proxies>,
}

/// Serve `service` (every door of the app) on `listener` until `stop` completes. Then stop
/// accepting, wait for the requests in flight to be answered (`SHUTDOWN_GRACE` at most; a
/// long-poll waiting for something to send is no request in flight), wait for `farewells`
/// (upgraded connections saying goodbye in their own protocol, `FAREWELL_WAIT` at most), and
/// cut every connection still open.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    stop: impl Future<Output = ()>,
    farewells: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let open = OpenConnections::default();
    let in_flight = InFlight::default();
    let graceful = GracefulShutdown::new();
    let cut = CancellationToken::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: let some close before trying again.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY not set: {e}");
        }
        let stream = Cuttable {
            inner: stream,
            read_ahead: Vec::new(),
            cut: Box::pin(cut.clone().cancelled_owned()),
            _slot: None,
        };
        let connection = Connection {
            stream,
            peer,
            service: service.clone(),
            in_flight: in_flight.clone(),
            open: open.clone(),
            limits: limits.clone(),
        };
        tokio::spawn(connection.serve(builder.clone(), graceful.watcher()));
    }
    drop(listener);
    // Idle keep-alive connections close now; requests being answered are waited for, but not
    // long-polls, which would wait for as long as the grace period.
    let all_closed = graceful.shutdown();
    tokio::pin!(all_closed);
    let answered = async {
        tokio::select! {
            () = &mut all_closed => {}
            () = in_flight.answered() => {}
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, answered)
        .await
        .is_err()
    {
        tracing::info!("requests still running after the grace period: cut off");
    }
    if tokio::time::timeout(FAREWELL_WAIT, farewells)
        .await
        .is_err()
    {
        tracing::info!("WebSockets still saying goodbye after {FAREWELL_WAIT:?}: cut off");
    }
    tracing::info!("stopping: every connection left is cut, so that its client reconnects");
    cut.cancel();
    Ok(())
}

/// One accepted connection, until it is served.
struct Connection<S> {
    stream: Cuttable,
    peer: SocketAddr,
    service: S,
    in_flight: InFlight,
    open: OpenConnections,
    limits: Limits,
}

impl<S> Connection<S>
where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    /// Find where the client is, hold its address's slot, and serve its requests until it
    /// goes, the server stops, or it stays idle past the deadline.
    async fn serve(mut self, builder: auto::Builder<TokioExecutor>, graceful: Watcher) {
        let peer = self.peer;
        let proxies = self.limits.proxies.clone();
        // The address the connection counts against, when there is one.
        let mut client = (!proxies.trusts(peer.ip())).then_some(peer);
        if proxies.sends_header(peer.ip()) {
            let header = proxies::read_header(&mut self.stream);
            match tokio::time::timeout(self.limits.header_timeout, header).await {
                Ok(Ok((Origin::Client(address), read_ahead))) => {
                    client = Some(address);
                    self.stream.read_ahead = read_ahead;
                }
                Ok(Ok((Origin::Unknown, read_ahead))) => self.stream.read_ahead = read_ahead,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "connection from a proxy refused: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "connection from a proxy sent no PROXY header in time");
                    return;
                }
            }
        }
        if let Some(client) = client {
            let Some(slot) = self.open.take(client.ip(), self.limits.per_address) else {
                tracing::debug!(client = %client.ip(), "connection refused: too many open from this address");
                metrics::counter!(telemetry::RATE_LIMITED, "scope" => "connections").increment(1);
                return;
            };
            self.stream._slot = Some(slot);
        }
        let activity = Activity::new();
        let (app, in_flight, requests) = (self.service, self.in_flight, activity.clone());
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // Behind a proxy that did not say in its header, the request says, if anyone.
            let address = client
                .or_else(|| {
                    let forwarded = proxies.forwarded_client(request.headers())?;
                    Some(SocketAddr::new(forwarded, 0))
                })
                .unwrap_or(peer);
            request.extensions_mut().insert(ConnectInfo(address));
            detach_head(&mut request);
            let answering = (in_flight.enter(&request), requests.enter());
            let answer = app.clone().oneshot(request);
            async move {
                // Until its body is sent: a download is still a request being answered.
                let answer = answer.await?;
                Ok::<_, Infallible>(answer.map(|body| {
                    axum::body::Body::new(Answered {
                        body,
                        _answering: answering,
                    })
                }))
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(self.stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        let client = client.unwrap_or(peer);
        tokio::select! {
            served = connection => if let Err(e) = served {
                tracing::debug!(%client, %peer, "connection ended: {e}");
            },
            () = activity.idle_for(self.limits.header_timeout) => {
                tracing::debug!(%client, %peer, "connection closed: no request within {:?}", self.limits.header_timeout);
            }
        }
    }
}

/// The requests of one connection: how many are being answered, and when one last began or
/// ended (in milliseconds since the connection was accepted).
#[derive(Clone)]
struct Activity(Arc<(AtomicUsize, AtomicU64, Instant)>);

/// A request of a connection being answered, counted until dropped.
struct Requesting(Activity);

impl Activity {
    fn new() -> Self {
        Self(Arc::new((
            AtomicUsize::new(0),
            AtomicU64::new(0),
            Instant::now(),
        )))
    }

    fn touch(&self) {
        let now = self.0.2.elapsed().as_millis() as u64;
        self.0.1.fetch_max(now, Ordering::AcqRel);
    }

    fn enter(&self) -> Requesting {
        self.0.0.fetch_add(1, Ordering::AcqRel);
        self.touch();
        Requesting(self.clone())
    }

    /// Once `period` went by with no request being answered and none begun: a connection
    /// that never sent one (from the moment it was accepted: hyper's header time-out only
    /// starts at the first byte), an idle keep-alive one, or an HTTP/2 one with no stream. A
    /// long-poll is a request being answered; an upgraded connection is not served here any
    /// more.
    async fn idle_for(&self, period: Duration) {
        let (answering, last, accepted) = &*self.0;
        loop {
            let quiet_since = *accepted + Duration::from_millis(last.load(Ordering::Acquire));
            if answering.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(period).await;
            } else if quiet_since.elapsed() >= period {
                return;
            } else {
                tokio::time::sleep_until((quiet_since + period).into()).await;
            }
        }
    }
}

impl Drop for Requesting {
    fn drop(&mut self) {
        self.0.touch();
        self.0.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response's body, holding its request as being answered until it is all sent.
struct Answered {
    body: axum::body::Body,
    _answering: (Option<Answering>, Requesting),
}

impl hyper::body::Body for Answered {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Requests being answered, but for long-polls: what a stopping node waits for.
#[derive(Clone, Default)]
struct InFlight(Arc<(AtomicUsize, Notify)>);

/// One request being answered, counted until dropped.
struct Answering(InFlight);

impl InFlight {
    fn enter<B>(&self, request: &Request<B>) -> Option<Answering> {
        if is_long_poll(request) {
            return None;
        }
        self.0.0.fetch_add(1, Ordering::AcqRel);
        Some(Answering(self.clone()))
    }

    /// Once no request is being answered.
    async fn answered(&self) {
        let (count, done) = &*self.0;
        loop {
            let notified = done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let (count, done) = &*self.0.0;
        if count.fetch_sub(1, Ordering::AcqRel) == 1 {
            done.notify_waiters();
        }
    }
}

/// An Engine.IO long-poll: a `GET` of a polling session, answered only when there is something
/// to send (or at the next ping). On shutdown it is cut, and its client reconnects.
fn is_long_poll<B>(request: &Request<B>) -> bool {
    if request.method() != hyper::Method::GET {
        return false;
    }
    let query = request.uri().query().unwrap_or_default();
    let mut polling = false;
    let mut session = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "transport" => polling = value == "polling",
            "sid" => session = true,
            _ => {}
        }
    }
    polling && session
}

/// Hyper parses a request's head in place: its URI and header values are slices of the
/// connection's read buffer (8 to 16 kB), which lives as long as any of them does. Socket.IO
/// keeps each session's request head for the session's life, so without this every idle
/// socket would keep a whole read buffer; copied out, the head takes a few hundred bytes.
fn detach_head<B>(request: &mut Request<B>) {
    let headers = std::mem::take(request.headers_mut());
    let mut copied = HeaderMap::with_capacity(headers.len());
    for (name, value) in &headers {
        let mut own = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        own.set_sensitive(value.is_sensitive());
        copied.append(name.clone(), own);
    }
    *request.headers_mut() = copied;
    if let Ok(uri) = Uri::try_from(request.uri().to_string()) {
        *request.uri_mut() = uri;
    }
}

/// A connection's stream, ended from this side when the server stops: reads see the end of
/// the stream and writes fail, so whoever holds it (hyper, or a WebSocket after an upgrade)
/// lets it go, and the client sees its connection closed. It holds its address's slot for as
/// long as it lives, upgraded or not.
struct Cuttable {
    inner: TcpStream,
    /// What was read before the first request (past a PROXY header): read first.
    read_ahead: Vec<u8>,
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The client address's slot, once known (none for a proxy's own connections).
    _slot: Option<Slot>,
}

impl Cuttable {
    fn is_cut(&mut self, cx: &mut Context<'_>) -> bool {
        self.cut.as_mut().poll(cx).is_ready()
    }
}

impl AsyncRead for Cuttable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.is_cut(cx) {
            return Poll::Ready(Ok(()));
        }
        if !self.read_ahead.is_empty() {
            let n = self.read_ahead.len().min(buf.remaining());
            buf.put_slice(&self.read_ahead[..n]);
            self.read_ahead.drain(..n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Cuttable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.is_cut(cx) {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Connections open per client address.
#[derive(Clone, Default)]
struct OpenConnections(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One open connection, counted until dropped.
struct Slot {
    open: OpenConnections,
    address: IpAddr,
}

impl OpenConnections {
    fn take(&self, address: IpAddr, max: usize) -> Option<Slot> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(address).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;

    use super::*;

    /// A head as hyper leaves it: the URI and header values are slices of one read buffer.
    fn parsed_in_place(buffer: &Bytes) -> Request<()> {
        let text = std::str::from_utf8(buffer).unwrap();
        let slice = |part: &str| {
            let at = text.find(part).unwrap();
            buffer.slice(at..at + part.len())
        };
        let mut request = Request::new(());
        *request.uri_mut() = Uri::from_maybe_shared(slice("/socket.io/?EIO=4")).unwrap();
        let headers = request.headers_mut();
        for (name, value) in [("x-token", "secret"), ("cookie", "a=1"), ("cookie", "b=2")] {
            let mut value = HeaderValue::from_maybe_shared(slice(value)).unwrap();
            value.set_sensitive(name == "x-token");
            headers.append(name, value);
        }
        request
    }

    #[test]
    fn a_detached_head_is_the_same_head_owning_its_bytes() {
        let mut bytes = vec![b' '; 8192];
        let head = b"GET /socket.io/?EIO=4 HTTP/1.1 x-token: secret cookie: a=1 b=2";
        bytes[..head.len()].copy_from_slice(head);
        let buffer = Bytes::from(bytes);
        let mut request = parsed_in_place(&buffer);
        let before = (request.uri().clone(), request.headers().clone());

        detach_head(&mut request);

        assert_eq!((request.uri().clone(), request.headers().clone()), before);
        assert!(request.headers()["x-token"].is_sensitive());
        assert!(!request.headers()["cookie"].is_sensitive());
        let range = buffer.as_ptr_range();
        let inside = |bytes: &[u8]| range.contains(&bytes.as_ptr());
        assert!(!inside(request.uri().path().as_bytes()));
        assert!(request.headers().values().all(|v| !inside(v.as_bytes())));
    }
}
