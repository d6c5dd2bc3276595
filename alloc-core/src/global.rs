//! The `GlobalAlloc` implementation: four thin methods over the runtime's entry points.

use crate::runtime::entry;
use core::alloc::{GlobalAlloc, Layout};

/// The HeapSweep allocator. Install it with
/// ```
/// #[global_allocator]
/// static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
/// # fn main() {}
/// ```
/// Every allocation records its requested size, its allocation stack (see the
/// `stack_depth` option) and its generation; see the crate documentation for the rest.
#[derive(Debug, Default, Clone, Copy)]
pub struct HeapSweep {
    _private: (),
}

impl HeapSweep {
    /// The allocator. It has no state of its own: everything lives in process-wide
    /// structures set up on first use.
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

// SAFETY: the methods below uphold `GlobalAlloc`'s contract:
// - Blocks are at least `layout.size()` bytes and aligned to `layout.align()`: up to
//   64 KiB the size is rounded up to the alignment, then to a class size that is a
//   multiple of it, in pages that are 64 KiB aligned (see `size_class`); above, the block
//   sits at an aligned offset of a segment of its own.
// - Live blocks never overlap: a page block is handed out only off its page's free list,
//   a large block has its segment alone.
// - `alloc` and `realloc` failures return null; they do not unwind. (Misuse that `free`
//   detects, a double free say, aborts: that is outside the contract's callers' promises.)
// - `dealloc` and `realloc` accept exactly what `alloc` returned, with its layout.
unsafe impl GlobalAlloc for HeapSweep {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `entry::alloc`'s bullet: a `Layout`'s alignment is a power of two and its
        // size rounded up to it does not overflow `isize` (`Layout`'s invariants).
        unsafe { entry::alloc(layout.size(), layout.align(), false) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `entry::alloc`'s bullet: a `Layout`'s alignment is a power of two and its
        // size rounded up to it does not overflow `isize` (`Layout`'s invariants).
        unsafe { entry::alloc(layout.size(), layout.align(), true) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `entry::free`'s bullet: `ptr` was returned by this allocator for
        // `layout` (so for `layout.size()` bytes) and is not used afterwards
        // (`GlobalAlloc::dealloc`'s contract: `ptr` is currently allocated by this
        // allocator, with this layout).
        unsafe { entry::free(ptr, layout.size()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `entry::realloc`'s bullet, from `GlobalAlloc::realloc`'s contract:
        // - `ptr` is currently allocated by this allocator with `layout` (so with
        //   `layout.size()` bytes and alignment `layout.align()`);
        // - `new_size > 0`, and rounded up to `layout.align()` it does not overflow
        //   `isize`.
        unsafe { entry::realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}
