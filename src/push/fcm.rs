//! FCM HTTP v1: one request per device token, sent from a background worker so that no request
//! path waits on Google. The legacy API (and the `fcm` crate built on it) was shut down in 2024.
//!
//! Outcomes: 2xx is done; 404 or `UNREGISTERED` deletes the device token (the app was
//! uninstalled or the token rotated); 429 and 5xx are retried with exponential backoff,
//! honouring `Retry-After`; any other error is logged and dropped.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use bson::doc;
use futures::TryStreamExt;
use gcp_auth::{CustomServiceAccount, TokenProvider};
use mongodb::Collection;
use reqwest::StatusCode;
use rooms::{PushIntent, PushSink, PushText};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::core::object_id;
use crate::store::Device;

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Intents waiting to be sent; beyond this a burst is dropped (and logged) rather than
/// growing memory without bound.
const QUEUE: usize = 10_000;
/// Sends in flight at once.
const CONCURRENCY: usize = 32;
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct FcmConfig {
    /// A Google service-account JSON key with the Firebase Messaging role.
    pub credentials: PathBuf,
    /// `https://fcm.googleapis.com` in production; a fake in tests.
    pub base_url: String,
}

/// A push sink that queues intents for the FCM worker.
pub struct FcmPush {
    queue: mpsc::Sender<PushIntent>,
    /// Intents queued or being sent.
    pending: Arc<AtomicUsize>,
}

impl FcmPush {
    /// Read the credentials and start the worker.
    pub fn start(config: &FcmConfig, devices: Collection<Device>) -> anyhow::Result<Self> {
        let account = CustomServiceAccount::from_file(&config.credentials)
            .with_context(|| format!("reading FCM credentials {}", config.credentials.display()))?;
        let project = account
            .project_id()
            .context("the FCM credentials name no project_id")?;
        let endpoint = format!(
            "{}/v1/projects/{project}/messages:send",
            config.base_url.trim_end_matches('/')
        );
        let sender = Arc::new(Sender {
            account,
            endpoint,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()?,
            devices,
        });
        let (queue, intents) = mpsc::channel(QUEUE);
        let pending = Arc::new(AtomicUsize::new(0));
        tokio::spawn(sender.run(intents, pending.clone()));
        Ok(Self { queue, pending })
    }
}

impl PushSink for FcmPush {
    fn push(&self, intent: PushIntent) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.queue.try_send(intent) {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            metrics::counter!(crate::telemetry::PUSHES, "outcome" => "dropped").increment(1);
            tracing::warn!("push dropped: {e}");
        }
    }

    fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

struct Sender {
    account: CustomServiceAccount,
    endpoint: String,
    http: reqwest::Client,
    devices: Collection<Device>,
}

/// What one send came to.
#[derive(Debug, PartialEq)]
enum Outcome {
    Sent,
    /// The token no longer reaches a device.
    Unregistered,
    Retry(Option<Duration>),
    Failed(String),
}

