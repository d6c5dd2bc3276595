//! `Handle<T>` against std `Rc<T>`, and the cycle collector on a million garbage cycles.
//!
//! ```sh
//! cargo bench -p benches --bench handles
//! ```

use alloc_core::{gc, Handle, Trace};
use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[derive(Trace)]
struct Node {
    other: RefCell<Option<Handle<Node>>>,
}

fn best_ns(reps: usize, ops: u64, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64 / ops as f64
        })
        .fold(f64::MAX, f64::min)
}

fn make_cycles(n: usize) -> Vec<Handle<Node>> {
    (0..n)
        .map(|_| {
            let a = Handle::new(Node { other: RefCell::new(None) });
            let b = Handle::new(Node { other: RefCell::new(Some(a.clone())) });
            *a.other.borrow_mut() = Some(b);
            a
        })
        .collect()
}

fn main() {
    alloc_core::config::set_check_at_exit(false);
    gc::set_threshold(0, 10, 10);
    let n = 1_000_000u64;
    let rc = best_ns(3, n, || {
        for i in 0..n {
            black_box(Rc::new(i));
        }
    });
    let handle = best_ns(3, n, || {
        for i in 0..n {
            black_box(Handle::new(i));
        }
    });
    println!("allocate + drop: Rc {rc:.1} ns, Handle {handle:.1} ns, ratio {:.2}x (target <= 1.3x)", handle / rc);

    let garbage = make_cycles(1_000_000);
    drop(garbage);
    let t = Instant::now();
    let found = gc::collect(2);
    println!(
        "1M garbage 2-cycles: collected {found} handles in {:.1} ms (target <= 100 ms)",
        t.elapsed().as_secs_f64() * 1e3
    );

    let live = make_cycles(500_000);
    drop(make_cycles(1_000_000));
    let t = Instant::now();
    let found = gc::collect(2);
    println!(
        "500k live + 1M garbage 2-cycles: collected {found} handles in {:.1} ms (target <= 150 ms)",
        t.elapsed().as_secs_f64() * 1e3
    );
    drop(live);
    gc::collect(2);
}
