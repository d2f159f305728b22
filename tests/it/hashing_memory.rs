//! Hashing secrets holds a bounded amount of memory: each hashing thread (one per core)
//! keeps one argon2 working block (19 MiB) for every hash it runs. Allocating one per hash
//! let the allocator keep them: 20 sign-ups in a row grew the process by 325 MiB.
//!
//! The test runs again in a child process of its own, so the process's growth is the hashes'
//! alone and not that of the tests running beside it.

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

/// Set in the child process, which measures.
const MEASURING: &str = "PALAVER_TEST_HASHING_ALONE";

#[test]
fn hashing_holds_one_block_per_thread_however_many_hashes_run() {
    if std::env::var_os(MEASURING).is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(measure());
        return;
    }
    let name = concat!(
        module_path!(),
        "::hashing_holds_one_block_per_thread_however_many_hashes_run"
    );
    // The test harness names a test without the crate's own name.
    let name = name.split_once("::").unwrap().1;
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(MEASURING, "1")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&child.stdout);
    println!("{printed}{}", String::from_utf8_lossy(&child.stderr));
    assert!(child.status.success(), "the measuring process failed");
    assert!(
        printed.contains("1 passed"),
        "the measuring process ran no test"
    );
}

async fn measure() {
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
