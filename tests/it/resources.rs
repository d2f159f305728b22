//! Bounded resources, on a server process of the test's own so its memory can be read:
//! sign-ups are throttled per address, and a burst of password hashes neither grows the
//! process by gigabytes nor waits in an unbounded queue.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{self, HOOKS_PASSWORD as PASSWORD, mongodb_uri, new_database_name};
use reqwest::StatusCode;
use serde_json::json;

/// The palaver binary on the test database, killed when dropped.
struct Process {
    child: Child,
    base: String,
    _data_dir: tempfile::TempDir,
}

impl Process {
    async fn start() -> Self {
        let port = common::free_port();
        let data_dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_palaver"))
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("MONGODB_URI", mongodb_uri())
            .env("MONGODB_DATABASE", new_database_name())
            .env("JWT_SECRET", "resources-test")
            .env("DATA_DIR", data_dir.path())
            .env("RUST_LOG", "error,tower_http=off")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..300 {
            if reqwest::get(format!("{base}/healthz")).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            child,
            base,
            _data_dir: data_dir,
        }
    }

    /// Resident memory, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client whose requests come from `127.0.0.<last>`: another address to the server.
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn sign_up_body(tag: &str, i: usize) -> serde_json::Value {
    let email = format!("{tag}-{i}-{}@example.org", std::process::id());
    json!({ "email": email, "password": PASSWORD, "password2": PASSWORD })
}

#[tokio::test]
async fn sign_ups_are_throttled_and_hashing_stays_bounded() {
    let server = Process::start().await;
    let url = |path: &str| format!("{}{path}", server.base);

    // One address: a burst of 20 sign-ups, then 429 with the hooks error shape.
    let http = client_from(21);
    let answers = futures::future::join_all((0..25).map(|i| {
        http.post(url("/user/signup/"))
            .json(&sign_up_body("throttled", i))
            .send()
    }))
    .await;
    let statuses: Vec<StatusCode> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((created, throttled), (20, 5), "{statuses:?}");

    // 150 sign-ins at once from five addresses (each within its own limit): a few hash at a
    // time, a bounded number wait, the rest are told at once to come back.
    let before = server.rss();
    let requests = (0..150).map(|i| {
        let http = client_from(30 + (i % 5) as u8);
        let body = json!({ "email": format!("nobody-{i}@example.org"), "password": PASSWORD });
        let url = url("/user/signin/");
        async move { http.post(url).json(&body).send().await.unwrap() }
    });
    let answers = futures::future::join_all(requests).await;
    let after = server.rss();
    let mut refused = 0;
    let mut busy = 0;
    for answer in answers {
        match answer.status() {
            StatusCode::UNAUTHORIZED => refused += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(answer.headers()["retry-after"], "1");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0 && busy > 0, "refused {refused}, busy {busy}");
    assert_eq!(refused + busy, 150);
    // Without the bound, each of the 150 held about 19 MiB at once (some 2.8 GB).
    let grown = after.saturating_sub(before);
    eprintln!("memory grew by {} MiB during the burst", grown >> 20);
    assert!(grown < 250 << 20, "grew by {} MiB", grown >> 20);
}

/// Wait (at most `within`) for the server to close `stream`; what it sent before closing.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&seen).into_owned())
}

async fn connect_from(addr: std::net::SocketAddr, last: u8) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// `count` connections from 127.0.0.`last`, each sending `header` and then a request, kept
/// open after their answers.
async fn hold(
    addr: std::net::SocketAddr,
    last: u8,
    header: &[u8],
    count: usize,
) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut held = Vec::new();
    for _ in 0..count {
        let mut stream = connect_from(addr, last).await;
        stream.write_all(header).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    held
}

#[tokio::test]
async fn slow_clients_cannot_hold_connections() {
    use tokio::io::AsyncWriteExt;
    let s = common::TestServer::start_configured(|config| {
        config.header_timeout = 1;
        config.request_timeout = 2;
        config.max_connections_per_address = 4;
    })
    .await;
    let addr = s.server.addr;

    // Headers one line at a time: cut off once the header time-out passes, though bytes keep
    // coming.
    let mut headers = connect_from(addr, 41).await;
    let trickle = async {
        headers
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let line = format!("X-Slow-{i}: yes\r\n");
            if headers.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    };
    trickle.await;
    assert!(
        closed_by_server(&mut headers, Duration::from_secs(3))
            .await
            .is_some(),
        "a connection sending headers for 6 s is closed"
    );

    // A body ten bytes at a time: answered 408 once the request time-out passes.
    let mut body = connect_from(addr, 42).await;
    let head = "POST /new HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n";
    body.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if body.write_all(b"          ").await.is_err() {
            break;
        }
    }
    let answer = closed_by_server(&mut body, Duration::from_secs(3)).await;
    let answer = answer.expect("a body trickled for 6 s is cut off");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Four open connections from one address; the fifth is closed at once, while another
    // address is served.
    let held = hold(addr, 43, b"", 4).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fifth = connect_from(addr, 43).await;
    let _ = fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = closed_by_server(&mut fifth, Duration::from_secs(3)).await;
    assert_eq!(answer.as_deref(), Some(""), "refused without an answer");
    let mut other = connect_from(addr, 44).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_by_server(&mut other, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held);

