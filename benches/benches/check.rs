//! Speed of a leak check over one million reachable blocks (the work an at-exit check
//! does), and over a heap with 100k leaked blocks (classification and report building).
//!
//! ```sh
//! cargo bench -p benches --bench check
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

fn main() {
    alloc_core::config::set_check_at_exit(false);
    let reachable: Vec<Box<u64>> = (0..1_000_000u64).map(Box::new).collect();
    let baseline = time_check("1M reachable blocks");
    std::thread::spawn(|| leak_lists(1000, 100)).join().unwrap();
    let leaky = time_check("1M reachable + 100k leaked blocks");
    println!("\nbest: {:.1} ms for 1M reachable blocks; {:.1} ms with 100k leaked blocks", baseline * 1e3, leaky * 1e3);
    drop(reachable);
}
