//! Shared helpers: a Palaver server on a fresh database of the test MongoDB server.

use std::sync::{Arc, Mutex};

use palaver::Server;
use palaver::config::Config;
use palaver::push::LogPushSink;
use palaver::store::Store;
use reqwest::StatusCode;
use rooms::{PushIntent, PushSink};
use serde_json::{Value, json};

pub struct TestServer {
    pub server: Server,
    pub base: String,
    pub http: reqwest::Client,
    pub database: String,
    _data_dir: tempfile::TempDir,
}

/// Keeps every push intent, to see who would have been pushed.
#[derive(Default)]
pub struct RecordingPush(pub Mutex<Vec<PushIntent>>);

impl PushSink for RecordingPush {
    fn push(&self, intent: PushIntent) {
        self.0.lock().unwrap().push(intent);
    }
}

impl RecordingPush {
    pub fn take(&self) -> Vec<PushIntent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

pub struct Member {
    pub id: String,
    pub token: String,
    pub user: palaver::store::User,
}

/// A WebSocket client connection, as the hooks dialect's apps open them.
pub type WsClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Open `path` (e.g. `/ws/notification/`) with `?token=`; the upgrade must be accepted.
pub async fn ws_open(ts: &TestServer, path: &str, token: &str) -> WsClient {
    let url = format!("ws://{}{path}?token={token}", ts.server.addr);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("the upgrade is accepted")
        .0
}

/// The next text frame, as JSON, within 5 s.
pub async fn ws_next(socket: &mut WsClient) -> Value {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .unwrap();
        match frame {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(close) => panic!("closed: {close:?}"),
            _ => continue,
        }
    }
}

pub const HOOKS_PASSWORD: &str = "correct horse battery";

/// A signed-in hooks account: its integer id and tokens.
pub struct HooksAccount {
    pub num: i64,
    pub access: String,
    pub refresh: String,
}

/// A test image from `fixtures/images/`.
/// A port nobody on this machine listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/images/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub fn new_database_name() -> String {
    format!("test_{}", bson::oid::ObjectId::new().to_hex())
}

/// The recording Twilio Verify stand-in (tests/js/fake-sms.mjs) started by tests/run.sh.
pub fn sms_fake_url() -> String {
    std::env::var("FAKE_SMS_URL").expect(
        "FAKE_SMS_URL is not set: run the tests with tests/run.sh, which starts the SMS stand-in",
    )
}

