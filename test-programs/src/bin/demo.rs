//! The demo: a program with three kinds of leak, run under HeapSweep.
//!
//! - a reference cycle of two `Rc` nodes (reported as direct, cyclic leaks, with the
//!   strong and weak counts and a hint to use `Weak`);
//! - a linked list of three boxes dropped with `mem::forget` (one direct head, two
//!   indirect nodes);
//! - a 100-byte buffer leaked with `mem::forget`.
//!
//! Memory that stays reachable (a cache behind a `OnceLock`) is not reported.
//!
//! ```sh
//! cargo run --release -p test-programs --bin demo
//! ```

use std::cell::RefCell;
use std::rc::Rc;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

struct Node {
    next: RefCell<Option<Rc<Node>>>,
    _payload: [u64; 2],
}

#[inline(never)]
fn make_cycle() {
    let a = Rc::new(Node { next: RefCell::new(None), _payload: [1, 2] });
    let b = Rc::new(Node { next: RefCell::new(Some(a.clone())), _payload: [3, 4] });
    *a.next.borrow_mut() = Some(b);
    std::hint::black_box(&a);
}

struct List {
    _next: Option<Box<List>>,
    _value: u64,
}

#[inline(never)]
fn leak_list() {
    let mut head = None;
    for value in 0..3 {
        head = Some(Box::new(List { _next: head, _value: value }));
    }
    std::mem::forget(std::hint::black_box(head));
}

#[inline(never)]
fn leak_buffer() {
    std::mem::forget(std::hint::black_box(vec![0u8; 100]));
}

static CACHE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

fn main() {
    CACHE.get_or_init(|| (0..10).map(|i| format!("entry {i}")).collect());
    make_cycle();
    leak_list();
    leak_buffer();
    println!("demo: finished; HeapSweep checks for leaks at exit");
}
