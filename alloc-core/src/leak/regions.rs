//! Root regions registered by the program: memory the leak check must scan although it is
//! neither a stack, nor global data, nor a heap block (memory from `mmap`, a foreign
//! allocator, a device...).

use core::sync::atomic::{AtomicUsize, Ordering};

/// Most regions registered at once.
const MAX_REGIONS: usize = 256;

// Lock-free, like the mapping registry: the check reads it while other threads are
// stopped anywhere. A slot is free when its start is 0.
static STARTS: [AtomicUsize; MAX_REGIONS] = [const { AtomicUsize::new(0) }; MAX_REGIONS];
static LENS: [AtomicUsize; MAX_REGIONS] = [const { AtomicUsize::new(0) }; MAX_REGIONS];

/// Registers `[ptr, ptr + len)` as a root region: every leak check scans it for pointers
/// to heap blocks, like LSan's `__lsan_register_root_region`. Returns false when the table
/// (256 regions) is full or the region is empty.
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
/// let table = vec![0usize; 16].leak();
/// assert!(alloc_core::register_root(table.as_ptr().cast(), std::mem::size_of_val(table)));
/// alloc_core::unregister_root(table.as_ptr().cast());
/// ```
pub fn register_root(ptr: *const u8, len: usize) -> bool {
    if ptr.is_null() || len == 0 {
        return false;
    }
    for (s, l) in STARTS.iter().zip(&LENS) {
        if s.compare_exchange(0, ptr as usize, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            l.store(len, Ordering::Release);
            return true;
        }
    }
    false
}

/// Forgets a region registered with [`register_root`] (by its start). Returns whether it
/// was registered.
pub fn unregister_root(ptr: *const u8) -> bool {
    for (s, l) in STARTS.iter().zip(&LENS) {
        if s.load(Ordering::Acquire) == ptr as usize && !ptr.is_null() {
            l.store(0, Ordering::Release);
            s.store(0, Ordering::Release);
            return true;
        }
    }
    false
}

/// Calls `f(start, len)` for each registered region.
pub(crate) fn for_each_region(mut f: impl FnMut(usize, usize)) {
    for (s, l) in STARTS.iter().zip(&LENS) {
        let (start, len) = (s.load(Ordering::Acquire), l.load(Ordering::Acquire));
        if start != 0 && len != 0 {
            f(start, len);
        }
    }
}
