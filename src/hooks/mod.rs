//! The hooks dialect (`hooks-backend.md`): a Django REST Framework backend's clients, with
//! its trailing slashes, integer ids and DRF error shapes. So far: accounts and tokens.

mod accounts;
pub mod wire;

use axum::Router;

use crate::core::App;

pub fn router() -> Router<App> {
    Router::new().merge(accounts::router())
}
