//! The allocator workloads: six in the spirit of mimalloc-bench, and two made of real
//! programs' work (`programs`).
//!
//! # What it owns
//! One function per workload: `fn(ops, set) -> Rep` runs one repetition of about `ops`
//! operations on a structure of `set` elements (the working set, the vector, the map, the
//! ring, a larson worker's slots) and returns the time of the measured part and a checksum
//! of the work. Setup that is not the workload (filling a working set before it is
//! churned, freeing it afterwards) stays outside the measured part. [`WORKLOADS`] lists
//! them with their full-run op counts and structure sizes; [`Workload::measure`] repeats
//! one at its full structure size and keeps the best time. Fewer operations (`--quick`,
//! dhat) never shrink the structure, so peak RSS and cache behaviour stay comparable; only
//! the tests shrink it, through [`Workload::run_once`].
//!
//! # Who calls it
//! The per-allocator binaries (through [`crate::child_main`]), one workload per process,
//! and the tests of this crate, in-process at tiny op counts. Every block goes through the
//! global allocator of the calling binary: [`Block`] uses `std::alloc::alloc` directly, so
//! no zeroing or `Vec` bookkeeping dilutes the allocator's cost.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::ptr::NonNull;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::{programs, ring};

/// One workload: its name, what it counts, and how much a full run does.
#[derive(Debug)]
pub struct Workload {
    /// The name used on command lines and in tables.
    pub name: &'static str,
    /// What the operations are, in the plural ("pushes": ns per push).
    pub counts: &'static str,
    /// Operations per repetition in a full run (`--quick` does a tenth).
    pub full_ops: u64,
    /// Elements of the workload's structure (see the module note).
    pub full_set: usize,
    run: fn(u64, usize) -> Rep,
}

/// The workloads, in table order.
pub const WORKLOADS: &[Workload] = &[
    Workload { name: "small-pairs", counts: "alloc+free pairs", full_ops: 20_000_000, full_set: 1, run: small_pairs },
    Workload {
        name: "random-working-set",
        counts: "replaced blocks",
        full_ops: 5_000_000,
        full_set: 100_000,
        run: random_working_set,
    },
    Workload { name: "vec-push", counts: "pushes", full_ops: 100_000_000, full_set: 1_000_000, run: vec_push },
    Workload { name: "btreemap", counts: "entries", full_ops: 2_000_000, full_set: 100_000, run: btreemap },
    Workload {
        name: "producer-consumer",
        counts: "blocks",
        full_ops: 5_000_000,
        full_set: 1024,
        run: producer_consumer,
    },
    Workload { name: "larson", counts: "replaced blocks", full_ops: 10_000_000, full_set: 10_000, run: larson },
    Workload { name: "json", counts: "JSON values", full_ops: 3_800_000, full_set: 200_000, run: programs::json },
    Workload { name: "regex", counts: "patterns compiled", full_ops: 5_000, full_set: 500, run: programs::regex_set },
    Workload { name: "burst", counts: "blocks", full_ops: 4_000_000, full_set: 1, run: programs::burst },
];

/// The workload called `name`.
pub fn workload(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}

/// One repetition: the measured time and what was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rep {
    /// Time of the measured part.
    pub elapsed: Duration,
    /// Operations done: `ops`, or for workloads made of whole structures or rounds, `ops`
    /// rounded down to whole ones (at least one structure, two larson rounds).
    pub ops: u64,
    /// A checksum of the work (sizes allocated, entries built): deterministic for given
    /// `ops`, so repetitions and runs agree.
    pub checksum: u64,
}

/// The result of [`Workload::measure`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Nanoseconds per operation of the fastest repetition.
    pub min_ns: f64,
    /// Nanoseconds per operation, median over the repetitions.
    pub median_ns: f64,
    /// Operations per repetition.
    pub ops: u64,
    /// Repetitions run.
    pub reps: u32,
    /// The checksum, equal in every repetition.
    pub checksum: u64,
}

impl Workload {
    /// Runs one repetition of about `ops` operations on a structure of `set` elements.
    pub fn run_once(&self, ops: u64, set: usize) -> Rep {
        (self.run)(ops.max(1), set.max(1))
    }

    /// Runs `reps` repetitions (at least 1) of about `ops` operations at the full
    /// structure size and keeps the fastest; panics if two repetitions disagree on what
    /// they did.
    pub fn measure(&self, ops: u64, reps: u32) -> Outcome {
        self.measure_with(ops, self.full_set, reps)
    }

