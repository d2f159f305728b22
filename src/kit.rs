//! A dialect as one value: everything `lib.rs` needs to serve it. Each dialect folder exports
//! its kit, and `lib.rs` builds the server from the table of them (`DIALECTS`).

use std::sync::Arc;

use axum::Router;

use crate::core::{App, Dialect};
use crate::realtime::SocketDialect;

pub struct Kit {
    /// How the core's events look to its clients.
    pub renderer: Arc<dyn Dialect>,
    /// Its HTTP routes, its WebSocket doors among them.
    pub routes: Router<App>,
    /// The transport its clients hear events through.
    pub clients: Clients,
}

/// How a dialect's clients are connected.
pub enum Clients {
    /// Socket.IO at `path`, where `handlers` set up each socket. Dialects on the same path
    /// share one Socket.IO server, and each of its sockets speaks all of them.
    SocketIo {
        path: &'static str,
        handlers: Arc<dyn SocketDialect>,
    },
    /// Plain WebSockets, each a session of the hub's.
    WebSocket,
}
