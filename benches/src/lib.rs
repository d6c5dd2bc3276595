//! Allocator workloads, in the spirit of mimalloc-bench, shared by one binary per
//! allocator (a `#[global_allocator]` is per binary).
//!
//! Each binary runs one workload per process (`<bin> <workload> [scale]`) and prints one
//! line: `workload ns_per_op ops peak_rss_kib`. The drivers in `benches/` run every
//! (allocator, workload) pair and print the table with ratios to mimalloc.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

pub mod ring;

/// The workloads, by name.
pub const WORKLOADS: &[&str] =
    &["small-pairs", "random-working-set", "vec-push", "btreemap", "producer-consumer", "larson"];

/// A tiny deterministic generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// The next number.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}

/// The result of one workload run: the best of its repetitions.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// Nanoseconds per operation (the best repetition).
    pub ns_per_op: f64,
    /// Operations per repetition.
    pub ops: u64,
    /// A checksum of the work, so the optimizer cannot drop it and tests can check it.
    pub checksum: u64,
}

fn best_of(reps: usize, ops: u64, mut f: impl FnMut() -> u64) -> Outcome {
    let mut best = f64::MAX;
    let mut checksum = 0;
    for _ in 0..reps {
        let t = Instant::now();
        checksum = f();
        best = best.min(t.elapsed().as_nanos() as f64 / ops as f64);
    }
    Outcome { ns_per_op: best, ops, checksum }
}

/// Alloc + free of one block, sizes cycling 8..=256 bytes.
pub fn small_pairs(scale: f64) -> Outcome {
    let n = (20_000_000.0 * scale) as u64;
    best_of(3, n, || {
        let mut sum = 0u64;
        for i in 0..n {
            let b = vec![0u8; 8 + (i as usize % 32) * 8].into_boxed_slice();
            sum = sum.wrapping_add(black_box(&b).len() as u64);
        }
        sum
    })
}

/// A working set of 100k blocks of 8..=1024 bytes; each op frees a random one and
/// allocates a new one in its place.
pub fn random_working_set(scale: f64) -> Outcome {
    let n = (5_000_000.0 * scale) as u64;
    best_of(3, n, || {
        let mut rng = Rng::new(42);
        let mut slots: Vec<Option<Box<[u8]>>> = (0..100_000).map(|_| None).collect();
        let mut sum = 0u64;
        for _ in 0..n {
            let i = rng.range(0, slots.len() - 1);
            let mut b = vec![0u8; rng.range(8, 1024)].into_boxed_slice();
            b[0] = 1;
            sum = sum.wrapping_add(b.len() as u64);
            slots[i] = Some(b);
        }
        sum
    })
}

/// `Vec<u64>` grown by `push` to one million elements (reallocations), repeated.
pub fn vec_push(scale: f64) -> Outcome {
    let reps = ((20.0 * scale) as u64).max(1);
    let n = reps * 1_000_000;
    best_of(3, n, || {
        let mut sum = 0u64;
        for _ in 0..reps {
            let mut v = Vec::new();
            for i in 0..1_000_000u64 {
                v.push(i);
            }
            sum = sum.wrapping_add(black_box(&v).len() as u64);
        }
        sum
    })
}

/// A `BTreeMap<u64, String>` of 100k entries built and dropped; ns per entry.
pub fn btreemap(scale: f64) -> Outcome {
    let reps = ((10.0 * scale) as u64).max(1);
    let n = reps * 100_000;
    best_of(3, n, || {
        let mut rng = Rng::new(7);
        let mut sum = 0u64;
        for _ in 0..reps {
            let mut m = BTreeMap::new();
            for _ in 0..100_000 {
                let k = rng.next_u64();
                let len = rng.range(3, 50);
                m.insert(k, "x".repeat(len));
            }
            sum = sum.wrapping_add(m.len() as u64);
        }
        sum
    })
}

