//! Test that a thread parked forever at exit keeps what its stack points to.
//!
// EXPECT: clean reachable_blocks>=17
// EXPECT-EXIT: 0
//
// The 16 strings and their vector: at least 17 reachable blocks.

use std::hint::black_box;
use test_programs as _;

fn main() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let _worker = std::thread::spawn(move || {
        let data: Vec<String> = (0..black_box(16)).map(|i| format!("parked {i}")).collect();
        ready_tx.send(()).unwrap();
        loop {
            std::thread::park();
            black_box(&data);
        }
    });
    ready_rx.recv().unwrap();
}
