//! Test that a thread still running at exit, blocked on a channel, keeps what its stack points to.
//!
// EXPECT: clean reachable_blocks>=11
// EXPECT-EXIT: 0
//
// The 10 boxes and their vector: at least 11 reachable blocks.

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::hint::black_box;
use std::sync::mpsc::{channel, Sender};
use std::sync::OnceLock;
use test_programs as _;

/// Keeps the worker's channel open forever: it never stops waiting.
static HOLD: OnceLock<Sender<()>> = OnceLock::new();

fn main() {
    let (ready_tx, ready_rx) = channel();
    let (hold_tx, hold_rx) = channel::<()>();
    HOLD.set(hold_tx).unwrap();
    std::thread::spawn(move || {
        let data: Vec<Box<[u8; 64]>> = (0..black_box(10)).map(|i| Box::new([i; 64])).collect();
        ready_tx.send(()).unwrap();
        let _ = hold_rx.recv();
        black_box(data);
    });
    ready_rx.recv().unwrap();
}