/// Two threads: one allocates blocks of 16..=512 bytes, the other frees them (every free
/// is a cross-thread free). Blocks travel through a lock-free ring, no allocation per
/// message.
pub fn producer_consumer(scale: f64) -> Outcome {
    let n = (5_000_000.0 * scale) as u64;
    best_of(3, n, || {
        let ring = std::sync::Arc::new(ring::Ring::new(1024));
        let consumer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let mut sum = 0u64;
                for _ in 0..n {
                    let p = ring.pop_blocking();
                    // SAFETY: the producer sends pointers from Box::into_raw of Box<[u8]>
                    // with their length.
                    let b = unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(p.0 as *mut u8, p.1)) };
                    sum = sum.wrapping_add(b.len() as u64);
                }
                sum
            })
        };
        let mut rng = Rng::new(3);
        for _ in 0..n {
            let b = vec![1u8; rng.range(16, 512)].into_boxed_slice();
            let len = b.len();
            ring.push_blocking((Box::into_raw(b) as *mut u8 as usize, len));
        }
        consumer.join().unwrap()
    })
}

/// A worker's blocks.
type Slots = Vec<Option<Box<[u8]>>>;

/// Larson-like server workload: 2 worker threads replace random blocks (16..=1000
/// bytes) in their own slot arrays; every round each worker hands its slots to a new
/// thread, so blocks are freed by threads other than the ones that allocated them.
pub fn larson(scale: f64) -> Outcome {
    let rounds = ((20.0 * scale) as u64).max(2);
    let per_round = 100_000u64;
    let n = rounds * per_round * 2;
    best_of(3, n, || {
        let mut handles: Vec<std::thread::JoinHandle<(Slots, u64)>> = Vec::new();
        let mut slot_sets: Vec<Slots> = (0..2).map(|_| (0..10_000).map(|_| None).collect()).collect();
        let mut sum = 0u64;
        for round in 0..rounds {
            for (w, mut slots) in slot_sets.drain(..).enumerate() {
                handles.push(std::thread::spawn(move || {
                    let mut rng = Rng::new(round * 2 + w as u64 + 1);
                    let mut s = 0u64;
                    for _ in 0..per_round {
                        let i = rng.range(0, slots.len() - 1);
                        let b = vec![2u8; rng.range(16, 1000)].into_boxed_slice();
                        s = s.wrapping_add(b.len() as u64);
                        slots[i] = Some(b);
                    }
                    (slots, s)
                }));
            }
            for h in handles.drain(..) {
                let (slots, s) = h.join().unwrap();
                sum = sum.wrapping_add(s);
                slot_sets.push(slots);
            }
        }
        sum
    })
}

/// Runs a workload by name.
pub fn run(workload: &str, scale: f64) -> Option<Outcome> {
    Some(match workload {
        "small-pairs" => small_pairs(scale),
        "random-working-set" => random_working_set(scale),
        "vec-push" => vec_push(scale),
        "btreemap" => btreemap(scale),
        "producer-consumer" => producer_consumer(scale),
        "larson" => larson(scale),
        _ => return None,
    })
}

/// Peak resident set size of this process, in KiB (`VmHWM`).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The `main` of each per-allocator binary: `<bin> <workload> [scale]`.
pub fn child_main() {
    let args: Vec<String> = std::env::args().collect();
    let workload = args.get(1).map(String::as_str).unwrap_or("small-pairs");
    let scale: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    match run(workload, scale) {
        Some(o) => println!("{workload} {:.3} {} {} {}", o.ns_per_op, o.ops, peak_rss_kib(), o.checksum),
        None => {
            eprintln!("unknown workload {workload:?}; known: {}", WORKLOADS.join(", "));
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_does_its_work_at_a_tiny_scale() {
        for w in WORKLOADS {
            let o = run(w, 0.001).unwrap();
            assert!(o.ops > 0 && o.checksum > 0, "{w}: {o:?}");
            assert!(o.ns_per_op > 0.0);
        }
        assert!(run("nope", 1.0).is_none());
    }

    #[test]
    fn checksums_are_deterministic() {
        assert_eq!(random_working_set(0.001).checksum, random_working_set(0.001).checksum);
        assert_eq!(producer_consumer(0.001).checksum, producer_consumer(0.001).checksum);
    }
}
