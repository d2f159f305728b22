use clap::Parser;
use palaver::Server;
use palaver::config::Config;
use palaver::store::Store;
use palaver::store::local::LocalDatabase;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // An event a handler's extractor refuses (not signed in, over its budget) is answered and
    // logged by Palaver at debug; socketioxide would log each one again as an error.
    let default = "info,socketioxide::handler::message=off";
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .init();
    let config = Config::parse();

    let local = match &config.mongodb_uri {
        Some(_) => None,
        None => Some(LocalDatabase::start(&config.data_dir).await?),
    };
    let uri = config
        .mongodb_uri
        .as_deref()
        .or(local.as_ref().map(|l| l.uri.as_str()));
    let result = run(&config, uri.unwrap_or_default()).await;
    if let Some(local) = local {
        local.stop().await;
    }
    result
}

async fn run(config: &Config, uri: &str) -> anyhow::Result<()> {
    let store = Store::connect(uri, &config.mongodb_database).await?;
    let mut server = Server::start(config, store).await?;
    if let Some(path) = &config.load_fixtures {
        for user in palaver::fixtures::load(&server.app, path).await? {
            let token = server
                .app
                .tokens
                .issue(&user, palaver::core::tokens::TOKEN_TTL)?;
            tracing::info!(user = %user.id, username = %user.username, %token, "fixture user");
        }
    }
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; shutting down"),
        _ = terminate.recv() => tracing::info!("terminated; shutting down"),
        result = server.wait() => return result,
    }
    server.stop().await
}
