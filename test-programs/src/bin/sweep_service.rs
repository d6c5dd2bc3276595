//! A service-like program under leak sweeps: every 50 ms it handles a "request" that
//! keeps some blocks (reachable from a global cache), frees others, and leaks one
//! 3333-byte block on a worker thread that then ends (the cache blocks are 2222 bytes). Run with `HEAPSWEEP=sweep=...`
//! and/or `sweep_interval_ms=...`, the background sweeper reports each leak once while
//! the program runs; `tests/sweep_service.rs` runs it and checks the JSON lines, the
//! callback's count and the at-exit report.
//!
//! Arguments: the number of requests (default 10), then `churn` to leak one more block
//! on the main thread after the requests and wait for the last reports allocating and
//! freeing as much (the heap stops growing) instead of growing the cache. Prints `leaks reported by the callback: N` and `sweeps: G0/G1/G2` before it
//! exits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use test_programs as _;

/// Size of each leaked block.
const LEAK_SIZE: u64 = 3333;

static CALLBACK_LEAKS: AtomicU64 = AtomicU64::new(0);
/// One heap block per entry, as a service's cache holds them.
#[allow(clippy::vec_box)]
static CACHE: Mutex<Vec<Box<[u8; 2222]>>> = Mutex::new(Vec::new());

/// Leaks the callback was told of before their sweep's JSON line was in the file.
static LINES_BEHIND: AtomicU64 = AtomicU64::new(0);

fn on_leak(g: &alloc_core::report::model::LeakGroup) {
    if g.bytes == g.blocks * LEAK_SIZE {
        let told = CALLBACK_LEAKS.fetch_add(g.blocks, Ordering::Relaxed) + g.blocks;
        // The program may end as soon as it is told (this one does, after the last): the
        // line must be written already.
        if lines_path().is_some_and(|path| leaks_in_lines(&path) < told) {
            LINES_BEHIND.fetch_add(g.blocks, Ordering::Relaxed);
        }
    }
}

/// The sweeps' JSON lines file, when `HEAPSWEEP` names a report.
fn lines_path() -> Option<String> {
    let options = std::env::var("HEAPSWEEP").ok()?;
    let report = options.split([':', ',']).find_map(|kv| kv.strip_prefix("report="))?;
    Some(format!("{}.sweeps.jsonl", report.replace("%p", &std::process::id().to_string())))
}

/// Leaked blocks of `LEAK_SIZE` bytes in the lines written so far: the groups'
/// `"blocks":N,"bytes":M` pairs with `M == N * LEAK_SIZE` (read without a JSON parser:
/// this program's only dependency is the allocator).
fn leaks_in_lines(path: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default().replace(' ', "");
    let number = |s: &str| s.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse::<u64>().ok());
    text.split("\"blocks\":")
        .skip(1)
        .filter_map(|rest| {
            let blocks = number(rest)?;
            let bytes = number(rest.split_once(",\"bytes\":")?.1)?;
            (bytes == blocks * LEAK_SIZE).then_some(blocks)
        })
        .sum()
}

#[inline(never)]
fn leak_one() {
    std::mem::forget(std::hint::black_box(Box::new([7u8; LEAK_SIZE as usize])));
}

/// Keeps `n` more blocks in the cache: the heap grows, and the sweeps' count with it
/// (it counts allocations minus frees).
fn keep(i: usize, n: usize) {
    let mut cache = CACHE.lock().unwrap();
    for _ in 0..n {
        cache.push(Box::new([i as u8; 2222]));
    }
}

/// One request: churn, a block kept in the cache, and a leak on a worker thread.
fn handle_request(i: usize) {
    let scratch: Vec<Box<[u64; 16]>> = (0..200).map(|k| Box::new([k as u64; 16])).collect();
    std::hint::black_box(&scratch);
    drop(scratch);
    keep(i, 50);
    std::thread::spawn(leak_one).join().unwrap();
}

fn main() {
    let requests: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    alloc_core::sweep::on_leak(Some(on_leak));
    for i in 0..requests {
        handle_request(i as usize);
        std::thread::sleep(Duration::from_millis(50));
    }
    // Wait (at most 20 s) for the sweeper to report the last leaks.
    let churn = std::env::args().nth(2).as_deref() == Some("churn");
    let mut leaks = requests;
    if churn {
        // One more leak, on this thread, whose count then never grows by a step.
        leak_one();
        leaks += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while CALLBACK_LEAKS.load(Ordering::Relaxed) < leaks && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        if churn {
            // As much freed as allocated: the heap does not grow.
            for k in 0..20u8 {
                drop(std::hint::black_box(Box::new([k; 2222])));
            }
        } else {
            // A growing heap keeps the schedule's count moving.
            keep(0, 20);
        }
    }
    let s = alloc_core::stats();
    println!("leaks reported by the callback: {}", CALLBACK_LEAKS.load(Ordering::Relaxed));
    println!("told before their line was written: {}", LINES_BEHIND.load(Ordering::Relaxed));
    println!("sweeps: {}/{}/{}", s.sweeps[0], s.sweeps[1], s.sweeps[2]);
    println!("cache: {}", CACHE.lock().unwrap().len());
}
