//! Credentials as clients carry them, shared by the dialects and transports that read them.

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

/// A token written as `<token>` or `Bearer <token>`; `None` when there is no token in it.
pub fn strip_bearer(value: &str) -> Option<&str> {
    let value = value.trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token,
        _ if value.eq_ignore_ascii_case("bearer") => "",
        _ => value,
    };
    Some(token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::strip_bearer;

    #[test]
    fn bearer_is_optional() {
        assert_eq!(strip_bearer("abc"), Some("abc"));
        assert_eq!(strip_bearer(" Bearer xyz "), Some("xyz"));
        assert_eq!(strip_bearer("bearer xyz"), Some("xyz"));
        assert_eq!(strip_bearer("Bearer "), None);
        assert_eq!(strip_bearer(""), None);
    }
}
