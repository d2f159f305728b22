//! Password accounts: sign-up with an email address, sign-in, and the checks on both.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota};

use super::Core;
use super::secrets::{hash_secret, proven};
use crate::error::{Error, Result, UniqueWrite};
use crate::store::{InsertNew, SignInField, User, UserType};

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const EMAIL_MAX_CHARS: usize = 254;

/// Passwords too common to accept, whatever else they satisfy.
const COMMON_PASSWORDS: [&str; 12] = [
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "qwerty123",
    "qwertyuiop",
    "iloveyou",
    "11111111",
    "abc12345",
    "letmein1",
];

/// Sign-in attempts allowed per account and per client address (a burst, then per minute).
const ATTEMPTS_PER_ACCOUNT: NonZeroU32 = NonZeroU32::new(5).unwrap();
const ATTEMPTS_PER_ADDRESS: NonZeroU32 = NonZeroU32::new(30).unwrap();
/// Keys kept before idle ones are dropped.
const LIMITER_KEYS: usize = 100_000;

/// Accounts one client address may create, by default: a burst, then this many a minute.
pub const SIGN_UPS_PER_MINUTE: NonZeroU32 = NonZeroU32::new(20).unwrap();

/// Guesses at passwords are slowed per account and per address, whichever runs out first;
/// new accounts, with a password (each costs a slow hash) or without, per address.
pub struct SignInLimits {
    accounts: DefaultKeyedRateLimiter<String>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    sign_ups: DefaultKeyedRateLimiter<IpAddr>,
}

impl SignInLimits {
    /// Limits with `sign_ups` new accounts per address a minute (after a burst as large).
    pub fn new(sign_ups: NonZeroU32) -> Self {
        Self {
            accounts: DefaultKeyedRateLimiter::keyed(Quota::per_minute(ATTEMPTS_PER_ACCOUNT)),
            addresses: DefaultKeyedRateLimiter::keyed(Quota::per_minute(ATTEMPTS_PER_ADDRESS)),
            sign_ups: DefaultKeyedRateLimiter::keyed(Quota::per_minute(sign_ups)),
        }
    }
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self::new(SIGN_UPS_PER_MINUTE)
    }
}

impl SignInLimits {
    fn admit(&self, email: &str, address: Option<IpAddr>) -> Result<()> {
        if self.accounts.len() > LIMITER_KEYS {
            self.accounts.retain_recent();
        }
        if self.addresses.len() > LIMITER_KEYS {
            self.addresses.retain_recent();
        }
        let by_address = address.is_none_or(|a| self.addresses.check_key(&a).is_ok());
        if !by_address || self.accounts.check_key(&email.to_owned()).is_err() {
            return Err(Error::RateLimited);
        }
        Ok(())
    }

    pub(super) fn admit_sign_up(&self, address: Option<IpAddr>) -> Result<()> {
        if self.sign_ups.len() > LIMITER_KEYS {
            self.sign_ups.retain_recent();
        }
        match address {
            Some(address) if self.sign_ups.check_key(&address).is_err() => Err(Error::RateLimited),
            _ => Ok(()),
        }
    }
}

pub struct SignUp {
    pub email: String,
    pub password: String,
    pub password2: String,
    pub user_type: Option<String>,
}

/// An email address as stored: trimmed, lowercased, one `@` with text on both sides.
pub fn valid_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    let parts: Vec<&str> = email.split('@').collect();
    let well_formed = parts.len() == 2
        && !parts[0].is_empty()
        && parts[1].contains('.')
        && !parts[1].starts_with('.')
        && !parts[1].ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed || email.chars().count() > EMAIL_MAX_CHARS {
        return Err("Enter a valid email address.".into());
    }
    Ok(email)
}

/// Django's default password rules: long enough, not only digits, not common, not the email.
pub fn password_problems(password: &str, email: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if password.chars().count() < PASSWORD_MIN_CHARS {
        problems.push(format!(
            "This password is too short. It must contain at least {PASSWORD_MIN_CHARS} characters."
        ));
    }
    if !password.is_empty() && password.chars().all(|c| c.is_ascii_digit()) {
        problems.push("This password is entirely numeric.".into());
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        problems.push("This password is too common.".into());
    }
    let local = email.split('@').next().unwrap_or_default();
    if local.chars().count() >= 3 && (lower.contains(local) || local.contains(lower.as_str())) {
        problems.push("The password is too similar to the email address.".into());
    }
    problems
}

fn user_type(raw: Option<&str>) -> Result<UserType, String> {
    match raw.map(str::trim) {
        None | Some("") | Some("Fan") => Ok(UserType::Fan),
        Some("Creator") => Ok(UserType::Creator),
        Some(other) => Err(format!("\"{other}\" is not a valid choice.")),
    }
}

impl Core {
    /// Create a password account. Every invalid field is reported at once.
    pub async fn sign_up(&self, form: SignUp, address: Option<IpAddr>) -> Result<User> {
        self.sign_in_limits.admit_sign_up(address)?;
        let mut invalid: Vec<(&'static str, String)> = Vec::new();
        let email = valid_email(&form.email).unwrap_or_else(|e| {
            invalid.push(("email", e));
            String::new()
        });
        let kind = user_type(form.user_type.as_deref()).unwrap_or_else(|e| {
            invalid.push(("user_type", e));
            UserType::Fan
        });
        if form.password != form.password2 {
            invalid.push(("password", "Password fields didn't match.".into()));
        } else {
            let problems = password_problems(&form.password, &email);
            invalid.extend(problems.into_iter().map(|p| ("password", p)));
        }
        if !invalid.is_empty() {
            return Err(Error::Fields(invalid));
        }
        let hash = hash_secret(form.password).await?;
        let username = email.split('@').next().unwrap_or_default().to_owned();
        let user = User {
            email: Some(email),
            password_hash: Some(hash),
            user_type: Some(kind),
            ..User::new(self.store.ids.next("users").await?, username)
        };
        let inserted = self.store.users.insert_new(&user, user.id).await;
        inserted.unless_duplicate()?.ok_or_else(|| {
            Error::Fields(vec![(
                "email",
                "user with this email already exists.".into(),
            )])
        })?;
        tracing::info!(user = %user.id, num = user.num, "password account created");
        Ok(user)
    }

    /// The account with this email and password; any mismatch is the same 401.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<User> {
        let email = email.trim().to_lowercase();
        self.sign_in_limits.admit(&email, address)?;
        let user = self.store.user_by(SignInField::Email, &email).await?;
        // An unknown address costs a verification too, so timing does not tell which exist.
        proven(user, password, |u| u.password_hash.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(valid_email(" Ada@Example.org ").unwrap(), "ada@example.org");
        for bad in [
            "",
            "ada",
            "@example.org",
            "ada@example",
            "ada@.org",
            "a da@example.org",
        ] {
            assert!(valid_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_follow_djangos_default_rules() {
        assert!(password_problems("correct horse battery", "ada@example.org").is_empty());
        assert_eq!(password_problems("short1", "ada@example.org").len(), 1);
        assert!(!password_problems("1234567890123", "ada@example.org").is_empty());
        assert!(!password_problems("Password123", "ada@example.org").is_empty());
        assert!(!password_problems("adalovelace", "adalovelace@example.org").is_empty());
    }

    #[test]
    fn user_types_default_to_fan() {
        assert_eq!(user_type(None), Ok(UserType::Fan));
        assert_eq!(user_type(Some("Creator")), Ok(UserType::Creator));
        assert!(user_type(Some("Admin")).is_err());
    }
}
