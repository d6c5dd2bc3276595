//! Test that a block referenced only from a registered root region (memory from mmap) is reachable.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn keep() {
    // SAFETY: an anonymous private mapping of one page.
    let region = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(region, libc::MAP_FAILED);
    let b: &'static mut [u8; 72] = Box::leak(Box::new([9u8; 72]));
    // SAFETY: the region is one writable page.
    unsafe { region.cast::<usize>().write(b.as_ptr() as usize) };
    assert!(alloc_core::register_root(region.cast(), 4096));
}

fn main() {
    keep();
    test_programs::scribble_stack();
}
