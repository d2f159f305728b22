//! Signed JWTs carrying the user id and the user's token version.
//!
//! Bumping a user's `token_version` revokes every token issued before, on every device.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a token from sign-up (or from loading fixtures) stays valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::User;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's ObjectId as hex.
    pub sub: String,
    pub ver: i32,
    pub iat: u64,
    pub exp: u64,
    /// Absent in tokens from before refresh tokens existed: those are access tokens.
    #[serde(default)]
    pub token_type: TokenType,
    /// The numeric id, as simplejwt's clients read it.
    #[serde(default)]
    pub user_id: i64,
    #[serde(default)]
    pub jti: String,
}

/// An access token opens requests; a refresh token only buys a new access token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    #[default]
    Access,
    Refresh,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(..)")
    }
}

impl Tokens {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The configured secret, or one generated once and kept (mode 0600) under `data_dir`.
    pub fn from_config(secret: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        if let Some(secret) = secret {
            return Ok(Self::new(secret.as_bytes()));
        }
        let path = data_dir.join("jwt-secret");
        let secret = match std::fs::read(&path) {
            Ok(secret) if !secret.is_empty() => secret,
            _ => {
                tracing::warn!(
                    "JWT_SECRET is not set: using a generated secret kept in {}",
                    path.display()
                );
                generate_secret(&path)?
            }
        };
        Ok(Self::new(&secret))
    }

    /// An access token.
    pub fn issue(&self, user: &User, ttl: Duration) -> Result<String> {
        self.issue_typed(user, ttl, TokenType::Access)
    }

    pub fn issue_typed(&self, user: &User, ttl: Duration, token_type: TokenType) -> Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let claims = Claims {
            sub: user.id.to_hex(),
            ver: user.token_version,
            iat: now,
            exp: now + ttl.as_secs(),
            token_type,
            user_id: user.num,
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(e.into()))
    }

    pub fn decode(&self, token: &str) -> Result<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| Error::Unauthorized)
    }

    /// An operator's session (the Socket.IO Admin UI keeps it to reconnect without asking
    /// for the password again), valid on every node. Its audience keeps it from ever passing
    /// for a user's token, and a user's token for it.
    pub fn issue_operator_session(&self, username: &str, ttl: Duration) -> Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = OperatorClaims {
            sub: username.to_owned(),
            aud: OPERATOR_AUDIENCE.to_owned(),
            iat: now,
            exp: now + ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(e.into()))
    }

    /// The operator whose session this is.
    pub fn operator_session(&self, token: &str) -> Result<String> {
        let mut validation = self.validation.clone();
        validation.set_audience(&[OPERATOR_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        jsonwebtoken::decode::<OperatorClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims.sub)
            .map_err(|_| Error::Unauthorized)
    }
}

/// Who an operator's session tokens are for.
const OPERATOR_AUDIENCE: &str = "palaver-operators";

#[derive(Debug, Serialize, Deserialize)]
struct OperatorClaims {
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
}

fn generate_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(version: i32) -> User {
        User {
            token_version: version,
            ..User::new(7, "ada".into())
        }
    }

    #[test]
    fn a_token_round_trips_its_claims() {
        let tokens = Tokens::new(b"secret");
        let ada = user(3);
        let claims = tokens
            .decode(&tokens.issue(&ada, Duration::from_secs(60)).unwrap())
            .unwrap();
        assert_eq!(claims.sub, ada.id.to_hex());
        assert_eq!(claims.ver, 3);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = Tokens::new(b"one")
            .issue(&user(0), Duration::from_secs(60))
            .unwrap();
        assert!(matches!(
            Tokens::new(b"two").decode(&token),
            Err(Error::Unauthorized)
        ));
        assert!(matches!(
            Tokens::new(b"one").decode("garbage"),
            Err(Error::Unauthorized)
        ));
    }

    #[test]
    fn operator_sessions_and_user_tokens_never_pass_for_each_other() {
        let tokens = Tokens::new(b"secret");
        let ttl = Duration::from_secs(60);
        let session = tokens.issue_operator_session("ops", ttl).unwrap();
        assert_eq!(tokens.operator_session(&session).unwrap(), "ops");
        assert!(tokens.decode(&session).is_err());
        let user_token = tokens.issue(&user(0), ttl).unwrap();
        assert!(tokens.operator_session(&user_token).is_err());
        let elsewhere = Tokens::new(b"other").issue_operator_session("ops", ttl);
        assert!(tokens.operator_session(&elsewhere.unwrap()).is_err());
    }

    #[test]
    fn the_generated_secret_is_kept_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = Tokens::from_config(None, dir.path()).unwrap();
        let token = first.issue(&user(0), Duration::from_secs(60)).unwrap();
        let mode = std::fs::metadata(dir.path().join("jwt-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Tokens::from_config(None, dir.path()).unwrap();
        assert!(again.decode(&token).is_ok());
    }
}