    /// [`Workload::measure`] on a structure of `set` elements.
    pub fn measure_with(&self, ops: u64, set: usize, reps: u32) -> Outcome {
        let mut ns: Vec<f64> = Vec::new();
        let mut first: Option<Rep> = None;
        for _ in 0..reps.max(1) {
            let rep = self.run_once(ops, set);
            let f = *first.get_or_insert(rep);
            assert_eq!((rep.ops, rep.checksum), (f.ops, f.checksum), "{}: repetitions differ", self.name);
            ns.push(rep.elapsed.as_nanos() as f64 / rep.ops as f64);
        }
        ns.sort_by(f64::total_cmp);
        let f = first.expect("at least one repetition");
        Outcome { min_ns: ns[0], median_ns: ns[ns.len() / 2], ops: f.ops, reps: ns.len() as u32, checksum: f.checksum }
    }
}

/// wyrand: a fast deterministic generator (one multiply per number).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next number.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    }

    /// A number in `0..n` (multiply-shift, no division), `n > 0`.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A number in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// A block of `size` bytes from the global allocator (8-byte aligned, not zeroed), freed
/// with its size on drop.
///
/// Invariant: `ptr` was returned by `alloc(Layout::from_size_align(size, 8))` and is
/// not yet freed.
#[derive(Debug)]
pub struct Block {
    ptr: NonNull<u8>,
    size: usize,
}

// SAFETY: a `Block` owns its allocation like a `Box<[u8]>` does, and the global allocator
// accepts frees from any thread.
unsafe impl Send for Block {}

impl Block {
    /// Allocates `size` bytes (`size > 0`) without touching them.
    #[inline]
    pub fn new(size: usize) -> Block {
        debug_assert!(size > 0);
        let layout = Self::layout(size);
        // SAFETY: `layout` has a non-zero size (GlobalAlloc::alloc's one requirement).
        let ptr = unsafe { alloc(layout) };
        match NonNull::new(ptr) {
            Some(ptr) => Block { ptr, size },
            None => handle_alloc_error(layout),
        }
    }

    /// Allocates `size` bytes and writes `tag` to the first, as a program uses its memory.
    #[inline]
    pub fn tagged(size: usize, tag: u8) -> Block {
        let b = Block::new(size);
        // SAFETY: the block is live and at least 1 byte long.
        unsafe { b.ptr.as_ptr().write(tag) };
        b
    }

    /// The first byte, written by [`Block::tagged`].
    #[inline]
    pub fn tag(&self) -> u8 {
        // SAFETY: only called on blocks made by `tagged`, whose first byte is initialized;
        // the block is live while `self` is.
        unsafe { self.ptr.as_ptr().read() }
    }

    /// The size asked for.
    #[inline]
    pub fn size(&self) -> usize {
        self.size
    }

    /// The start of the block.
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    #[inline]
    fn layout(size: usize) -> Layout {
        match Layout::from_size_align(size, 8) {
            Ok(l) => l,
            Err(_) => panic!("block size {size} too large"),
        }
    }
}

impl Drop for Block {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: by the invariant, `ptr` is live and was allocated with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.size)) };
    }
}

/// Times `f`, which returns `(ops, checksum)`.
fn timed(f: impl FnOnce() -> (u64, u64)) -> Rep {
    let t = Instant::now();
    let (ops, checksum) = f();
    Rep { elapsed: t.elapsed(), ops, checksum }
}

/// Alloc + free of one block, sizes cycling 8, 16, ..., 256 bytes. Checksum: bytes allocated.
fn small_pairs(ops: u64, _set: usize) -> Rep {
    timed(|| {
        let mut sum = 0u64;
        for i in 0..ops {
            let b = Block::new(8 + (i as usize % 32) * 8);
            black_box(b.as_ptr());
            sum += b.size() as u64;
        }
        (ops, sum)
    })
}