    // WebSockets count for as long as they are open.
    let mut sockets = Vec::new();
    for _ in 0..4 {
        let stream = connect_from(addr, 45).await;
        let url = format!("ws://{addr}/v2");
        let (socket, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        sockets.push(socket);
    }
    let mut fifth = connect_from(addr, 45).await;
    let _ = fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = closed_by_server(&mut fifth, Duration::from_secs(3)).await;
    assert_eq!(
        answer.as_deref(),
        Some(""),
        "refused while four WebSockets are open"
    );
    drop(sockets);
    s.stop().await;
}

#[tokio::test]
async fn a_stopping_node_reports_not_ready_but_alive() {
    let s = common::TestServer::start().await;
    let (status, body) = s.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["database"], true);
    s.server.app.begin_stopping();
    let (status, body) = s.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["stopping"], true);
    let (status, _) = s.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn metrics_are_scraped_as_prometheus_text() {
    let s = common::TestServer::start().await;
    let (_, token) = s.signup("ada").await;
    let (bob, _) = s.signup("bob").await;
    // A plain WebSocket held open, and a message stored and delivered.
    let url = format!("ws://{}/v2", s.server.addr);
    let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let path = format!("/chat/{}", s.requests_chat(&token, &bob).await);
    let sent = s
        .http
        .post(s.url(&path))
        .header("authorization", &token)
        .json(&json!({ "text": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::CREATED);

    let answer = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let kind = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/plain"), "{kind}");
    let text = answer.text().await.unwrap();
    for series in [
        "palaver_connections{transport=\"websocket\",dialect=\"hooligram\"}",
        "palaver_events_out_total{dialect=\"requests\"}",
        "palaver_delivery_seconds_bucket{le=\"0.005\"}",
        "palaver_delivery_seconds_count",
    ] {
        assert!(text.contains(series), "{series} in {text}");
    }
    drop(socket);
    s.stop().await;
}

/// Sign-ups from `http` (with `forwarded` as `X-Forwarded-For`), one after the other: the
/// statuses answered.
async fn sign_ups(
    s: &common::TestServer,
    http: &reqwest::Client,
    forwarded: Option<&str>,
    tag: &str,
    count: usize,
) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for i in 0..count {
        let mut request = http
            .post(s.url("/user/signup/"))
            .json(&sign_up_body(tag, i));
        if let Some(client) = forwarded {
            request = request.header("x-forwarded-for", client);
        }
        statuses.push(request.send().await.unwrap().status());
    }
    statuses
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted() {
    use StatusCode as S;
    let s = common::TestServer::start_configured(|config| {
        config.trusted_proxies = "127.0.0.1, 10.0.0.0/8".to_owned();
        config.sign_ups_per_minute = std::num::NonZeroU32::new(2).unwrap();
        config.max_connections_per_address = 2;
    })
    .await;
    let created_then_refused = vec![S::CREATED, S::CREATED, S::TOO_MANY_REQUESTS];

    // Through the proxy, each client has its own allowance, named by the right-most hop the
    // proxies did not add.
    let proxy = client_from(1);
    let first = sign_ups(&s, &proxy, Some("203.0.113.1"), "first", 3).await;
    assert_eq!(first, created_then_refused);
    let second = sign_ups(
        &s,
        &proxy,
        Some("6.6.6.6, 203.0.113.2, 10.0.0.5"),
        "second",
        3,
    )
    .await;
    assert_eq!(second, created_then_refused);

    // A peer that is no trusted proxy is the client, whatever it says.
    let direct = client_from(51);
    let forged = sign_ups(&s, &direct, Some("203.0.113.3"), "forged", 3).await;
    assert_eq!(forged, created_then_refused);
    let again = sign_ups(&s, &direct, Some("203.0.113.4"), "forged-again", 1).await;
    assert_eq!(again, vec![S::TOO_MANY_REQUESTS]);

    // The proxy's own connections are not capped per address (its clients are, by name).
    let _held = hold(s.server.addr, 1, b"", 5).await;
    let answer = client_from(1).get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(answer.status(), S::OK, "a sixth connection from the proxy");
    s.stop().await;
}

/// A request on a new connection from 127.0.0.`last` that starts with `header`: what the
/// server answered before closing, `None` if it kept the connection open for 3 s.
async fn after_header(addr: std::net::SocketAddr, last: u8, header: &[u8]) -> Option<String> {
    use tokio::io::AsyncWriteExt;
    let mut stream = connect_from(addr, last).await;
    stream.write_all(header).await.unwrap();
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    closed_by_server(&mut stream, Duration::from_secs(3)).await
}

#[tokio::test]
async fn a_proxy_protocol_header_names_the_client() {
    let s = common::TestServer::start_configured(|config| {
        config.trusted_proxies = "127.0.0.1".to_owned();
        config.proxy_protocol = true;
        config.max_connections_per_address = 2;
    })
    .await;
    let addr = s.server.addr;
    let v1 = |client: &str| format!("PROXY TCP4 {client} 127.0.0.1 40000 80\r\n").into_bytes();
    let ok = |answer: Option<String>| answer.is_some_and(|a| a.starts_with("HTTP/1.1 200"));

    // Version 1 and version 2 (HAProxy's `send-proxy-v2`), and a health check's LOCAL one.
    assert!(ok(after_header(addr, 1, &v1("203.0.113.20")).await));
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend([
        0x21, 0x11, 0, 12, 203, 0, 113, 21, 127, 0, 0, 1, 0x9c, 0x40, 0, 80,
    ]);
    assert!(ok(after_header(addr, 1, &v2).await));
    let local = [b"\r\n\r\n\0\r\nQUIT\n".as_slice(), &[0x20, 0x00, 0, 0]].concat();
    assert!(ok(after_header(addr, 1, &local).await));

    // Two connections held for one client through the proxy: its third is refused, another
    // client's is served.
    let held = hold(addr, 1, &v1("203.0.113.30"), 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        after_header(addr, 1, &v1("203.0.113.30")).await.as_deref(),
        Some(""),
        "the client's third connection"
    );
    assert!(ok(after_header(addr, 1, &v1("203.0.113.31")).await));

    // From the proxy, no header is no request; from anyone else, a header is not expected.
    assert_eq!(after_header(addr, 1, b"").await.as_deref(), Some(""));
    assert!(ok(after_header(addr, 52, b"").await));
    drop(held);
    s.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_at_the_header_time_out() {
    use tokio::io::AsyncWriteExt;
    let s = common::TestServer::start_configured(|config| config.header_timeout = 1).await;
    let addr = s.server.addr;

    // What the server sent before closing a connection from 127.0.0.`last` that sent `bytes`
    // and then nothing; `None` if it is still open after 4 s.
    let idle = async |last: u8, bytes: &[&[u8]]| {
        let mut stream = connect_from(addr, last).await;
        for part in bytes {
            stream.write_all(part).await.unwrap();
        }
        closed_by_server(&mut stream, Duration::from_secs(4)).await
    };
    assert!(idle(61, &[]).await.is_some(), "not a byte sent");
    // HTTP/2: the preface and settings, then no stream.
    let preface: &[&[u8]] = &[
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        &[0, 0, 0, 4, 0, 0, 0, 0, 0],
    ];
    assert!(
        idle(62, preface).await.is_some(),
        "an idle HTTP/2 connection"
    );
    // HTTP/1.1 kept alive after its answer, then idle.
    let kept = idle(63, &[b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"]).await;
    assert!(kept.is_some_and(|a| a.starts_with("HTTP/1.1 200")));

    // A WebSocket lives on its own pings, past the deadline.
    let stream = connect_from(addr, 64).await;
    let (mut socket, _) = tokio_tungstenite::client_async(format!("ws://{addr}/v2"), stream)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    use futures::SinkExt;
    socket
        .send(tokio_tungstenite::tungstenite::Message::Ping(
            vec![1].into(),
        ))
        .await
        .unwrap();
    use futures::StreamExt;
    let pong = tokio::time::timeout(Duration::from_secs(2), socket.next()).await;
    assert!(
        matches!(
            pong,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Pong(_))))
        ),
        "{pong:?}"
    );
    s.stop().await;
}
