//! Test that a named thread running at exit is clean (std keeps its name in memory it allocates).
//!
// EXPECT: clean reachable_blocks>=9
// EXPECT-EXIT: 0
//
// The 8 strings and their vector: at least 9 reachable blocks.

use std::hint::black_box;
use test_programs as _;

fn main() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let _worker = std::thread::Builder::new()
        .name("a-worker-with-a-rather-long-name".into())
        .spawn(move || {
            let data = vec![String::from("held by a named thread"); black_box(8)];
            ready_tx.send(()).unwrap();
            loop {
                std::thread::park();
                black_box(&data);
            }
        })
        .unwrap();
    ready_rx.recv().unwrap();
}