/// A working set of `n` blocks (100k) of 8..=1024 bytes, filled before the clock starts;
/// each operation frees a random block and allocates a new one in its slot. Checksum:
/// bytes allocated while measured, plus the tags read back at the end.
fn random_working_set(ops: u64, n: usize) -> Rep {
    let mut rng = Rng::new(42);
    let mut slots: Vec<Option<Block>> = (0..n).map(|i| Some(Block::tagged(rng.range(8, 1024), i as u8))).collect();
    let rep = timed(|| {
        let mut sum = 0u64;
        for i in 0..ops {
            let slot = &mut slots[rng.below(n)];
            drop(slot.take());
            let b = Block::tagged(rng.range(8, 1024), i as u8);
            sum += b.size() as u64;
            *slot = Some(b);
        }
        (ops, sum)
    });
    let tags: u64 = slots.iter().flatten().map(|b| u64::from(b.tag())).sum();
    Rep { checksum: rep.checksum.wrapping_add(tags), ..rep }
}

/// `Vec<u64>` grown by `push` (so by reallocation) to `len` elements (1M), repeated.
/// Checksum: the sum of every vector's last element.
fn vec_push(ops: u64, len: usize) -> Rep {
    let len = len as u64;
    let vecs = (ops / len).max(1);
    timed(|| {
        let mut sum = 0u64;
        for _ in 0..vecs {
            let mut v = Vec::new();
            for i in 0..len {
                v.push(i);
            }
            sum += black_box(&v)[len as usize - 1];
        }
        (vecs * len, sum)
    })
}

/// A `BTreeMap<u64, String>` of `entries` entries (100k; strings of 3..=50 bytes) built
/// and dropped, repeated. Checksum: entries built.
fn btreemap(ops: u64, entries: usize) -> Rep {
    let entries = entries as u64;
    let maps = (ops / entries).max(1);
    let mut rng = Rng::new(7);
    timed(|| {
        let mut sum = 0u64;
        for _ in 0..maps {
            let mut m = BTreeMap::new();
            for _ in 0..entries {
                let len = rng.range(3, 50);
                m.insert(rng.next_u64(), "x".repeat(len));
            }
            sum += black_box(&m).len() as u64;
        }
        (maps * entries, sum)
    })
}

/// Two threads: the producer allocates blocks of 16..=512 bytes and passes them through a
/// [`ring`] of `ring_slots` slots (1024), the consumer frees them, so every free is a cross-thread free. Checksum: bytes
/// freed plus tags read by the consumer (equal to what the producer allocated and wrote:
/// checked).
fn producer_consumer(ops: u64, ring_slots: usize) -> Rep {
    let (mut tx, mut rx) = ring::channel::<Block>(ring_slots);
    timed(|| {
        let consumer = thread::spawn(move || {
            let mut sum = 0u64;
            for _ in 0..ops {
                let b = rx.pop();
                sum += b.size() as u64 + u64::from(b.tag());
            }
            sum
        });
        let mut rng = Rng::new(3);
        let mut sum = 0u64;
        for i in 0..ops {
            let b = Block::tagged(rng.range(16, 512), i as u8);
            sum += b.size() as u64 + u64::from(b.tag());
            tx.push(b);
        }
        let consumed = consumer.join().expect("consumer thread panicked");
        assert_eq!(consumed, sum, "the consumer did not get what the producer sent");
        (ops, sum)
    })
}

/// What a `larson` worker hands on: the thread that continues its work, or (after the
/// last round) its slots.
enum Link {
    Next(JoinHandle<Link>, u64),
    Last(Vec<Option<Block>>, u64),
}

/// Larson-like server workload: 2 workers, each with `slots` blocks (10k) of 16..=1000
/// bytes (filled before the clock starts), replace random blocks; after each round of
/// `10 * slots` replacements a worker starts a new thread that inherits its slots, and
/// exits. So the blocks a thread frees were mostly allocated by threads that are gone.
/// Checksum: bytes allocated while measured.
fn larson(ops: u64, slots: usize) -> Rep {
    let per_round = 10 * slots as u64;
    let rounds = (ops / (2 * per_round)).max(2);
    let mut rng = Rng::new(11);
    let sets: Vec<Vec<Option<Block>>> =
        (0..2).map(|_| (0..slots).map(|i| Some(Block::tagged(rng.range(16, 1000), i as u8))).collect()).collect();
    let mut kept = Vec::new();
    let rep = timed(|| {
        let workers: Vec<JoinHandle<Link>> = sets
            .into_iter()
            .enumerate()
            .map(|(w, slots)| thread::spawn(move || larson_round(slots, w as u64, 0, rounds, per_round)))
            .collect();
        let mut sum = 0u64;
        for mut h in workers {
            loop {
                match h.join().expect("larson worker panicked") {
                    Link::Next(next, s) => (h, sum) = (next, sum + s),
                    Link::Last(slots, s) => {
                        kept.push(slots);
                        sum += s;
                        break;
                    }
                }
            }
        }
        (rounds * 2 * per_round, sum)
    });
    drop(kept);
    rep
}

