//! `HeapSweep` as the inner allocator of a program's own global allocator: a counting
//! wrapper (as some test suites have) forwards every call, counts right, and leaks are
//! found with the user's stack on top; the wrapper's `GlobalAlloc` methods are trimmed
//! from report stacks like the allocator's own frames.

use alloc_core::HeapSweep;
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

/// A counting wrapper: counts each thread's calls, then forwards them to `HeapSweep`.
struct Counting {
    inner: HeapSweep,
}

thread_local! {
    /// This thread's (allocations, frees, reallocations); const-initialized without
    /// drop, so reading it never allocates.
    static CALLS: Cell<(u64, u64, u64)> = const { Cell::new((0, 0, 0)) };
}

fn count(f: impl Fn((u64, u64, u64)) -> (u64, u64, u64)) {
    let _ = CALLS.try_with(|c| c.set(f(c.get())));
}

// SAFETY: every method forwards to `HeapSweep`, which upholds the contract, with the
// caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(|(a, f, r)| (a + 1, f, r));
        // SAFETY: the caller's promises are `HeapSweep::alloc`'s.
        unsafe { self.inner.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(|(a, f, r)| (a + 1, f, r));
        // SAFETY: as above.
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(|(a, f, r)| (a, f + 1, r));
        // SAFETY: `ptr` came from `self.inner` with `layout` (every allocation does).
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(|(a, f, r)| (a, f, r + 1));
        // SAFETY: as above.
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting { inner: HeapSweep::new() };

mod common;

fn calls() -> (u64, u64, u64) {
    CALLS.with(|c| c.get())
}

#[test]
fn the_wrapper_counts_every_call_and_heapsweep_serves_them() {
    let before = calls();
    let boxes: Vec<Box<u64>> = std::hint::black_box((0..100).map(Box::new).collect());
    let mut grown: Vec<u64> = Vec::with_capacity(1);
    let mut grows = 0;
    for i in 0..64 {
        let cap = grown.capacity();
        grown.push(i);
        grows += u64::from(grown.capacity() != cap);
    }
    let after = calls();
    // 100 boxes, one vector of exact size, one vector grown by reallocations.
    assert_eq!((after.0 - before.0, after.1 - before.1, after.2 - before.2), (102, 0, grows));
    assert!(grows >= 4, "{grows}");
    let info = alloc_core::block_info(&*boxes[7] as *const u64 as *const u8).expect("HeapSweep's block");
    assert_eq!(info.requested_size, 8);
    let frames = alloc_core::stack_frames(info.stack);
    assert!(!frames.is_empty(), "the allocation stack was recorded through the wrapper");
    assert!(alloc_core::usable_size(grown.as_ptr().cast()).is_some_and(|n| n >= 64 * 8));
    drop(boxes);
    drop(grown);
    let freed = calls();
    assert_eq!(freed.1 - after.1, 102);
}

/// The user's code that leaks: the top frame of the leak's stack (after what allocates
/// the kind of object, `Box::new`).
#[inline(never)]
fn leaky_user_function() {
    std::mem::forget(std::hint::black_box(Box::new([3u8; 1234])));
}

#[inline(never)]
fn growing_user_function() {
    let mut v: Vec<u32> = Vec::with_capacity(1);
    for i in 0..1000 {
        v.push(i);
    }
    std::mem::forget(std::hint::black_box(v));
}

fn stack_names(r: &alloc_core::LeakReport, bytes: u64) -> Vec<String> {
    let g = r.leaks.iter().find(|g| g.bytes == bytes).unwrap_or_else(|| panic!("no {bytes}-byte leak: {r:#?}"));
    g.stack.iter().map(|f| f.function.clone().unwrap_or_default()).collect()
}

#[test]
fn a_leak_through_the_wrapper_is_found_with_the_user_frames_on_top() {
    let _s = common::serial();
    // The leaks are the test's own: the at-exit check of this binary stays quiet.
    alloc_core::config::set_check_at_exit(false);
    common::on_thread(leaky_user_function);
    common::on_thread(growing_user_function);
    let r = alloc_core::check();
    assert_eq!(r.status, alloc_core::report::model::CheckStatus::Ok);
    for (bytes, user) in [(1234, "leaky_user_function"), (4096, "growing_user_function")] {
        let names = stack_names(&r, bytes);
        let at = names.iter().position(|n| n.ends_with(user)).unwrap_or_else(|| panic!("{user} not in {names:#?}"));
        // Above the user's frame only what allocates the kind of object (`Box::new`,
        // `Vec::push`): neither the wrapper nor HeapSweep nor std's allocation glue.
        assert!(at <= 2, "{names:#?}");
        for n in &names[..at] {
            assert!(n.starts_with("alloc::boxed::Box") || n.starts_with("alloc::vec::Vec"), "{n} in {names:#?}");
        }
        assert!(!names.iter().any(|n| n.contains("Counting") || n.contains("GlobalAlloc")), "{names:#?}");
    }
}
