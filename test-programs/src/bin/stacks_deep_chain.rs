//! Allocation stacks through a deep call chain of many shapes of frame: recursion, large
//! frames, frames whose size depends on a value, closures (boxed and generic), iterator
//! adapters, a trait object, and a panic caught on the way.
//!
//! Not a scenario (its frames depend on how it was built, which is the point):
//! `tests/frame_pointers.rs` builds it with and without frame pointers, runs it, and
//! compares the frames of the leaks in the two reports. It leaks one 48-byte box at each
//! of [`SITES`] leaves.
//!
//! With arguments `bench N`, it instead allocates and frees N `Box<u64>` at the leaf of
//! the chain and prints the nanoseconds per allocation (BENCHMARKS.md, "Stacks without
//! frame pointers"):
//!
//! ```sh
//! cargo run --release -p test-programs --bin stacks_deep_chain -- bench 1000000
//! ```

use std::hint::black_box;
use std::time::Instant;
use test_programs::scribble_stack;

/// Leaves of the chain that leak.
const SITES: usize = 3;
/// Levels of recursion above each leaf.
const DEPTH: usize = 12;

/// What the leaves do.
#[derive(Clone, Copy)]
enum Work {
    /// Leak one 48-byte box, tagged with the site.
    Leak(usize),
    /// Allocate and free this many `Box<u64>`.
    Churn(usize),
}

#[inline(never)]
fn leaf(work: Work) {
    match work {
        Work::Leak(site) => std::mem::forget(black_box(Box::new([site as u8; 48]))),
        Work::Churn(n) => {
            for i in 0..n {
                drop(black_box(Box::new(i as u64)));
            }
        }
    }
}

/// A frame of `N` bytes of locals.
#[inline(never)]
fn large<const N: usize>(work: Work) {
    let mut buf = [0u8; N];
    black_box(&mut buf);
    through_dyn(work);
    black_box(&mut buf);
}

trait Step {
    fn run(&self, work: Work);
}

struct Leafward;

impl Step for Leafward {
    #[inline(never)]
    fn run(&self, work: Work) {
        let each = |w: Work| leaf(w);
        std::iter::once(work).map(black_box).for_each(each);
    }
}

#[inline(never)]
fn through_dyn(work: Work) {
    let step: &dyn Step = black_box(&Leafward);
    step.run(work);
}

/// Frames whose size depends on the level, as code with `alloca` has.
#[inline(never)]
fn sized(level: usize, work: Work) {
    match black_box(level) % 3 {
        0 => large::<64>(work),
        1 => large::<4096>(work),
        _ => large::<{ 64 << 10 }>(work),
    }
}

#[inline(never)]
fn recurse(level: usize, work: Work) {
    if level == 0 {
        return sized(black_box(level), work);
    }
    if level == DEPTH / 2 {
        // A panic caught on the way down: the chain goes on inside `catch_unwind`.
        let _ = std::panic::catch_unwind(|| {
            if black_box(level) == usize::MAX {
                panic!("never");
            }
        });
        let boxed: Box<dyn Fn()> = Box::new(move || recurse(level - 1, work));
        boxed();
    } else {
        recurse(level - 1, work);
    }
    black_box(level);
}

#[inline(never)]
fn run_at(site: usize, work: Work) {
    let mut calls = 0;
    let mut generic = |w| {
        calls += 1;
        recurse(DEPTH + site, w)
    };
    generic(work);
    black_box(calls);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "bench" {
        let n: usize = args[2].parse().expect("bench N: N allocations");
        let start = Instant::now();
        run_at(0, Work::Churn(n));
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{n} allocations at depth {}: {ns:.1} ns each", DEPTH + 8);
        return;
    }
    for site in 0..SITES {
        run_at(site, Work::Leak(site));
    }
    scribble_stack();
}