impl Sender {
    async fn run(
        self: Arc<Self>,
        mut intents: mpsc::Receiver<PushIntent>,
        pending: Arc<AtomicUsize>,
    ) {
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        while let Some(intent) = intents.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let (sender, pending) = (self.clone(), pending.clone());
            tokio::spawn(async move {
                if let Err(e) = sender.deliver(&intent).await {
                    tracing::warn!(user = %intent.user, "push failed: {e:#}");
                }
                pending.fetch_sub(1, Ordering::Relaxed);
                drop(slot);
            });
        }
    }

    async fn deliver(&self, intent: &PushIntent) -> anyhow::Result<()> {
        let user = object_id(intent.user);
        let devices: Vec<Device> = self
            .devices
            .find(doc! { "user_id": user })
            .await?
            .try_collect()
            .await?;
        // One device's failure must not keep the message from the user's other devices.
        for device in devices {
            if let Err(e) = self.send_with_retries(&device, intent).await {
                tracing::warn!(user = %intent.user, device = %device.id, "push failed: {e:#}");
            }
        }
        Ok(())
    }

    async fn send_with_retries(&self, device: &Device, intent: &PushIntent) -> anyhow::Result<()> {
        let Some(text) = intent.text_for(device.dialect.as_deref()) else {
            return Ok(());
        };
        let body = message(&device.token, text);
        let outcome = self.send_until_done(device, &body).await;
        let label = match &outcome {
            Ok(true) => "sent",
            Ok(false) => "unregistered",
            Err(_) => "failed",
        };
        metrics::counter!(crate::telemetry::PUSHES, "outcome" => label).increment(1);
        outcome.map(|_| ())
    }

    /// Send `body` to the device, retrying what may pass later: whether it was delivered
    /// (false: the device is gone, and forgotten).
    async fn send_until_done(&self, device: &Device, body: &Value) -> anyhow::Result<bool> {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            match self.send(body).await? {
                Outcome::Sent => return Ok(true),
                Outcome::Unregistered => {
                    tracing::info!(device = %device.id, "FCM token unregistered; forgetting it");
                    self.devices
                        .delete_one(doc! { "_id": device.id, "token": &device.token })
                        .await?;
                    return Ok(false);
                }
                Outcome::Failed(reason) => anyhow::bail!("FCM refused the message: {reason}"),
                Outcome::Retry(after) if attempt < ATTEMPTS => {
                    tokio::time::sleep(after.unwrap_or(backoff).min(MAX_BACKOFF)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Outcome::Retry(_) => break,
            }
        }
        anyhow::bail!("FCM still unavailable after {ATTEMPTS} attempts")
    }

    async fn send(&self, body: &Value) -> anyhow::Result<Outcome> {
        let token = self
            .account
            .token(&[SCOPE])
            .await
            .context("fetching an FCM access token")?;
        let response = match self
            .http
            .post(&self.endpoint)
            .bearer_auth(token.as_str())
            .json(body)
            .send()
            .await
        {
            Ok(response) => response,
            // The network, not FCM: worth another try.
            Err(e) if e.is_timeout() || e.is_connect() => return Ok(Outcome::Retry(None)),
            Err(e) => return Err(e.into()),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs);
        let error: Value = response.json().await.unwrap_or(Value::Null);
        Ok(classify(status, retry_after, &error))
    }
}

fn classify(status: StatusCode, retry_after: Option<Duration>, error: &Value) -> Outcome {
    let unregistered = error["error"]["details"]
        .as_array()
        .is_some_and(|details| details.iter().any(|d| d["errorCode"] == "UNREGISTERED"));
    match status {
        s if s.is_success() => Outcome::Sent,
        StatusCode::NOT_FOUND => Outcome::Unregistered,
        _ if unregistered => Outcome::Unregistered,
        StatusCode::TOO_MANY_REQUESTS => Outcome::Retry(retry_after),
        s if s.is_server_error() => Outcome::Retry(retry_after),
        s => Outcome::Failed(format!(
            "{s}: {}",
            error["error"]["message"]
                .as_str()
                .unwrap_or("no reason given")
        )),
    }
}

/// The FCM v1 message for one device.
fn message(token: &str, text: &PushText) -> Value {
    json!({
        "message": {
            "token": token,
            "notification": { "title": text.title, "body": text.body },
            "data": text.data,
            "android": { "priority": "high" },
            "apns": { "headers": { "apns-priority": "10" } },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_fcm_error_model() {
        let none = Value::Null;
        assert_eq!(classify(StatusCode::OK, None, &none), Outcome::Sent);
        assert_eq!(
            classify(StatusCode::NOT_FOUND, None, &none),
            Outcome::Unregistered
        );
        let unregistered = json!({ "error": { "status": "INVALID_ARGUMENT", "details": [
            { "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED" }
        ] } });
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, None, &unregistered),
            Outcome::Unregistered
        );
        let later = Some(Duration::from_secs(3));
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, later, &none),
            Outcome::Retry(later)
        );
        assert_eq!(
            classify(StatusCode::SERVICE_UNAVAILABLE, None, &none),
            Outcome::Retry(None)
        );
        let bad = json!({ "error": { "message": "bad payload" } });
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, None, &bad),
            Outcome::Failed("400 Bad Request: bad payload".into())
        );
    }
}
