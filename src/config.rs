//! Runtime configuration: every setting is a flag with an environment variable behind it.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::Parser;

use crate::core::accounts::SIGN_UPS_PER_MINUTE;
use crate::media::S3Config;
use crate::push::fcm::FcmConfig;
use crate::realtime::admin::OperatorConfig;
use crate::sms::TwilioConfig;

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

    /// A fixtures file to load at start-up (once: a database that has them is left alone).
    #[arg(long, env = "LOAD_FIXTURES")]
    pub load_fixtures: Option<PathBuf>,

    /// Redis shared by every node: Socket.IO rooms, WebSocket sessions, presence and cache
    /// changes span the nodes through it. When unset, this node runs alone.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Messages from other nodes (through Redis) that this node holds while its connections
    /// take them. Past it the node has fallen behind: it closes the connections of the users
    /// whose messages it could not take, so that their clients reconnect and catch up.
    #[arg(
        long,
        env = "REDIS_BACKLOG",
        default_value_t = rooms::routing::BACKLOG,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub redis_backlog: usize,

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

    /// S3 bucket for uploaded photos. When unset, uploads are refused.
    #[arg(long, env = "S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// S3-compatible endpoint (MinIO, moto, ...); unset for AWS.
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    #[arg(long, env = "S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,

    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,

    /// Public base URL of the bucket's objects (e.g. a CDN). Default: the bucket's own URL.
    #[arg(long, env = "S3_PUBLIC_URL")]
    pub s3_public_url: Option<String>,

    /// Twilio account for phone verification codes (Verify v2). When the three TWILIO_*
    /// settings are unset, codes are written to the log instead (development mode).
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,

    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,

    /// The Verify service that sends the codes (its SID starts with `VA`).
    #[arg(long, env = "TWILIO_VERIFY_SERVICE_SID")]
    pub twilio_verify_service_sid: Option<String>,

    /// Seconds a client has to send a request's headers, and then its whole body, before the
    /// connection is closed (slow clients cannot hold connections).
    #[arg(long, env = "HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,

    #[arg(long, env = "REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,

    /// Open connections allowed from one client address.
    #[arg(long, env = "MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1000)]
    pub max_connections_per_address: usize,

    /// Proxies (balancers) whose word on the client's address is taken: addresses and CIDR
    /// blocks, comma-separated. Empty: every peer is the client itself.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// Seconds a stopping node keeps serving, new connections included, while `/readyz`
    /// answers 503: time for a balancer's health checks to take it out of rotation before it
    /// stops accepting, so that no client is sent to a node that refuses it.
    #[arg(long, env = "DRAIN_TIME", default_value_t = 0.0)]
    pub drain_time: f64,

    /// Whether the trusted proxies start each connection with a PROXY protocol header (v1 or
    /// v2) naming the client, as HAProxy's `send-proxy-v2` does. Otherwise they name it in
    /// `X-Forwarded-For` or `Forwarded`.
    #[arg(long, env = "PROXY_PROTOCOL", default_value_t = false)]
    pub proxy_protocol: bool,

    /// Accounts one client address may create a minute, after a burst as large: password
    /// sign-ups and accounts without a password alike.
    #[arg(long, env = "SIGN_UPS_PER_MINUTE", default_value_t = SIGN_UPS_PER_MINUTE)]
    pub sign_ups_per_minute: NonZeroU32,

    /// Origins whose web pages may call every door (REST, Socket.IO, WebSockets), with
    /// credentials: a comma-separated list such as `https://app.example.com`, or `*` for any.
    /// A page on the server's own origin is always let in.
    #[arg(long, env = "CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,

    /// The operator of the Socket.IO Admin UI. With ADMIN_PASSWORD_HASH, it turns on an
    /// `/admin` namespace on each Socket.IO path and the UI's page at `/admin/ui/`.
    #[arg(long, env = "ADMIN_USERNAME")]
    pub admin_username: Option<String>,

    /// The operator's password as a bcrypt hash (`$2b$10$...`), as `@socket.io/admin-ui`
    /// takes it.
    #[arg(long, env = "ADMIN_PASSWORD_HASH", hide_env_values = true)]
    pub admin_password_hash: Option<String>,

    /// Twilio Verify's API base URL.
    #[arg(
        long,
        env = "TWILIO_BASE_URL",
        default_value = "https://verify.twilio.com"
    )]
    pub twilio_base_url: String,
}

