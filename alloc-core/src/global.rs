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

// SAFETY: the methods below uphold `GlobalAlloc`'s contract: blocks are at least
// `layout.size()` bytes, aligned to `layout.align()` (rounded sizes and page alignment for
// sizes up to 64 KiB, aligned offsets in dedicated segments above), never overlap while
// live, and failures return null instead of unwinding or aborting.
unsafe impl GlobalAlloc for HeapSweep {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: a `Layout`'s alignment is a power of two and its size rounded up to it
        // does not overflow `isize`.
        unsafe { entry::alloc(layout.size(), layout.align(), false) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { entry::alloc(layout.size(), layout.align(), true) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a block this allocator returned, with its layout
        // (GlobalAlloc::dealloc's contract).
        unsafe { entry::free(ptr, layout.size()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds GlobalAlloc::realloc's contract: `ptr` is a live block
        // of ours allocated with `layout`, and `new_size` rounded to the alignment does
        // not overflow isize.
        unsafe { entry::realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}
