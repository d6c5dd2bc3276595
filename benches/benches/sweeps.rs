//! Pause of leak sweeps (`alloc_core::sweep`) against the full check, on a heap of one
//! million old reachable blocks and 10,000 young ones.
//!
//! ```sh
//! cargo bench -p benches --bench sweeps
//! ```

use alloc_core::sweep;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

/// Best of 3: wall time of `f` and the pause (world stopped) it reports.
fn best(label: &str, mut f: impl FnMut() -> Duration) {
    let (mut wall, mut pause) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        let t = Instant::now();
        let p = f();
        let w = t.elapsed();
        println!("{label}: wall {:.1} ms, pause {:.1} ms", w.as_secs_f64() * 1e3, p.as_secs_f64() * 1e3);
        (wall, pause) = (wall.min(w), pause.min(p));
    }
    println!("  best: wall {:.1} ms, pause {:.1} ms", wall.as_secs_f64() * 1e3, pause.as_secs_f64() * 1e3);
}

fn main() {
    alloc_core::config::set_check_at_exit(false);
    let old: Vec<Box<u64>> = (0..1_000_000u64).map(Box::new).collect();
    // Two full sweeps: every reachable block is in the oldest generation.
    sweep::collect(2);
    sweep::collect(2);
    let mut young: Vec<Vec<Box<u64>>> = Vec::new();
    best("full check (alloc_core::check)", || {
        let t = Instant::now();
        std::hint::black_box(alloc_core::check());
        t.elapsed()
    });
    best("full sweep (collect(2))", || sweep::collect(2).pause);
    best("generation-0 sweep, 10,000 young blocks (collect(0))", || {
        young.push((0..10_000u64).map(Box::new).collect());
        let r = sweep::collect(0);
        assert!(r.swept_blocks >= 10_000, "{}", r.swept_blocks);
        r.pause
    });
    let s = alloc_core::stats();
    println!("young sweeps scan every old block: {}", s.sweep_young_fallback);
    drop((old, young));
}
