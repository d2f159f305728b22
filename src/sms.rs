//! Codes by SMS that prove a phone number: Twilio Verify v2 when configured; otherwise a
//! development mode that makes the codes here and writes them to the log.

use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use serde::Deserialize;

/// Twilio Verify's address and the service's credentials.
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    pub service_sid: String,
}

/// Digits in a code made here (Twilio's services send six by default too).
pub const CODE_DIGITS: usize = 6;

/// Who sends codes and checks them.
#[derive(Debug, Clone)]
pub enum Verifier {
    /// Twilio makes, sends and checks the codes; they never pass through here.
    Twilio {
        config: TwilioConfig,
        http: reqwest::Client,
    },
    /// No SMS service: codes are made here and logged (never for production).
    Logged,
}

/// What sending a code did.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// The service keeps the code.
    Elsewhere,
    /// This code was made here; the caller keeps it (hashed) to check what comes back.
    Here(String),
}

#[derive(Deserialize)]
struct Status {
    status: String,
}

impl Verifier {
    pub fn new(config: Option<TwilioConfig>) -> anyhow::Result<Self> {
        let Some(config) = config else {
            tracing::warn!(
                "no SMS service configured (TWILIO_*): verification codes are written to this log at WARN, as a development mode"
            );
            return Ok(Self::Logged);
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the SMS service's HTTP client")?;
        Ok(Self::Twilio { config, http })
    }

    /// Send a code to `phone` (E.164, with its `+`).
    pub async fn send(&self, phone: &str) -> anyhow::Result<Sent> {
        match self {
            Self::Logged => {
                let mut rng = rand::rng();
                let code: String = (0..CODE_DIGITS)
                    .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                    .collect();
                tracing::warn!(%phone, %code, "verification code (development mode: no SMS sent)");
                Ok(Sent::Here(code))
            }
            Self::Twilio { config, http } => {
                let url = config.url("Verifications");
                let response = http
                    .post(url)
                    .basic_auth(&config.account_sid, Some(&config.auth_token))
                    .form(&[("To", phone), ("Channel", "sms")])
                    .send()
                    .await
                    .context("asking Twilio to send a code")?;
                let status = response.status();
                if !status.is_success() {
                    let body = response.text().await.unwrap_or_default();
                    anyhow::bail!("Twilio refused to send a code ({status}): {body}");
                }
                Ok(Sent::Elsewhere)
            }
        }
    }

    /// Whether Twilio approves `code` for `phone`. Only for codes it sent.
    pub async fn approves(&self, phone: &str, code: &str) -> anyhow::Result<bool> {
        let Self::Twilio { config, http } = self else {
            anyhow::bail!("no SMS service to check a code with");
        };
        let response = http
            .post(config.url("VerificationCheck"))
            .basic_auth(&config.account_sid, Some(&config.auth_token))
            .form(&[("To", phone), ("Code", code)])
            .send()
            .await
            .context("asking Twilio to check a code")?;
        let status = response.status();
        // No pending verification for the number: expired, used, or out of attempts.
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("Twilio could not check a code ({status}): {body}");
        }
        let checked: Status = response
            .json()
            .await
            .context("reading Twilio's answer to a check")?;
        Ok(checked.status == "approved")
    }
}

impl TwilioConfig {
    fn url(&self, resource: &str) -> String {
        format!(
            "{}/v2/Services/{}/{resource}",
            self.base_url.trim_end_matches('/'),
            self.service_sid
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn codes_made_here_are_six_digits() {
        let Sent::Here(code) = Verifier::Logged.send("+6591234567").await.unwrap() else {
            panic!("a code made here is returned");
        };
        assert_eq!(code.len(), CODE_DIGITS);
        assert!(code.chars().all(|c| c.is_ascii_digit()));
    }
}
