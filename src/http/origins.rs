//! Which web pages may call the server: one policy (`CORS_ORIGINS`) for every door, REST,
//! Socket.IO's polling on each path and every WebSocket upgrade. Browsers enforce CORS on
//! what a page may read; a WebSocket has no CORS at all, and a long-poll's request is made
//! whatever its answer says, so a page from an origin that is not let in is refused here,
//! before any door sees it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::cors::{AllowCredentials, AllowHeaders, AllowOrigin, CorsLayer};

/// How long a browser may reuse a preflight's answer (Chromium caps it at two hours).
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3600);

/// The origins let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// Any page (the default: existing apps keep working wherever they are served from).
    Any,
    /// Only these, as `scheme://host[:port]`, lowercased; and the server's own origin.
    Listed(Vec<String>),
}

impl Origins {
    /// `*`, or a comma-separated list of origins such as `https://app.example.com`.
    pub fn parse(setting: &str) -> anyhow::Result<Self> {
        let setting = setting.trim();
        if setting == "*" {
            return Ok(Self::Any);
        }
        let listed = setting
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(normalized)
            .collect::<anyhow::Result<Vec<_>>>()?;
        if listed.is_empty() {
            anyhow::bail!("CORS_ORIGINS is empty: list origins, or give `*` for any");
        }
        Ok(Self::Listed(listed))
    }

    /// Whether a request carrying `origin` is let in. A page on the origin the request is
    /// addressed to (`host`) always is: that is no cross-origin call at all (the Admin UI
    /// served here, or a mobile WebSocket library that sends its own URL's origin).
    pub fn admits(&self, origin: &HeaderValue, host: Option<&str>) -> bool {
        let Self::Listed(listed) = self else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.to_ascii_lowercase();
        if listed.contains(&origin) {
            return true;
        }
        let authority = origin.split_once("://").map(|(_, authority)| authority);
        authority.is_some_and(|a| host.is_some_and(|h| h.eq_ignore_ascii_case(a)))
    }

    /// The CORS answers for the origins let in: their origin echoed with credentials allowed
    /// (socket.io-client 2.x polls with `withCredentials`), every header a preflight asks
    /// for (`Authorisation`, `channels`, an app's `extraHeaders`), answers cached, and
    /// `expose` readable by the page.
    pub fn cors(&self, expose: Vec<HeaderName>) -> CorsLayer {
        let allowed = match self {
            Self::Any => AllowOrigin::mirror_request(),
            Self::Listed(listed) => {
                let listed: Arc<[String]> = listed.clone().into();
                AllowOrigin::predicate(move |origin, _| {
                    origin
                        .to_str()
                        .is_ok_and(|o| listed.contains(&o.to_ascii_lowercase()))
                })
            }
        };
        CorsLayer::new()
            .allow_origin(allowed)
            .allow_credentials(AllowCredentials::yes())
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(expose)
            .max_age(PREFLIGHT_MAX_AGE)
    }
}

/// `scheme://host[:port]` as browsers send it in `Origin`.
fn normalized(origin: &str) -> anyhow::Result<String> {
    let uri: Uri = origin
        .parse()
        .map_err(|e| anyhow::anyhow!("CORS_ORIGINS: {origin:?} is not an origin: {e}"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        anyhow::bail!("CORS_ORIGINS: {origin:?} is not an origin such as https://app.example.com");
    };
    let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/");
    if !matches!(scheme, "http" | "https") || !bare || authority.as_str().contains('@') {
        anyhow::bail!("CORS_ORIGINS: {origin:?} is not an origin such as https://app.example.com");
    }
    Ok(format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// Refuse (403) a request from a page on an origin that is not let in, whatever door it
/// knocks at. Requests with no `Origin` (native apps, servers) are not a page's.
pub async fn refuse_foreign(
    State(origins): State<Arc<Origins>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(origin) = request.headers().get(ORIGIN) {
        let host = request
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        if !origins.admits(origin, host) {
            tracing::info!(
                ?origin,
                path = request.uri().path(),
                "refused: origin not in CORS_ORIGINS"
            );
            let body = json!({ "message": "this origin is not allowed (CORS_ORIGINS)" });
            return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(origin: &str) -> HeaderValue {
        HeaderValue::from_str(origin).unwrap()
    }

    #[test]
    fn any_lets_every_page_in() {
        let any = Origins::parse(" * ").unwrap();
        assert_eq!(any, Origins::Any);
        assert!(any.admits(&value("https://evil.example"), Some("chat.example.com")));
    }

    #[test]
    fn a_list_lets_in_its_origins_and_the_servers_own() {
        let listed = Origins::parse("https://App.example.com, http://localhost:5173/,").unwrap();
        assert_eq!(
            listed,
            Origins::Listed(vec![
                "https://app.example.com".into(),
                "http://localhost:5173".into()
            ])
        );
        let host = Some("chat.example.com");
        assert!(listed.admits(&value("https://app.example.com"), host));
        assert!(listed.admits(&value("HTTP://LOCALHOST:5173"), host));
        assert!(!listed.admits(&value("http://localhost:5174"), host));
        assert!(!listed.admits(&value("https://app.example.com.evil.example"), host));
        assert!(!listed.admits(&value("null"), host));
        // Its own origin, whatever the scheme the balancer took off.
        assert!(listed.admits(&value("https://chat.example.com"), host));
        assert!(!listed.admits(&value("https://chat.example.com"), None));
    }

    #[test]
    fn only_origins_can_be_listed() {
        for bad in [
            "",
            " , ",
            "app.example.com",
            "ftp://app.example.com",
            "https://app.example.com/path",
            "https://app.example.com/?q",
            "https://user@app.example.com",
        ] {
            assert!(Origins::parse(bad).is_err(), "{bad:?} was taken");
        }
    }
}
