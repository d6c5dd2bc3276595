//! Test that a thread still running at exit keeps what its stack points to.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn main() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (_hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let data: Vec<Box<[u8; 64]>> = (0..10).map(|i| Box::new([i; 64])).collect();
        ready_tx.send(()).unwrap();
        let _ = hold_rx.recv();
        black_box(data);
    });
    ready_rx.recv().unwrap();
    std::mem::forget(_hold_tx);
}
