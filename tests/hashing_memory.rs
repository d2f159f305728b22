//! Hashing secrets holds a bounded amount of memory: each hashing thread (one per core)
//! keeps one argon2 working block (19 MiB) for every hash it runs. Allocating one per hash
//! let the allocator keep them: 20 sign-ups in a row grew the process by 325 MiB.
//!
//! The only test in its own process, so the process's growth is the hashes' alone.

use palaver::core::secrets::{hash_secret, secret_matches};

/// Argon2's working memory at its default parameters.
const BLOCK_MIB: u64 = 19;
/// Everything else a few hundred hashes may leave behind: their strings, the runtime's own.
const SLACK_MIB: u64 = 24;

fn resident_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashing_holds_one_block_per_thread_however_many_hashes_run() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let bound = threads * BLOCK_MIB + SLACK_MIB;
    let before = resident_mib();

    // One after another, as sign-ups and sign-ins come.
    let mut hash = String::new();
    for i in 0..100 {
        hash = hash_secret(format!("secret number {i}")).await.unwrap();
    }
    assert!(
        secret_matches("secret number 99", Some(hash))
            .await
            .unwrap()
    );
    let sequential = resident_mib().saturating_sub(before);
    assert!(
        sequential <= bound,
        "100 hashes in a row grew the process by {sequential} MiB (bound {bound})"
    );

    // A burst: as many at once as the queue takes.
    let burst: Vec<_> = (0..48)
        .map(|i| tokio::spawn(hash_secret(format!("burst {i}"))))
        .collect();
    for hashed in burst {
        hashed.await.unwrap().unwrap();
    }
    let after_burst = resident_mib().saturating_sub(before);
    assert!(
        after_burst <= bound,
        "a burst of 48 grew the process by {after_burst} MiB (bound {bound})"
    );
    println!("grew {sequential} MiB after 100 in a row, {after_burst} MiB after a burst of 48");
}
