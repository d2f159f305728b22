//! Credentials as clients carry them: where a token may be, shared by every dialect's requests
//! and connections.

use axum::http::HeaderMap;
use serde_json::Value;

/// One place a dialect's clients put their token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenForm {
    /// `<header>: Bearer <token>`.
    Bearer(&'static str),
    /// `<header>: <token>`, with or without a `Bearer ` prefix.
    Raw(&'static str),
    /// `?<name>=<token>`.
    Query(&'static str),
    /// A Socket.IO handshake's `auth.token` (socket.io-client 3 and later).
    Auth,
}

/// The token in the first of `forms` that holds one.
pub fn token(
    forms: &[TokenForm],
    headers: &HeaderMap,
    query: Option<&str>,
    auth: Option<&Value>,
) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    forms.iter().find_map(|form| match form {
        TokenForm::Bearer(name) => header(name)
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .map(str::to_owned),
        TokenForm::Raw(name) => header(name).and_then(strip_bearer).map(str::to_owned),
        TokenForm::Query(name) => form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| strip_bearer(&v).map(str::to_owned)),
        TokenForm::Auth => auth
            .and_then(|a| a.get("token"))
            .and_then(Value::as_str)
            .and_then(strip_bearer)
            .map(str::to_owned),
    })
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
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    #[test]
    fn bearer_is_optional_in_raw_forms() {
        assert_eq!(strip_bearer("abc"), Some("abc"));
        assert_eq!(strip_bearer(" Bearer xyz "), Some("xyz"));
        assert_eq!(strip_bearer("bearer xyz"), Some("xyz"));
        assert_eq!(strip_bearer("Bearer "), None);
        assert_eq!(strip_bearer(""), None);
    }

    #[test]
    fn each_form_is_looked_at_in_order() {
        let mut headers = HeaderMap::new();
        headers.insert("authorisation", HeaderValue::from_static("raw"));
        headers.insert("authorization", HeaderValue::from_static("Bearer b"));
        let auth = json!({ "token": "from-auth" });
        let query = Some("token=from-query");
        let all = [
            TokenForm::Auth,
            TokenForm::Raw("authorisation"),
            TokenForm::Query("token"),
        ];
        let found = |forms: &[TokenForm]| token(forms, &headers, query, Some(&auth));
        assert_eq!(found(&all).as_deref(), Some("from-auth"));
        assert_eq!(found(&all[1..]).as_deref(), Some("raw"));
        assert_eq!(found(&all[2..]).as_deref(), Some("from-query"));
        assert_eq!(
            found(&[TokenForm::Bearer("authorization")]).as_deref(),
            Some("b")
        );
        // A raw token is not a Bearer one.
        assert_eq!(found(&[TokenForm::Bearer("authorisation")]), None);
        assert_eq!(token(&all, &HeaderMap::new(), None, None), None);
    }
}
