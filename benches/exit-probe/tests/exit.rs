//! Three test binaries' worth of exits, chosen by the test filter: a trivial test, a test
//! that panics (std then prints a backtrace into the captured output, and keeps the
//! debug information it read for that in its backtrace cache until exit: tens of MB of
//! reachable blocks), and a test that leaks 13 blocks from 13 places (a 13-group report
//! to symbolize).

use exit_probe as _;

#[test]
fn trivial() {
    let v: Vec<u32> = (0..100).collect();
    assert_eq!(v.len(), 100);
}

#[test]
#[should_panic]
fn panics() {
    let v: Vec<u32> = Vec::new();
    let _ = v[std::hint::black_box(3)];
}

#[test]
fn leaks() {
    for i in 0..13 {
        leak_at(i);
    }
}

#[inline(never)]
fn leak_at(i: usize) {
    match i {
        0 => std::mem::forget(Box::new(1u8)),
        1 => std::mem::forget(vec![1u16; 3]),
        2 => std::mem::forget(String::from("x")),
        3 => std::mem::forget(Box::new([0u64; 4])),
        4 => std::mem::forget(Box::new(5u32)),
        5 => std::mem::forget(vec![0u8; 77]),
        6 => std::mem::forget(Box::new(6i64)),
        7 => std::mem::forget(vec![0u32; 9]),
        8 => std::mem::forget(Box::new((1u8, 2u64))),
        9 => std::mem::forget(vec![0u8; 200]),
        10 => std::mem::forget(Box::new([1u8; 3])),
        11 => std::mem::forget(vec![0u64; 11]),
        _ => std::mem::forget(Box::new(12u16)),
    }
}