pub fn mongodb_uri() -> String {
    std::env::var("TEST_MONGODB_URI").expect(
        "TEST_MONGODB_URI is not set: run the tests with tests/run.sh, which starts a database",
    )
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_on(&new_database_name()).await
    }

    /// A server on an existing database, e.g. to see what survives a restart.
    pub async fn start_on(database: &str) -> Self {
        Self::start_with(&mongodb_uri(), database, Arc::new(LogPushSink)).await
    }

    /// A server on a fresh database with a configuration adjusted by `adjust`.
    pub async fn start_configured(adjust: impl FnOnce(&mut Config)) -> Self {
        let database = new_database_name();
        let data_dir = tempfile::tempdir().unwrap();
        let mut config =
            Config::for_database(&mongodb_uri(), &database, data_dir.path().to_path_buf());
        adjust(&mut config);
        let store = Store::connect(&mongodb_uri(), &database).await.unwrap();
        let server = Server::start(&config, store).await.unwrap();
        let base = format!("http://{}", server.addr);
        Self {
            server,
            base,
            http: reqwest::Client::new(),
            database,
            _data_dir: data_dir,
        }
    }

    /// A server storing photos in a fresh bucket of the test S3 (moto).
    pub async fn with_s3() -> Self {
        let endpoint = std::env::var("TEST_S3_ENDPOINT")
            .expect("TEST_S3_ENDPOINT is not set: run tests/run.sh");
        let bucket = format!("palaver-{}", bson::oid::ObjectId::new().to_hex());
        Self::start_configured(|config| {
            config.s3_bucket = Some(bucket);
            config.s3_endpoint = Some(endpoint);
            config.s3_access_key_id = Some("test".into());
            config.s3_secret_access_key = Some("test".into());
        })
        .await
    }

    /// A server sending verification codes through the test's Twilio Verify stand-in.
    pub async fn with_sms() -> Self {
        let url = sms_fake_url();
        Self::start_configured(|config| {
            config.twilio_account_sid = Some("AC-test".into());
            config.twilio_auth_token = Some("test-token".into());
            config.twilio_verify_service_sid = Some("VA-test".into());
            config.twilio_base_url = url;
        })
        .await
    }

    /// A server on any MongoDB, with pushes going to `push`.
    pub async fn start_with(uri: &str, database: &str, push: Arc<dyn PushSink>) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let config = Config::for_database(uri, database, data_dir.path().to_path_buf());
        let store = Store::connect(uri, database).await.unwrap();
        let server = Server::start_with_push(&config, store, push).await.unwrap();
        let base = format!("http://{}", server.addr);
        Self {
            server,
            base,
            http: reqwest::Client::new(),
            database: database.to_owned(),
            _data_dir: data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST a JSON body, optionally with a token; returns the status and the JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.header("Authorisation", token);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.header("Authorisation", token);
        }
        read(request.send().await.unwrap()).await
    }

    /// The channels spec's refusals: no token is 400 and `bad_token` is 401, for `GET path`, or
    /// for `POST path` when a body is given.
    pub async fn assert_token_required(&self, path: &str, body: Option<Value>, bad_token: &str) {
        for (token, expected) in [
            (None, StatusCode::BAD_REQUEST),
            (Some(bad_token), StatusCode::UNAUTHORIZED),
        ] {
            let (status, _) = match &body {
                Some(body) => self.post(path, token, body.clone()).await,
                None => self.get(path, token).await,
            };
            assert_eq!(status, expected, "{path} with token {token:?}");
        }
    }

    /// Create an account; returns (id, token).
    pub async fn signup(&self, username: &str) -> (String, String) {
        let (status, body) = self
            .post("/new", None, json!({ "username": username }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// The core's user behind a channels numeric id.
    pub async fn user(&self, num: &str) -> palaver::store::User {
        let num = num.parse().expect("a numeric id");
        self.server
            .app
            .user_by_num(num)
            .await
            .unwrap()
            .expect("the user exists")
    }

    pub async fn create_channel(&self, token: &str, to: &str) -> String {
        let (status, body) = self
            .post(
                "/create-channel",
                Some(token),
                json!({ "to": to, "type": 1 }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["channel_id"].as_str().unwrap().to_owned()
    }

    /// A request in the chats dialect's way: `Authorization: Bearer`, JSON in and out.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    /// The one-to-one chat `token`'s user opens with user `other` (a numeric id) through the
    /// requests dialect: its 24-hex id.
    pub async fn requests_chat(&self, token: &str, other: &str) -> String {
        let chat: Value = self
            .http
            .post(self.url("/chat"))
            .header("authorization", token)
            .json(&json!({ "userId": other.parse::<i64>().unwrap() }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        chat["id"].as_str().unwrap().to_owned()
    }

    /// An account for the chats dialect: its 24-hex id and its token.
    pub async fn member(&self, username: &str) -> Member {
        let (num, token) = self.signup(username).await;
        let user = self.user(&num).await;
        Member {
            id: user.id.to_hex(),
            token,
            user,
        }
    }

    /// A request as the hooks dialect's clients make it: Bearer token, JSON in and out (an
    /// empty body reads as null).
    pub async fn hooks(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        if text.is_empty() {
            return (status, Value::Null);
        }
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:?}"));
        (status, body)
    }

    /// A hooks password account, signed in.
    pub async fn hooks_account(&self, email: &str, user_type: &str) -> HooksAccount {
        let password = HOOKS_PASSWORD;
        let body = json!({
            "email": email, "password": password, "password2": password, "user_type": user_type,
        });
        let (status, body) = self
            .hooks(reqwest::Method::POST, "/user/signup/", None, Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let body = json!({ "email": email, "password": password });
        let (status, body) = self
            .hooks(reqwest::Method::POST, "/user/signin/", None, Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        HooksAccount {
            num: body["user"]["user_id"].as_i64().unwrap(),
            access: body["access"].as_str().unwrap().to_owned(),
            refresh: body["refresh"].as_str().unwrap().to_owned(),
        }
    }

    /// Two hooks accounts whose like was confirmed (saliu, a Fan, and rebecca, a Creator).
    pub async fn confirmed_pair(&self) -> (HooksAccount, HooksAccount) {
        let saliu = self.hooks_account("saliu@example.org", "Fan").await;
        let rebecca = self.hooks_account("rebecca@example.org", "Creator").await;
        let like = json!({ "like": saliu.num });
        let path = "/follow/like/";
        let (_, like) = self
            .hooks(
                reqwest::Method::POST,
                path,
                Some(&rebecca.access),
                Some(like),
            )
            .await;
        let answer = json!({ "like_instance": like["id"], "action": "accept" });
        let path = "/follow/like/respond/";
        let (status, _) = self
            .hooks(
                reqwest::Method::POST,
                path,
                Some(&saliu.access),
                Some(answer),
            )
            .await;
        assert!(status.is_success());
        (saliu, rebecca)
    }

    pub async fn stop(self) {
        self.server.stop().await.unwrap();
    }
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:?}"));
    (status, body)
}
