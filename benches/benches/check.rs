//! Speed of a leak check over one million reachable blocks (the work an at-exit check
//! does), over a heap with 100k leaked blocks (classification and report building), and
//! over a heap shaped like std's backtrace cache after a panic: 40 MB in 53,000 blocks
//! whose words are mostly not heap pointers (what a test binary in which a test panicked
//! holds at exit); last, over ten million reachable blocks (a check at scale).
//!
//! ```sh
//! cargo bench -p benches --bench check
//! cargo bench -p benches --bench check -- cache    # the backtrace-cache-like heap alone
//! cargo bench -p benches --bench check -- leaked   # 100k leaked beside 1M reachable
//! ```

use std::time::Instant;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn time_check(label: &str) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let r = alloc_core::check();
        let s = t.elapsed().as_secs_f64();
        best = best.min(s);
        std::hint::black_box(&r);
        println!(
            "{label}: {:.1} ms (reachable {}, leaked {})",
            s * 1e3,
            r.summary.reachable_blocks,
            r.summary.leaked_blocks
        );
    }
    best
}

/// A node of a leaked list: 16 bytes.
struct Node {
    _next: Option<Box<Node>>,
    _value: u64,
}

#[inline(never)]
fn leak_lists(lists: usize, len: usize) {
    for i in 0..lists {
        let mut head: Option<Box<Node>> = None;
        for j in 0..len {
            head = Some(Box::new(Node { _next: head, _value: (i * len + j) as u64 }));
        }
        std::mem::forget(head);
    }
}

/// 53,000 blocks of 256 to 1,279 bytes (40 MB in all), reachable from the returned
/// vector, each word of which is, in turn: an address-like value anywhere in user space,
/// a small integer, an address inside `mapped` (not heap memory, as parsed debug info
/// points into the mapped binary), and an arbitrary 64-bit value (hashes, floats).
fn cache_like(mapped: &[u8]) -> Vec<Vec<u64>> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = mapped.as_ptr() as u64;
    (0..53_000)
        .map(|_| {
            let words = (256 + next() % 1024) as usize / 8;
            (0..words)
                .map(|i| match i % 4 {
                    0 => next() & ((1 << 47) - 1),
                    1 => next() % 100_000,
                    2 => base + next() % mapped.len() as u64,
                    _ => next(),
                })
                .collect()
        })
        .collect()
}

/// Builds the backtrace-cache-like heap, checks it (best of three, in seconds) and drops it.
fn cache_only() -> f64 {
    // A 64 MiB read-only mapping stands for the mapped binary.
    // SAFETY: a fresh anonymous private mapping; checked for failure below.
    let map = unsafe {
        libc::mmap(std::ptr::null_mut(), 64 << 20, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    };
    assert_ne!(map, libc::MAP_FAILED);
    // SAFETY: the mapping is 64 MiB long, readable, and lives to the end of the process.
    let mapped = unsafe { std::slice::from_raw_parts(map as *const u8, 64 << 20) };
    let cache = cache_like(mapped);
    let bytes: usize = cache.iter().map(|v| v.len() * 8).sum();
    time_check(&format!("{} blocks, {:.1} MB of mostly non-pointer words", cache.len(), bytes as f64 / 1e6))
}

fn main() {
    alloc_core::config::set_check_at_exit(false);
    // One phase alone, for profiling: `cache` (the cache-like heap with nothing else in
    // it) or `leaked` (100k leaked blocks beside 1M reachable ones).
    match std::env::args().skip(1).find(|a| !a.starts_with('-')).as_deref() {
        Some("cache") => {
            cache_only();
            return;
        }
        Some("leaked") => {
            let _reachable: Vec<Box<u64>> = (0..1_000_000u64).map(Box::new).collect();
            std::thread::spawn(|| leak_lists(1000, 100)).join().unwrap();
            time_check("1M reachable + 100k leaked blocks");
            return;
        }
        _ => {}
    }
    let reachable: Vec<Box<u64>> = (0..1_000_000u64).map(Box::new).collect();
    let baseline = time_check("1M reachable blocks");
    std::thread::spawn(|| leak_lists(1000, 100)).join().unwrap();
    let leaky = time_check("1M reachable + 100k leaked blocks");
    drop(reachable);
    // The 100k leaked blocks stay: this check classifies them too (`-- cache` measures
    // the cache-like heap alone).
    let cache_check = cache_only();
    println!(
        "\nbest: {:.1} ms for 1M reachable blocks; {:.1} ms with 100k leaked blocks; {:.1} ms for the backtrace-cache-like heap",
        baseline * 1e3,
        leaky * 1e3,
        cache_check * 1e3
    );
    let reachable: Vec<Box<u64>> = (0..10_000_000u64).map(Box::new).collect();
    let large = time_check("10M reachable blocks");
    drop(reachable);
    println!("best: {:.1} ms for 10M reachable blocks", large * 1e3);
}
