//! Palaver's integration tests, in one binary: each module is one part of the contract, and
//! `common` holds what they share. One binary, not one per file, because each links the whole
//! server: two dozen of them took most of CI's build time and half a gigabyte of disk apiece.
//!
//! Each test makes its own server on a database of its own, so they run side by side. The one
//! that reads the process's own memory measures in a child process (`hashing_memory`).

mod common;

mod channels_api;
mod chats_api;
mod chats_devices;
mod chats_fixtures;
mod concurrent_posting;
mod database_failure;
mod error_shapes;
mod fcm;
mod hashing_memory;
mod hooks_accounts;
mod hooks_examples;
mod hooks_social;
mod hooks_sockets;
mod hooligram;
mod local_database;
mod media;
mod posting_rules;
mod push_intents;
mod recovery;
mod requests_api;
mod resources;
mod sign_in_lookups;
mod websocket_liveness;
mod write_budget;
