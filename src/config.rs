//! Runtime configuration: every setting is a flag with an environment variable behind it.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::push::fcm::FcmConfig;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "palaver",
    version,
    about = "One realtime chat server, five chat protocols"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// MongoDB connection string. When unset, a local database is provisioned under DATA_DIR.
    #[arg(long, env = "MONGODB_URI")]
    pub mongodb_uri: Option<String>,

    /// Database name inside the MongoDB server.
    #[arg(long, env = "MONGODB_DATABASE", default_value = "palaver")]
    pub mongodb_database: String,

    /// Where the local database, its virtualenv and the generated JWT secret live.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Secret used to sign tokens. When unset, one is generated once and kept in DATA_DIR.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Service-account JSON key for FCM pushes. When unset, pushes are only logged.
    #[arg(long, env = "FCM_CREDENTIALS")]
    pub fcm_credentials: Option<PathBuf>,

    /// FCM API base URL.
    #[arg(
        long,
        env = "FCM_BASE_URL",
        default_value = "https://fcm.googleapis.com"
    )]
    pub fcm_base_url: String,
}

impl Config {
    pub fn fcm(&self) -> Option<FcmConfig> {
        let credentials = self.fcm_credentials.clone()?;
        Some(FcmConfig {
            credentials,
            base_url: self.fcm_base_url.clone(),
        })
    }

    /// A configuration for tests and embedding: defaults everywhere except what is given.
    pub fn for_database(mongodb_uri: &str, database: &str, data_dir: PathBuf) -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            mongodb_uri: Some(mongodb_uri.to_owned()),
            mongodb_database: database.to_owned(),
            data_dir,
            jwt_secret: Some("test-secret-not-for-production".to_owned()),
            fcm_credentials: None,
            fcm_base_url: "https://fcm.googleapis.com".to_owned(),
        }
    }
}
