//! Accounts known by their phone: a code sent by SMS proves the phone, and the last code
//! proved becomes what the phone's app signs in with.
//!
//! Codes cost money and are a known target of abuse, so sending is held back per phone (here,
//! in the database, for every node at once); callers hold it back per connection too.

use std::num::NonZeroU32;
use std::time::Duration;

use bson::{DateTime, doc};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::Core;
use super::secrets::{hash_secret, proven, secret_matches};
use crate::error::{Error, Result, UniqueWrite};
use crate::sms::Sent;
use crate::store::{InsertNew, SignInField, User, Verification};

/// How long a code may be submitted.
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Wrong submissions a code survives.
pub const CODE_ATTEMPTS: i32 = 5;
/// The least time between two codes to one phone...
pub const RESEND_AFTER: Duration = Duration::from_secs(30);
/// ...and the most codes to one phone in `SEND_WINDOW`.
pub const SENDS_PER_WINDOW: i32 = 5;
pub const SEND_WINDOW: Duration = Duration::from_secs(60 * 60);
/// Sign-ins tried per phone per minute (an app signs in on every connection it opens).
const SIGN_INS_PER_MINUTE: NonZeroU32 = NonZeroU32::new(20).unwrap();
/// Users with no phone are named by this country code, which no phone has, and their number.
const NO_PHONE: &str = "0";

/// Sign-ins are slowed per phone: a code of six digits must not be guessed one try at a time.
pub struct PhoneLimits {
    sign_ins: DefaultKeyedRateLimiter<String>,
}

impl Default for PhoneLimits {
    fn default() -> Self {
        Self {
            sign_ins: DefaultKeyedRateLimiter::keyed(Quota::per_minute(SIGN_INS_PER_MINUTE)),
        }
    }
}

/// A phone as stored: `<country code>.<number>`, digits only. Country codes have one to three
/// digits and none starts with 0; a number has 4 to 14, and both together at most 15 (E.164).
pub fn phone(country_code: &str, number: &str) -> Result<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(country_code) || country_code.len() > 3 || country_code.starts_with('0') {
        return Err(Error::Fields(vec![(
            "country_code",
            "must be 1 to 3 digits, not starting with 0".into(),
        )]));
    }
    if !digits(number) || !(4..=14).contains(&number.len()) {
        return Err(Error::Fields(vec![(
            "phone_number",
            "must be 4 to 14 digits".into(),
        )]));
    }
    if country_code.len() + number.len() > 15 {
        return Err(Error::Fields(vec![(
            "phone_number",
            "is too long for its country code".into(),
        )]));
    }
    Ok(format!("{country_code}.{number}"))
}

/// How a user is named among phones: their phone, or `0.<their numeric id>` when they have
/// none (an account of another dialect).
pub fn phone_name(user: &User) -> String {
    match &user.phone {
        Some(phone) => phone.clone(),
        None => format!("{NO_PHONE}.{}", user.num),
    }
}

/// The phone in international form, for the SMS service.
fn e164(phone: &str) -> String {
    format!("+{}", phone.replace('.', ""))
}

fn at(offset: Duration, sign: i64) -> DateTime {
    let millis = i64::try_from(offset.as_millis()).unwrap_or(i64::MAX);
    DateTime::from_millis(DateTime::now().timestamp_millis() + sign * millis)
}

impl Core {
    /// The user named `name` among phones (see `phone_name`), if there is one.
    pub async fn user_by_phone_name(&self, name: &str) -> Result<Option<User>> {
        if let Some(num) = name.strip_prefix(&format!("{NO_PHONE}.")) {
            return match num.parse::<i64>() {
                Ok(num) => self.user_by_num(num).await,
                Err(_) => Ok(None),
            };
        }
        self.store.user_by(SignInField::Phone, name).await
    }

