//! The realtime layer, owned by no dialect: Socket.IO paths and the plain-WebSocket pump, each
//! set up once. Dialects attach to them and render the core's events; an event goes only
//! through the transport that carries its dialect (see `core::Publisher`).
//!
//! Socket.IO rooms and WebSocket sessions are this node's own: across nodes, the rooms crate
//! routes each event to the nodes holding its users. socketioxide-redis carries only what the
//! Admin UI addresses to every node's sockets; without `REDIS_URL` nothing leaves the node.

pub mod admin;
mod budget;
mod driver;
pub mod socketio;
pub mod websocket;

pub use budget::{EventBudget, spend_users};
pub use socketio::{
    Ack, DEFAULT_PATH, Handshake, IoAdapter, Joining, Socket, SocketDialect, SocketIoTransport,
    caller,
};
pub use websocket::{Close, Connection, Door, Protocol};

/// What a WebSocket reads into at a time, kept for as long as the connection lives. Chat
/// frames are a few hundred bytes, and once a frame's header is read tungstenite makes room
/// for the whole frame, so a larger one costs one more read, not a failure. tungstenite's
/// default (128 kB, zero-filled on the first read) would make each idle connection cost that
/// much; 1 kB cost 0.5 to 1 kB per connection more than this (README, "Memory per connection").
const READ_BUFFER: usize = 256;