/// One worker thread of [`larson`]: `per_round` replacements, then hand the slots on.
fn larson_round(mut slots: Vec<Option<Block>>, worker: u64, round: u64, rounds: u64, per_round: u64) -> Link {
    let mut rng = Rng::new((worker << 32) | round);
    let mut sum = 0u64;
    for i in 0..per_round {
        let n = slots.len();
        let slot = &mut slots[rng.below(n)];
        drop(slot.take());
        let b = Block::tagged(rng.range(16, 1000), i as u8);
        sum += b.size() as u64;
        *slot = Some(b);
    }
    if round + 1 == rounds {
        return Link::Last(slots, sum);
    }
    Link::Next(thread::spawn(move || larson_round(slots, worker, round + 1, rounds, per_round)), sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, ops: u64, set: usize) -> Rep {
        workload(name).unwrap().run_once(ops, set)
    }

    #[test]
    fn small_pairs_allocates_every_size_in_turn() {
        let r = run("small-pairs", 64, 1);
        // Two full cycles of 8, 16, ..., 256.
        assert_eq!((r.ops, r.checksum), (64, 2 * (8..=256).step_by(8).sum::<u64>()));
    }

    #[test]
    fn random_working_set_replaces_blocks_deterministically() {
        let a = run("random-working-set", 5_000, 1_000);
        assert_eq!(a.ops, 5_000);
        // 5000 new blocks of 8..=1024 bytes (mean 516) plus 1000 tags below 256.
        let bytes_per_block = a.checksum as f64 / 5_000.0;
        assert!((400.0..700.0).contains(&bytes_per_block), "{a:?}");
        assert_eq!(run("random-working-set", 5_000, 1_000).checksum, a.checksum);
        assert_ne!(run("random-working-set", 5_001, 1_000).checksum, a.checksum);
    }

    #[test]
    fn vec_push_pushes_whole_vectors() {
        let r = run("vec-push", 2_500, 1_000);
        assert_eq!((r.ops, r.checksum), (2_000, 2 * 999));
        // Fewer operations than one vector still build one whole vector.
        let r = run("vec-push", 10, 1_000);
        assert_eq!((r.ops, r.checksum), (1_000, 999));
    }

    #[test]
    fn btreemap_builds_every_entry() {
        let r = run("btreemap", 3_000, 1_500);
        assert_eq!((r.ops, r.checksum), (3_000, 3_000));
        assert_eq!(run("btreemap", 1, 1_500).ops, 1_500);
    }

    #[test]
    fn producer_consumer_frees_what_was_sent() {
        // A ring of 4 slots: the producer waits for the consumer most of the time.
        let r = run("producer-consumer", 10_000, 4);
        assert_eq!(r.ops, 10_000);
        assert!(r.checksum > 10_000 * 16, "{r:?}");
        assert_eq!(run("producer-consumer", 10_000, 1024).checksum, r.checksum);
    }

    #[test]
    fn larson_hands_slots_on_round_after_round() {
        // 100 slots: rounds of 1000 replacements per worker.
        let r = run("larson", 10_000, 100);
        assert_eq!(r.ops, 10_000);
        assert!(r.checksum >= 10_000 * 16, "{r:?}");
        assert_eq!(run("larson", 10_000, 100).checksum, r.checksum);
        // At least two rounds.
        assert_eq!(run("larson", 10, 100).ops, 2 * 2 * 1_000);
    }

    #[test]
    fn measure_keeps_the_best_repetition() {
        let o = workload("small-pairs").unwrap().measure(1_000, 3);
        assert_eq!((o.ops, o.reps), (1_000, 3));
        assert!(o.min_ns > 0.0 && o.min_ns <= o.median_ns, "{o:?}");
    }

    #[test]
    fn rng_ranges_are_inclusive_and_stay_in_bounds() {
        let mut rng = Rng::new(1);
        let mut seen = [false; 4];
        for _ in 0..1_000 {
            let v = rng.range(5, 8);
            seen[v - 5] = true;
        }
        assert_eq!(seen, [true; 4]);
        assert!((0..1_000).all(|_| rng.below(3) < 3));
    }
}
