//! Test that a block referenced only from a registered root region (a shared mapping) is reachable.
//!
// EXPECT: clean reachable_blocks>=2
// EXPECT-EXIT: 0
//
// The box and its vector's buffer: at least 2 reachable blocks. The region is a shared
// mapping: the check scans private writable mappings on its own, shared ones only when
// registered.

use test_programs::scribble_stack;

#[inline(never)]
fn keep() {
    // SAFETY: a new anonymous shared mapping of one page; no memory of ours is involved.
    let region = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(region, libc::MAP_FAILED);
    // A box holding a vector: two blocks, reached through the region only.
    let b: &'static mut Vec<u8> = Box::leak(Box::new(vec![9u8; 72]));
    // SAFETY: the region is one writable page, aligned for a usize.
    unsafe { region.cast::<usize>().write(b as *mut Vec<u8> as usize) };
    assert!(alloc_core::register_root(region.cast(), 4096));
}

fn main() {
    keep();
    scribble_stack();
}
