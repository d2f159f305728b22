//! The allocator: jemalloc, set to give freed memory back to the system within a second.
//!
//! With glibc's allocator a burst of connections left what their set-up freed (requests, read
//! buffers, database answers) resident between what the connections keep: 2,000 idle
//! WebSockets held 34 kB of resident memory each while their live heap was 11 kB (heaptrack),
//! and a `malloc_trim` every 10 s brought that only to 27 kB. jemalloc keeps small objects of a
//! size together and returns whole pages as they empty: the same connections held 14.5 kB each
//! (10.7 kB once their tasks were made smaller; see the README's memory notes).
//!
//! The `jemalloc` feature is on by default; `tests/bench_heap.sh` builds without it, since
//! heaptrack follows only the system allocator.

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`; `_RJEM_MALLOC_CONF` in the environment adds to them.
/// A background thread purges, so that no allocation pays for it; freed pages go back after
/// a second (the default is ten), and at once rather than lazily (`muzzy_decay_ms:0`), so the
/// resident size is what is in use.
#[cfg(feature = "jemalloc")]
#[unsafe(export_name = "_rjem_malloc_conf")]
static OPTIONS: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";
