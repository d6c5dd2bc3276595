//! Test that boxes held by the `thread_local!` of a thread still running at exit are reachable.
//!
// EXPECT: clean reachable_blocks>=21
// EXPECT-EXIT: 0
//
// The 20 boxes and their vector: at least 21 reachable blocks.

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::mpsc::{channel, Sender};
use std::sync::OnceLock;
use test_programs::scribble_stack;

thread_local! {
    static LOCAL: RefCell<Vec<Box<[u64; 4]>>> = const { RefCell::new(Vec::new()) };
}

/// Keeps the worker's channel open forever: it never stops waiting.
static HOLD: OnceLock<Sender<()>> = OnceLock::new();

#[inline(never)]
fn fill(n: u64) {
    LOCAL.with(|l| l.borrow_mut().extend((0..n).map(|i| Box::new([i; 4]))));
}

fn main() {
    let (ready_tx, ready_rx) = channel();
    let (hold_tx, hold_rx) = channel::<()>();
    HOLD.set(hold_tx).unwrap();
    std::thread::spawn(move || {
        fill(black_box(20));
        scribble_stack();
        ready_tx.send(()).unwrap();
        let _ = hold_rx.recv();
    });
    ready_rx.recv().unwrap();
}