    /// The user with this phone, created (not verified yet) when there is none.
    pub async fn phone_user(&self, phone: &str) -> Result<User> {
        if let Some(user) = self.store.user_by(SignInField::Phone, phone).await? {
            return Ok(user);
        }
        let user = User {
            phone: Some(phone.to_owned()),
            ..User::new(self.store.ids.next("users").await?, phone.to_owned())
        };
        match self
            .store
            .users
            .insert_new(&user, user.id)
            .await
            .unless_duplicate()?
        {
            Some(_) => {
                tracing::info!(user = %user.id, num = user.num, "phone account created");
                Ok(user)
            }
            // Created meanwhile by another request.
            None => self
                .store
                .user_by(SignInField::Phone, phone)
                .await?
                .ok_or(Error::NotFound("user")),
        }
    }

    /// The users with these names among phones; unknown phones become users who have not
    /// verified yet. A name that is neither a phone nor an existing user is not found.
    pub async fn phone_users(&self, names: &[String]) -> Result<Vec<User>> {
        let mut users = Vec::with_capacity(names.len());
        for name in names {
            let user = match self.user_by_phone_name(name).await? {
                Some(user) => user,
                None if !name.starts_with(&format!("{NO_PHONE}.")) => {
                    let (code, number) = name.split_once('.').unwrap_or((name, ""));
                    self.phone_user(&phone(code, number)?).await?
                }
                None => return Err(Error::NotFound("user")),
            };
            users.push(user);
        }
        Ok(users)
    }

    /// Send a code to the phone, creating its user if new. Refused (`RateLimited`) within
    /// `RESEND_AFTER` of the last code, and beyond `SENDS_PER_WINDOW` codes in `SEND_WINDOW`.
    /// The phone's credential, if any, stays until a code is submitted right.
    pub async fn request_code(&self, phone: &str) -> Result<()> {
        self.phone_user(phone).await?;
        self.reserve_code(phone).await?;
        let code_hash = match self.verifier.send(&e164(phone)).await? {
            Sent::Elsewhere => None,
            Sent::Here(code) => Some(hash_secret(code).await?),
        };
        let mut set = doc! { "expires_at": at(CODE_TTL, 1), "attempts": 0 };
        match code_hash {
            Some(hash) => set.insert("code_hash", hash),
            None => set.insert("code_hash", bson::Bson::Null),
        };
        self.store
            .verifications
            .update_one(doc! { "_id": phone }, doc! { "$set": set })
            .await?;
        tracing::info!(%phone, "verification code sent");
        Ok(())
    }

    /// Count a code about to be sent, if the phone may have one now. Each step is one
    /// conditional write, so nodes sending at once cannot both pass.
    async fn reserve_code(&self, phone: &str) -> Result<()> {
        let now = DateTime::now();
        let quiet = doc! { "$lt": at(RESEND_AFTER, -1) };
        let window_open = at(SEND_WINDOW, -1);
        // Within the current window, with room left.
        let counted = self
            .store
            .verifications
            .update_one(
                doc! {
                    "_id": phone,
                    "last_sent": quiet.clone(),
                    "window_start": { "$gt": window_open },
                    "sent_in_window": { "$lt": SENDS_PER_WINDOW },
                },
                doc! { "$set": { "last_sent": now }, "$inc": { "sent_in_window": 1 } },
            )
            .await?;
        if counted.matched_count == 1 {
            return Ok(());
        }
        // The window is over: a new one starts.
        let renewed = self
            .store
            .verifications
            .update_one(
                doc! {
                    "_id": phone,
                    "last_sent": quiet,
                    "window_start": { "$lte": window_open },
                },
                doc! { "$set": { "last_sent": now, "window_start": now, "sent_in_window": 1 } },
            )
            .await?;
        if renewed.matched_count == 1 {
            return Ok(());
        }
        // The phone's first code.
        let first = Verification {
            phone: phone.to_owned(),
            code_hash: None,
            expires_at: now,
            attempts: 0,
            last_sent: now,
            window_start: now,
            sent_in_window: 1,
        };
        let inserted = self.store.verifications.insert_one(&first).await;
        match inserted.unless_duplicate()? {
            Some(_) => Ok(()),
            None => {
                tracing::info!(%phone, "verification code refused: sent too often");
                Err(Error::RateLimited)
            }
        }
    }

