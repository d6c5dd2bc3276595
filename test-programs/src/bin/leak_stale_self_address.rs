//! Test that a block whose unwritten bytes still hold its own address (left there by an
//! earlier occupant of the same memory) is a plain direct leak, not a cycle: only a
//! reference that can keep the block alive (an `Rc` pointing to itself) earns the label.
//! The case is rayon-core's leaked `Vec<CachePadded<WorkerSleepState>>`, whose padding
//! kept an earlier block's self-pointer.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=64 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=64 function~=leak_stale_self_address::leak
// EXPECT-EXIT: 23

use std::alloc::{alloc, dealloc, Layout};
use std::hint::black_box;
use test_programs::scribble_stack;

const LAYOUT: Layout = match Layout::from_size_align(64, 8) {
    Ok(l) => l,
    Err(_) => panic!("a valid layout"),
};

/// An earlier occupant: writes the block's own address at offset 16 (an empty intrusive
/// list head does this), then frees the block.
#[inline(never)]
fn earlier_occupant() -> usize {
    // SAFETY: a valid, non-zero-size layout; the block is written inside its 64 bytes and
    // freed with the same layout.
    unsafe {
        let p = alloc(LAYOUT);
        assert!(!p.is_null());
        (p.add(16) as *mut usize).write(p as usize);
        dealloc(p, LAYOUT);
        p as usize
    }
}

/// The new occupant writes its first word only, and is leaked.
#[inline(never)]
fn leak(expected: usize) {
    // SAFETY: a valid, non-zero-size layout; only the first word is written.
    let p = unsafe { alloc(LAYOUT) };
    assert_eq!(p as usize, expected, "the freed block is handed out again (the test needs its stale bytes)");
    // SAFETY: `p` is a live 64-byte block.
    unsafe { (p as *mut u64).write(7) };
    black_box(p);
}

fn main() {
    let at = earlier_occupant();
    leak(black_box(at));
    scribble_stack();
}
