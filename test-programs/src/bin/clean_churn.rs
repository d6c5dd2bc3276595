//! Test that heavy churn on several threads, with frees across threads, leaves nothing behind.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

use std::hint::black_box;
use std::sync::mpsc::sync_channel;
use std::thread;
use test_programs as _;

const THREADS: usize = 4;
const ROUNDS: usize = 50_000;

/// Allocates blocks of many sizes, keeps a sliding window of them, frees the rest; every
/// eighth block goes to the consumer thread, which frees it there.
fn churn(t: usize, to_consumer: std::sync::mpsc::SyncSender<Vec<u8>>) -> usize {
    let mut window: Vec<Vec<u8>> = Vec::new();
    for i in 0..ROUNDS {
        let block = vec![t as u8; (i * 7) % 700 + 1];
        if i % 8 == 0 {
            to_consumer.send(block).unwrap();
        } else {
            window.push(block);
        }
        if window.len() > 100 {
            window.swap_remove(i % 100);
        }
    }
    window.len()
}

fn main() {
    let (tx, rx) = sync_channel::<Vec<u8>>(64);
    let consumer = thread::spawn(move || rx.into_iter().map(|b| b.len()).sum::<usize>());
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let tx = tx.clone();
            thread::spawn(move || churn(t, tx))
        })
        .collect();
    drop(tx);
    for w in workers {
        black_box(w.join().unwrap());
    }
    black_box(consumer.join().unwrap());
}
