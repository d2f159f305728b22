//! The chats dialect (`community-chats.txt`): one-to-one and group chats, communities,
//! participants and admins. This module grows endpoint by endpoint; so far it holds the
//! dialect's wire conventions and push device registration.

mod devices;
pub mod wire;

use axum::Router;

use crate::core::App;

pub fn router() -> Router<App> {
    Router::new().merge(devices::router())
}
