//! Pause of leak sweeps (`alloc_core::sweep`) against the full check: a heap of one
//! million old reachable blocks and 10,000 young ones; then the pause of a young sweep as
//! a function of the pages written since the last one (1k, 10k, 100k pages of 100,000
//! old 4 KiB blocks).
//!
//! ```sh
//! cargo bench -p benches --bench sweeps                                   # the kernel's record
//! HEAPSWEEP=sweep_young=fallback cargo bench -p benches --bench sweeps    # every old block scanned
//! ```

use alloc_core::sweep;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

/// Best of 3: wall time of `f` and the pause (world stopped) it reports.
fn best(label: &str, mut f: impl FnMut() -> (Duration, Option<u64>)) {
    let (mut wall, mut pause) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        let t = Instant::now();
        let (p, written) = f();
        let w = t.elapsed();
        let written = written.map_or("old blocks scanned whole".to_string(), |n| format!("{n} written pages"));
        println!("{label}: wall {:.1} ms, pause {:.1} ms ({written})", ms(w), ms(p));
        (wall, pause) = (wall.min(w), pause.min(p));
    }
    println!("  best: wall {:.1} ms, pause {:.1} ms", ms(wall), ms(pause));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn young_sweep() -> (Duration, Option<u64>) {
    let r = sweep::collect(0);
    assert_eq!(r.failure, None);
    (r.pause, r.written_pages)
}

fn main() {
    alloc_core::config::set_check_at_exit(false);
    let old: Vec<Box<u64>> = (0..1_000_000u64).map(Box::new).collect();
    // A full sweep: every reachable block is in the oldest generation. A young sweep:
    // the heap is known to the kernel's record.
    sweep::collect(2);
    sweep::collect(0);
    best("full check (alloc_core::check)", || {
        let t = Instant::now();
        std::hint::black_box(alloc_core::check());
        (t.elapsed(), None)
    });
    best("full sweep (collect(2))", || (sweep::collect(2).pause, None));
    let mut young: Vec<Vec<Box<u64>>> = Vec::new();
    sweep::collect(0);
    best("generation-0 sweep, 1M old + 10,000 young blocks", || {
        young.push((0..10_000u64).map(Box::new).collect());
        young_sweep()
    });
    // 100,000 old blocks of one page each.
    let mut pages: Vec<Box<[u64; 512]>> = (0..100_000).map(|_| Box::new([1u64; 512])).collect();
    sweep::collect(2);
    sweep::collect(0);
    for dirty in [1_000usize, 10_000, 100_000] {
        best(&format!("generation-0 sweep after writing {dirty} old pages"), || {
            for p in pages.iter_mut().step_by(100_000 / dirty) {
                p[7] += 1;
            }
            young_sweep()
        });
    }
    let s = alloc_core::stats();
    println!("young sweeps scan every old block: {}", s.sweep_young_fallback);
    drop((old, young, pages));
}
