//! Credentials as HTTP carries them, shared by the dialects that use standard headers.

use axum::http::{HeaderMap, header};

/// The token of `Authorization: Bearer <token>`, if that is what the request carries.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}
