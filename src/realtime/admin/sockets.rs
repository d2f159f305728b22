//! A socket as the Admin UI lists it (Node's `serialize`): its id, transport, namespace, data,
//! handshake and rooms. Credentials a client sent in its handshake are never shown: the page
//! is for looking at connections, not for borrowing them.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use serde_json::{Map, Value, json};
use socketioxide::TransportType;

use super::super::Socket;
use crate::store::User;

/// Handshake headers and query parameters that carry credentials.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "authorisation",
    "cookie",
    "proxy-authorization",
];
const SECRET_QUERY: [&str; 2] = ["token", "sessionId"];
const REDACTED: &str = "[redacted]";

/// When a socket connected (kept in its extensions).
#[derive(Clone, Copy)]
pub struct Since(pub SystemTime);

pub fn transport_name(transport: TransportType) -> &'static str {
    match transport {
        TransportType::Polling => "polling",
        TransportType::Websocket => "websocket",
    }
}

/// The socket's rooms, its own (named by its id, as Socket.IO names it) first.
pub fn rooms(socket: &Socket) -> Vec<String> {
    let id = socket.id.to_string();
    let mut rooms: Vec<String> = socket
        .rooms()
        .into_iter()
        .map(|room| room.to_string())
        .filter(|room| *room != id)
        .collect();
    rooms.sort();
    rooms.insert(0, id);
    rooms
}

/// The socket as the page lists it; its data says who it is and which node holds it.
pub fn describe(socket: &Socket, server: &str) -> Value {
    let id = socket.id.to_string();
    let since = socket
        .extensions
        .get::<Since>()
        .map_or_else(SystemTime::now, |s| s.0);
    let data = match socket.extensions.get::<User>() {
        Some(user) => {
            json!({ "user": user.id.to_hex(), "username": user.username, "server": server })
        }
        None => json!({ "server": server }),
    };
    json!({
        "id": id,
        "clientId": id.chars().take(12).collect::<String>(),
        "transport": transport_name(socket.transport_type()),
        "nsp": socket.ns(),
        "data": data,
        "handshake": handshake(socket.req_parts(), since),
        "rooms": rooms(socket),
    })
}

/// What the client's connecting request said, its credentials left out.
fn handshake(parts: &Parts, since: SystemTime) -> Value {
    let address = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_string());
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let value = if SECRET_HEADERS.contains(&name.as_str()) {
            REDACTED.to_owned()
        } else {
            let values: Vec<&str> = parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            values.join(", ")
        };
        headers.insert(name.as_str().to_owned(), Value::String(value));
    }
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .map(|(key, value)| {
                let value = match SECRET_QUERY.contains(&key.as_ref()) {
                    true => REDACTED.to_owned(),
                    false => value.into_owned(),
                };
                (key.into_owned(), value)
            })
            .collect();
    let query: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let url = match pairs.is_empty() {
        true => parts.uri.path().to_owned(),
        false => {
            let mut encoded = form_urlencoded::Serializer::new(String::new());
            encoded.extend_pairs(&pairs);
            format!("{}?{}", parts.uri.path(), encoded.finish())
        }
    };
    let issued = since
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    json!({
        "address": address,
        "headers": headers,
        "query": query,
        "issued": issued,
        "secure": false,
        "time": crate::http::time::iso_millis(bson::DateTime::from_millis(issued)),
        "url": url,
        "xdomain": parts.headers.contains_key("origin"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_handshake_shows_everything_but_credentials() {
        let request = axum::http::Request::builder()
            .uri("/socket.io/?EIO=4&transport=polling&token=secret&channels=4,5")
            .header("authorisation", "secret")
            .header("cookie", "io=1")
            .header("origin", "https://app.example.com")
            .header("accept", "a")
            .header("accept", "b")
            .extension(ConnectInfo(SocketAddr::from(([10, 0, 0, 7], 4242))))
            .body(())
            .unwrap();
        let (parts, _) = request.into_parts();
        let since = UNIX_EPOCH + Duration::from_millis(1_758_505_000_123);
        let shown = handshake(&parts, since);
        assert_eq!(shown["address"], "10.0.0.7");
        assert_eq!(shown["headers"]["authorisation"], REDACTED);
        assert_eq!(shown["headers"]["cookie"], REDACTED);
        assert_eq!(shown["headers"]["accept"], "a, b");
        assert_eq!(shown["query"]["token"], REDACTED);
        assert_eq!(shown["query"]["channels"], "4,5");
        assert_eq!(
            shown["url"],
            "/socket.io/?EIO=4&transport=polling&token=%5Bredacted%5D&channels=4%2C5"
        );
        assert!(!shown.to_string().contains("secret"));
        assert_eq!(shown["issued"], 1_758_505_000_123_i64);
        assert_eq!(shown["time"], "2025-09-22T01:36:40.123Z");
        assert_eq!(shown["xdomain"], true);
    }
}
