//! Test that a detached thread (its `JoinHandle` dropped), sleeping at exit, keeps its data.
//!
// EXPECT: clean reachable_blocks>=17
// EXPECT-EXIT: 0
//
// The 16 vectors and their list: at least 17 reachable blocks.

use std::hint::black_box;
use std::time::Duration;
use test_programs as _;

fn main() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    drop(std::thread::spawn(move || {
        let data: Vec<Vec<u8>> = (0..black_box(16)).map(|i| vec![i; 100]).collect();
        ready_tx.send(()).unwrap();
        loop {
            std::thread::sleep(Duration::from_millis(50));
            black_box(&data);
        }
    }));
    ready_rx.recv().unwrap();
}