impl Config {
    pub fn fcm(&self) -> Option<FcmConfig> {
        let credentials = self.fcm_credentials.clone()?;
        Some(FcmConfig {
            credentials,
            base_url: self.fcm_base_url.clone(),
        })
    }

    pub fn twilio(&self) -> anyhow::Result<Option<TwilioConfig>> {
        let settings = (
            self.twilio_account_sid.clone(),
            self.twilio_auth_token.clone(),
            self.twilio_verify_service_sid.clone(),
        );
        match settings {
            (None, None, None) => Ok(None),
            (Some(account_sid), Some(auth_token), Some(service_sid)) => Ok(Some(TwilioConfig {
                base_url: self.twilio_base_url.clone(),
                account_sid,
                auth_token,
                service_sid,
            })),
            _ => anyhow::bail!(
                "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_VERIFY_SERVICE_SID go together: set all three or none"
            ),
        }
    }

    /// The Admin UI's operator, when both settings are given.
    pub fn admin(&self) -> anyhow::Result<Option<OperatorConfig>> {
        match (&self.admin_username, &self.admin_password_hash) {
            (None, None) => Ok(None),
            (Some(username), Some(password_hash)) => {
                if username.trim().is_empty() {
                    anyhow::bail!("ADMIN_USERNAME is empty");
                }
                password_hash.parse::<bcrypt::HashParts>().map_err(|e| {
                    anyhow::anyhow!("ADMIN_PASSWORD_HASH must be a bcrypt hash ($2b$...): {e}")
                })?;
                Ok(Some(OperatorConfig {
                    username: username.clone(),
                    password_hash: password_hash.clone(),
                }))
            }
            _ => anyhow::bail!(
                "ADMIN_USERNAME and ADMIN_PASSWORD_HASH go together: set both or neither"
            ),
        }
    }

    pub fn s3(&self) -> anyhow::Result<Option<S3Config>> {
        let Some(bucket) = self.s3_bucket.clone() else {
            return Ok(None);
        };
        let (Some(access_key_id), Some(secret_access_key)) = (
            self.s3_access_key_id.clone(),
            self.s3_secret_access_key.clone(),
        ) else {
            anyhow::bail!("S3_BUCKET is set but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not");
        };
        let public_url = self
            .s3_public_url
            .clone()
            .unwrap_or_else(|| match &self.s3_endpoint {
                Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
                None => format!("https://{bucket}.s3.{}.amazonaws.com", self.s3_region),
            });
        Ok(Some(S3Config {
            bucket,
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id,
            secret_access_key,
            public_url,
        }))
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
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".to_owned(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_public_url: None,
            load_fixtures: None,
            redis_url: None,
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_verify_service_sid: None,
            twilio_base_url: "https://verify.twilio.com".to_owned(),
            header_timeout: 10,
            request_timeout: 30,
            max_connections_per_address: 1000,
            sign_ups_per_minute: SIGN_UPS_PER_MINUTE,
            trusted_proxies: String::new(),
            drain_time: 0.0,
            redis_backlog: rooms::routing::BACKLOG,
            proxy_protocol: false,
            cors_origins: "*".to_owned(),
            admin_username: None,
            admin_password_hash: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_holds_at_least_one_message() {
        let parse = |backlog: &str| Config::try_parse_from(["palaver", "--redis-backlog", backlog]);
        assert!(parse("0").is_err(), "a channel of no room cannot be made");
        assert_eq!(parse("1").unwrap().redis_backlog, 1);
        assert_eq!(
            Config::try_parse_from(["palaver"]).unwrap().redis_backlog,
            rooms::routing::BACKLOG
        );
    }
}
