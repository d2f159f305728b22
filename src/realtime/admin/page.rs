//! The Admin UI's page, served at `/admin/ui/`: the official `@socket.io/admin-ui` package's
//! built page (`ui/dist`), none of it rewritten. It is fetched from npm at the first start
//! with the UI turned on (`npm pack`, the tarball's integrity checked against the one pinned
//! here) into `DATA_DIR/admin-ui/<version>/`, and served from there at every start after. A
//! node without npm can be given the same files by hand; until the page is there,
//! `/admin/ui/` answers 503 saying why.

use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use tower::ServiceExt;
use tower_http::services::ServeDir;

const PACKAGE: &str = "@socket.io/admin-ui";
const VERSION: &str = "0.5.1";
/// The package tarball's integrity, as the npm registry lists it.
const INTEGRITY: &str = "sha512-1dlGL2FGm6T+uL1e6iDvbo2eCINwvW7iVbjIblwh5kPPRM1SP8lmZrbFZf4QNJ/cqQ+JLcx49eXGM9WAB4TK7w==";
/// Where the page is, inside the package.
const PAGE_IN_PACKAGE: &str = "package/ui/dist";
/// The longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(180);

pub const PATH: &str = "/admin/ui";

enum Fetch {
    Running,
    Failed(String),
    Done,
}

pub struct Page {
    dir: PathBuf,
    fetch: RwLock<Fetch>,
}

impl Page {
    /// The page under `data_dir`, fetched in the background if it is not there yet.
    pub fn start(data_dir: &FsPath) -> Arc<Self> {
        let dir = data_dir.join("admin-ui").join(VERSION);
        let there = dir.join("index.html").is_file();
        let page = Arc::new(Self {
            dir,
            fetch: RwLock::new(if there { Fetch::Done } else { Fetch::Running }),
        });
        if !there {
            let fetching = page.clone();
            tokio::spawn(async move {
                let outcome = tokio::time::timeout(FETCH_TIMEOUT, fetch(&fetching.dir)).await;
                let outcome = outcome.unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")));
                *fetching.fetch.write().unwrap() = match outcome {
                    Ok(()) => {
                        tracing::info!(dir = %fetching.dir.display(), "the Admin UI's page is ready at {PATH}/");
                        Fetch::Done
                    }
                    Err(e) => {
                        tracing::warn!("the Admin UI's page could not be fetched from npm: {e:#}");
                        Fetch::Failed(format!("{e:#}"))
                    }
                };
            });
        }
        page
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(PATH, get(async || Redirect::permanent(&format!("{PATH}/"))))
            .route(&format!("{PATH}/"), get(serve))
            .route(&format!("{PATH}/{{*file}}"), get(serve_file))
            .with_state(self.clone())
    }
}

async fn serve_file(
    page: State<Arc<Page>>,
    Path(file): Path<String>,
    request: Request,
) -> Response {
    serve_path(&page, &format!("/{file}"), request).await
}

async fn serve(page: State<Arc<Page>>, request: Request) -> Response {
    serve_path(&page, "/", request).await
}

async fn serve_path(page: &Page, path: &str, mut request: Request) -> Response {
    let unavailable = |why: String| {
        let body = axum::Json(json!({ "message": why }));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    };
    match &*page.fetch.read().unwrap() {
        Fetch::Done => {}
        Fetch::Running => {
            return unavailable(format!(
                "the Admin UI's page is being fetched from npm ({PACKAGE}@{VERSION}); try again in a moment"
            ));
        }
        Fetch::Failed(why) => {
            return unavailable(format!(
                "the Admin UI's page could not be fetched from npm ({why}); see the README's Admin UI section"
            ));
        }
    }
    let Ok(uri) = path.parse::<Uri>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    *request.uri_mut() = uri;
    match ServeDir::new(&page.dir).oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(e) => {
            tracing::warn!("serving the Admin UI's page: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// What `npm pack --json` says of the tarball it wrote.
#[derive(Deserialize)]
struct Packed {
    filename: String,
    integrity: String,
}

/// Fetch the package with npm, check it is the one pinned here, and put its page in `dir`.
async fn fetch(dir: &FsPath) -> anyhow::Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    tokio::fs::create_dir_all(parent).await?;
    let work = parent.join(format!(".fetching-{}", std::process::id()));
    let _ = tokio::fs::remove_dir_all(&work).await;
    tokio::fs::create_dir_all(&work).await?;
    let fetched = async {
        tracing::info!("fetching the Admin UI's page from npm ({PACKAGE}@{VERSION})");
        let packed = tokio::process::Command::new("npm")
            .args([
                "pack",
                &format!("{PACKAGE}@{VERSION}"),
                "--json",
                "--silent",
            ])
            .current_dir(&work)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| anyhow::anyhow!("running npm: {e} (is Node.js installed?)"))?;
        if !packed.status.success() {
            let said = String::from_utf8_lossy(&packed.stderr);
            anyhow::bail!("npm pack failed: {}", said.trim());
        }
        let packed: Vec<Packed> = serde_json::from_slice(&packed.stdout)
            .map_err(|e| anyhow::anyhow!("reading what npm pack said: {e}"))?;
        let packed = packed
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("npm pack wrote nothing"))?;
        if packed.integrity != INTEGRITY {
            anyhow::bail!(
                "the package's integrity is {}, not the pinned {INTEGRITY}",
                packed.integrity
            );
        }
        let unpacked = tokio::process::Command::new("tar")
            .arg("-xzf")
            .arg(&packed.filename)
            .arg(PAGE_IN_PACKAGE)
            .current_dir(&work)
            .status()
            .await?;
        if !unpacked.success() {
            anyhow::bail!("tar could not unpack {}", packed.filename);
        }
        match tokio::fs::rename(work.join(PAGE_IN_PACKAGE), dir).await {
            // Another node sharing DATA_DIR put it there first.
            Err(_) if dir.join("index.html").is_file() => Ok(()),
            renamed => renamed.map_err(Into::into),
        }
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    fetched
}