    /// Check a code sent to the phone. Right, it becomes the phone's credential (replacing
    /// any before) and is used up; wrong, expired, or after `CODE_ATTEMPTS` wrong ones, it is
    /// `Unauthorized`. Once verified, submitting the credential itself again is right too.
    pub async fn submit_code(&self, phone: &str, code: &str) -> Result<()> {
        if code.is_empty() {
            return Err(Error::Unauthorized);
        }
        let user = self
            .store
            .user_by(SignInField::Phone, phone)
            .await?
            .ok_or(Error::Unauthorized)?;
        // One attempt is spent before the code is checked, so attempts racing on other nodes
        // are counted too.
        let pending = self
            .store
            .verifications
            .find_one_and_update(
                doc! {
                    "_id": phone,
                    "expires_at": { "$gt": DateTime::now() },
                    "attempts": { "$lt": CODE_ATTEMPTS },
                },
                doc! { "$inc": { "attempts": 1 } },
            )
            .await?;
        let right = match pending {
            Some(Verification {
                code_hash: Some(hash),
                ..
            }) => secret_matches(code, Some(hash)).await?,
            Some(_) => self.verifier.approves(&e164(phone), code).await?,
            None => false,
        };
        if !right {
            if secret_matches(code, user.phone_credential.clone()).await? {
                return Ok(());
            }
            tracing::info!(%phone, "verification code refused");
            return Err(Error::Unauthorized);
        }
        let credential = hash_secret(code.to_owned()).await?;
        self.store
            .users
            .update_one(
                doc! { "_id": user.id },
                doc! { "$set": { "phone_credential": credential } },
            )
            .await?;
        // Used up: expired at once, while the counts of codes sent stay.
        self.store
            .verifications
            .update_one(
                doc! { "_id": phone },
                doc! { "$set": { "expires_at": DateTime::now() }, "$unset": { "code_hash": "" } },
            )
            .await?;
        tracing::info!(%phone, user = %user.id, "phone verified");
        Ok(())
    }

    /// The user of a verified phone whose credential is `code`. An empty code, an unknown or
    /// unverified phone and a wrong code are all `Unauthorized`, as is trying too often.
    pub async fn phone_sign_in(&self, phone: &str, code: &str) -> Result<User> {
        if self.phone_limits.sign_ins.len() > 100_000 {
            self.phone_limits.sign_ins.retain_recent();
        }
        if self
            .phone_limits
            .sign_ins
            .check_key(&phone.to_owned())
            .is_err()
        {
            tracing::info!(%phone, "phone sign-in refused: tried too often");
            return Err(Error::Unauthorized);
        }
        if code.is_empty() {
            return Err(Error::Unauthorized);
        }
        let user = self.store.user_by(SignInField::Phone, phone).await?;
        proven(user, code, |u| u.phone_credential.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_digits_joined_by_a_dot() {
        assert_eq!(phone("65", "91234567").unwrap(), "65.91234567");
        assert_eq!(e164("65.91234567"), "+6591234567");
        for (code, number) in [
            ("+65", "91234567"),
            ("065", "91234567"),
            ("6555", "91234567"),
            ("65", "9123 4567"),
            ("65", "123"),
            ("", "91234567"),
            ("999", "1234567890123"),
        ] {
            assert!(phone(code, number).is_err(), "{code}.{number}");
        }
    }

    #[test]
    fn users_without_a_phone_are_named_by_number() {
        let mut user = User::new(42, "ada".into());
        assert_eq!(phone_name(&user), "0.42");
        user.phone = Some("65.91234567".into());
        assert_eq!(phone_name(&user), "65.91234567");
    }
}
