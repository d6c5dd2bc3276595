//! Test that a program that frees all it allocates is clean and exits with its own status.
//!
// EXPECT: clean
// EXPECT-EXIT: 3

use std::hint::black_box;
use test_programs as _;

fn main() {
    let v: Vec<String> = (0..black_box(1000)).map(|i| i.to_string()).collect();
    black_box(&v);
    drop(v);
    std::process::exit(3);
}
