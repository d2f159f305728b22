//! Accounts: creation, lookup, profile updates and authentication.

use std::collections::HashMap;
use std::net::IpAddr;

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;

use rooms::Closing;

use super::Core;
use super::HubUser;
use super::tokens::TokenType;
use crate::error::{Error, Result};
use crate::store::{InsertNew, Store, User};

pub const USERNAME_MAX_CHARS: usize = 32;
pub const AVATAR_URL_MAX_CHARS: usize = 2048;

/// The system user's numeric id, reserved so the welcome chat always comes from user `1`.
pub const SYSTEM_USER_NUM: i64 = 1;
const SYSTEM_USERNAME: &str = "Dancing Lizard";
const SYSTEM_AVATAR: &str = "https://cdn.discordapp.com/attachments/706554372565237790/750705138494341200/724927315737313300.gif";

pub(super) async fn ensure_system_user(store: &Store) -> Result<User> {
    store.ids.reserve_up_to("users", SYSTEM_USER_NUM).await?;
    let system = doc! {
        "_id": ObjectId::new(),
        "username": SYSTEM_USERNAME,
        "avatar_url": SYSTEM_AVATAR,
        "token_version": 0,
        "created_at": DateTime::now(),
    };
    store
        .users
        .update_one(
            doc! { "num": SYSTEM_USER_NUM },
            doc! { "$setOnInsert": system },
        )
        .upsert(true)
        .await?;
    store
        .users
        .find_one(doc! { "num": SYSTEM_USER_NUM })
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("system user missing after upsert")))
}

/// A username as stored: trimmed, 1 to 32 characters, no control characters.
pub fn valid_username(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Error::invalid("username must not be empty"));
    }
    if name.chars().count() > USERNAME_MAX_CHARS {
        return Err(Error::invalid(format!(
            "username is longer than {USERNAME_MAX_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "username must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// An avatar URL: empty (no avatar) or an http(s) URL without spaces.
pub fn valid_avatar_url(raw: &str) -> Result<String> {
    let url = raw.trim();
    if url.is_empty() {
        return Ok(String::new());
    }
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok || url.chars().any(char::is_whitespace) || url.len() > AVATAR_URL_MAX_CHARS {
        return Err(Error::invalid(
            "avatarURL must be an http(s) URL of at most 2048 characters",
        ));
    }
    Ok(url.to_owned())
}

impl Core {
    /// A new account with no password (the channels dialect's); `address` is the client's,
    /// counted against the accounts it may create (none for fixtures).
    pub async fn create_user(&self, username: &str, address: Option<IpAddr>) -> Result<User> {
        let username = valid_username(username)?;
        self.sign_in_limits.admit_sign_up(address)?;
        let user = User::new(self.store.ids.next("users").await?, username);
        self.store.users.insert_new(&user, user.id).await?;
        tracing::info!(user = %user.id, num = user.num, "account created");
        Ok(user)
    }

    pub async fn user_by_num(&self, num: i64) -> Result<Option<User>> {
        Ok(self.store.users.find_one(doc! { "num": num }).await?)
    }

    pub async fn users_by_num(&self, nums: &[i64]) -> Result<Vec<User>> {
        let cursor = self
            .store
            .users
            .find(doc! { "num": { "$in": nums } })
            .await?;
        Ok(cursor.try_collect().await?)
    }

    pub async fn users_by_id(&self, ids: &[ObjectId]) -> Result<HashMap<ObjectId, User>> {
        let cursor = self
            .store
            .users
            .find(doc! { "_id": { "$in": ids } })
            .await?;
        let users: Vec<User> = cursor.try_collect().await?;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }

    /// Set both profile fields at once; refused when neither changes.
    pub async fn update_profile(
        &self,
        user: &User,
        username: &str,
        avatar_url: &str,
    ) -> Result<User> {
        let username = valid_username(username)?;
        let avatar_url = valid_avatar_url(avatar_url)?;
        if username == user.username && avatar_url == user.avatar_url {
            return Err(Error::NotModified(
                "nothing to update: the details are unchanged".into(),
            ));
        }
        self.store
            .users
            .update_one(
                doc! { "_id": user.id },
                doc! { "$set": { "username": &username, "avatar_url": &avatar_url } },
            )
            .await?;
        Ok(User {
            username,
            avatar_url,
            ..user.clone()
        })
    }

    /// Revoke every token the user holds, on every device, and close their live connections
    /// on every node.
    pub async fn revoke_sessions(&self, user: &User) -> Result<()> {
        self.store
            .users
            .update_one(
                doc! { "_id": user.id },
                doc! { "$inc": { "token_version": 1 } },
            )
            .await?;
        self.hub
            .close_user(user.id.hub_user(), Closing::SignedOut)
            .await;
        tracing::info!(user = %user.id, "every session revoked");
        Ok(())
    }

    /// Whether `user`'s sessions were revoked after `user` was read (when their credential
    /// was checked). A connection asks once it is where a revocation reaches it (in its
    /// account's room): one that came before is seen here, one after reaches it there, so no
    /// connection outlives a revocation whatever the order of events.
    pub async fn revoked_since(&self, user: &User) -> Result<bool> {
        let now = self
            .store
            .users
            .clone_with_type::<bson::Document>()
            .find_one(doc! { "_id": user.id })
            .projection(doc! { "token_version": 1 })
            .await?;
        let version = now
            .as_ref()
            .and_then(|u| u.get("token_version"))
            .and_then(|v| v.as_i32().map(i64::from).or_else(|| v.as_i64()));
        Ok(version != Some(i64::from(user.token_version)))
    }

    /// The user an access token belongs to, if the token is valid and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<User> {
        self.token_user(token, TokenType::Access).await
    }

    /// A fresh access token for a valid, unrevoked refresh token.
    pub async fn refresh_access(&self, refresh: &str, ttl: std::time::Duration) -> Result<String> {
        let user = self.token_user(refresh, TokenType::Refresh).await?;
        self.tokens.issue(&user, ttl)
    }

    async fn token_user(&self, token: &str, expected: TokenType) -> Result<User> {
        let claims = self.tokens.decode(token)?;
        if claims.token_type != expected {
            return Err(Error::Unauthorized);
        }
        let id = ObjectId::parse_str(&claims.sub).map_err(|_| Error::Unauthorized)?;
        let user = self.store.users.find_one(doc! { "_id": id }).await?;
        match user {
            Some(user) if user.token_version == claims.ver => Ok(user),
            _ => Err(Error::Unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_bounded() {
        assert_eq!(valid_username("  ada ").unwrap(), "ada");
        assert!(valid_username("   ").is_err());
        assert!(valid_username(&"x".repeat(33)).is_err());
        assert!(valid_username(&"é".repeat(32)).is_ok());
        assert!(valid_username("a\u{0}b").is_err());
    }

    #[test]
    fn avatar_urls_are_http_or_empty() {
        assert_eq!(valid_avatar_url("").unwrap(), "");
        assert!(valid_avatar_url("https://example.org/a.png").is_ok());
        assert!(valid_avatar_url("javascript:alert(1)").is_err());
        assert!(valid_avatar_url("https://exa mple.org").is_err());
    }
}
