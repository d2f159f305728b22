//! Slow hashes of secrets (passwords, phone credentials, the operator's password): argon2 for
//! ours, run off the async workers on hashing threads of their own.
//!
//! Each argon2 hash works in 19 MiB. Allocated per hash, freed blocks stayed with the
//! allocator: 20 sign-ups in a row took the process from 26 to 351 MiB, and a burst to 473.
//! Each hashing thread now allocates its working memory once, at its first hash, and reuses it
//! for every hash after: hashing holds at most one block per thread, one thread per core.

use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;

use crate::error::{Error, Result};
use crate::store::User;

/// Jobs waiting for a hashing thread; past this a request is answered 503 at once.
const HASHING_QUEUE: usize = 64;
/// Bytes of salt in each hash (the PHC string format's recommendation).
const SALT_LEN: usize = 16;

type HashJob = Box<dyn FnOnce() + Send>;

thread_local! {
    /// A hashing thread's argon2 working memory, kept from one hash to the next.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

fn hashing_queue() -> &'static std::sync::mpsc::SyncSender<HashJob> {
    static QUEUE: OnceLock<std::sync::mpsc::SyncSender<HashJob>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (queue, jobs) = std::sync::mpsc::sync_channel::<HashJob>(HASHING_QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        for i in 0..cores {
            let jobs = jobs.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hashing-{i}"))
                .spawn(move || {
                    loop {
                        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("starting a hashing thread: {e}");
            }
        }
        queue
    })
}

/// Run one slow hash on the hashing threads.
pub(crate) async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        let _ = done.send(work());
    });
    match hashing_queue().try_send(job) {
        Ok(()) => {}
        Err(std::sync::mpsc::TrySendError::Full(_)) => {
            tracing::warn!("password hashing queue full: request refused");
            return Err(Error::Unavailable("busy; try again shortly".into()));
        }
        Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
            return Err(Error::Internal(anyhow::anyhow!("no hashing thread runs")));
        }
    }
    result.await.map_err(|e| Error::Internal(e.into()))
}

/// Run argon2 with this thread's working memory, grown (once) to what `params` need.
fn with_memory<T>(params: &Params, work: impl FnOnce(&mut [Block]) -> T) -> T {
    MEMORY.with_borrow_mut(|memory| {
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::new());
        }
        work(&mut memory[..blocks])
    })
}

/// An argon2id PHC string of `secret`, with argon2's default parameters and a fresh salt.
fn argon2_hash(secret: &[u8]) -> Result<String> {
    let fault = |e: &dyn std::fmt::Display| Error::Internal(anyhow::anyhow!("hashing: {e}"));
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut salt);
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(&params, |memory| {
        argon2.hash_password_into_with_memory(secret, &salt, &mut output, memory)
    })
    .map_err(|e| fault(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fault(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| fault(&e))?),
        hash: Some(Output::new(&output).map_err(|e| fault(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `secret` is what the PHC string `hash` was made of (compared in constant time).
fn argon2_matches(secret: &[u8], hash: &str) -> bool {
    let Ok(hash) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
        None => Version::default(),
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut output = vec![0u8; expected.len()];
    let computed = with_memory(&params, |memory| {
        argon2.hash_password_into_with_memory(secret, salt, &mut output, memory)
    });
    computed.is_ok() && Output::new(&output).is_ok_and(|output| output == *expected)
}

/// A hash no secret is known to match, verified against when the account does not exist.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        argon2_hash(&secret).unwrap_or_default()
    })
}

/// An argon2 PHC string of a secret (a password, a verification code). Hashing is
/// deliberately slow: it runs off the async workers.
pub async fn hash_secret(secret: String) -> Result<String> {
    hashing(move || argon2_hash(secret.as_bytes())).await?
}

/// Whether `secret` matches the hash. With no hash, a decoy is checked so that the answer
/// takes as long, and timing does not tell which accounts exist.
/// `user`, proven by `secret` matching the hash `stored` of theirs; a wrong secret, a user
/// with no such hash and no user at all are the same `Unauthorized`, after the same work.
pub async fn proven(
    user: Option<User>,
    secret: &str,
    stored: fn(&User) -> Option<&String>,
) -> Result<User> {
    let hash = user.as_ref().and_then(stored).cloned();
    match secret_matches(secret, hash).await? {
        true => user.ok_or(Error::Unauthorized),
        false => Err(Error::Unauthorized),
    }
}

pub async fn secret_matches(secret: &str, hash: Option<String>) -> Result<bool> {
    let secret = secret.to_owned();
    hashing(move || {
        let real = hash.is_some();
        let hash: &str = match &hash {
            Some(hash) => hash,
            None => decoy_hash(),
        };
        let matches = argon2_matches(secret.as_bytes(), hash);
        real && matches
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;

    #[test]
    fn hashes_match_their_secret_only() {
        let hash = argon2_hash(b"correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(argon2_matches(b"correct horse battery", &hash));
        assert!(!argon2_matches(b"correct horse battery!", &hash));
        assert!(!argon2_matches(b"correct horse battery", "not a hash"));
        assert_ne!(
            hash,
            argon2_hash(b"correct horse battery").unwrap(),
            "salted"
        );
    }

    #[test]
    fn hashes_made_before_still_match() {
        // As argon2's own hasher made them (every stored hash so far).
        let theirs = Argon2::default()
            .hash_password(b"123456")
            .unwrap()
            .to_string();
        assert!(argon2_matches(b"123456", &theirs));
        assert!(!argon2_matches(b"654321", &theirs));
    }

    #[test]
    fn a_thread_keeps_one_block_of_memory_for_every_hash() {
        let params = Params::default();
        let address = || MEMORY.with_borrow(|m| (m.as_ptr(), m.len()));
        argon2_hash(b"first").unwrap();
        let first = address();
        assert_eq!(first.1, params.block_count());
        for secret in [b"second", b"third!"] {
            argon2_hash(secret).unwrap();
            assert_eq!(address(), first, "the same memory, not another");
        }
    }
}
