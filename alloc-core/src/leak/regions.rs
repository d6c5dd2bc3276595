//! Root regions registered by the program: memory the leak check must scan although it is
//! neither a stack, nor global data, nor a heap block (memory from `mmap`, a foreign
//! allocator, a device...), like LSan's `__lsan_register_root_region`.
//!
//! # What it owns
//! A fixed table of 256 regions, lock-free rather than under a lock: the check reads it
//! while other threads are stopped anywhere, possibly in the middle of
//! [`register_root`], and a lock held by a stopped thread would never be released.
//! A slot is free when its start is 0; it is claimed by a compare-and-swap on its start,
//! then its length is stored (a reader may briefly see length 0: an empty region).
//!
//! # Who calls it
//! The program, through `alloc_core::{register_root, unregister_root}`; the roots phase
//! reads it with [`for_each_region`].

use core::sync::atomic::{AtomicUsize, Ordering};

/// Most regions registered at once.
const MAX_REGIONS: usize = 256;

struct RegionTable<const N: usize> {
    starts: [AtomicUsize; N],
    lens: [AtomicUsize; N],
}

impl<const N: usize> RegionTable<N> {
    const fn new() -> Self {
        Self { starts: [const { AtomicUsize::new(0) }; N], lens: [const { AtomicUsize::new(0) }; N] }
    }

    fn register(&self, start: usize, len: usize) -> bool {
        if start == 0 || len == 0 {
            return false;
        }
        for (s, l) in self.starts.iter().zip(&self.lens) {
            if s.compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                l.store(len, Ordering::Release);
                return true;
            }
        }
        false
    }

    fn unregister(&self, start: usize) -> bool {
        if start == 0 {
            return false;
        }
        for (s, l) in self.starts.iter().zip(&self.lens) {
            if s.load(Ordering::Acquire) == start {
                l.store(0, Ordering::Release);
                s.store(0, Ordering::Release);
                return true;
            }
        }
        false
    }

    fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        for (s, l) in self.starts.iter().zip(&self.lens) {
            // The start is read again after the length: if the slot changed hands in
            // between, the pair would mix two regions.
            let (start, len) = (s.load(Ordering::Acquire), l.load(Ordering::Acquire));
            if start != 0 && len != 0 && s.load(Ordering::Acquire) == start {
                f(start, len);
            }
        }
    }
}

static REGIONS: RegionTable<MAX_REGIONS> = RegionTable::new();

/// Registers `[ptr, ptr + len)` as a root region: every leak check scans it for pointers
/// to heap blocks, like LSan's `__lsan_register_root_region`. The memory must stay
/// readable until [`unregister_root`]. Returns false when the table (256 regions) is full,
/// `ptr` is null or `len` is 0.
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
/// // Memory of the program's own, outside the heap (a mapping, here).
/// // SAFETY: an anonymous private mapping has no preconditions.
/// let table = unsafe {
///     libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE,
///                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
/// };
/// assert!(alloc_core::register_root(table.cast(), 4096));
/// // ... the heap blocks it points to are now reachable ...
/// assert!(alloc_core::unregister_root(table.cast()));
/// assert!(!alloc_core::unregister_root(table.cast()));
/// // SAFETY: unmapping the mapping made above.
/// unsafe { libc::munmap(table, 4096) };
/// ```
pub fn register_root(ptr: *const u8, len: usize) -> bool {
    REGIONS.register(ptr as usize, len)
}

/// Forgets a region registered with [`register_root`] (by its start). Returns whether it
/// was registered.
pub fn unregister_root(ptr: *const u8) -> bool {
    REGIONS.unregister(ptr as usize)
}

/// Calls `f(start, len)` for each registered region.
pub(crate) fn for_each_region(f: impl FnMut(usize, usize)) {
    REGIONS.for_each(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions<const N: usize>(t: &RegionTable<N>) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        t.for_each(|s, l| v.push((s, l)));
        v
    }

    #[test]
    fn regions_come_and_go() {
        let t = RegionTable::<4>::new();
        assert!(t.register(0x1000, 64) && t.register(0x2000, 8));
        assert_eq!(regions(&t), vec![(0x1000, 64), (0x2000, 8)]);
        assert!(t.unregister(0x1000));
        assert!(!t.unregister(0x1000), "already gone");
        assert_eq!(regions(&t), vec![(0x2000, 8)]);
        assert!(t.register(0x3000, 16), "the freed slot is reused");
        assert_eq!(regions(&t), vec![(0x3000, 16), (0x2000, 8)]);
    }

    #[test]
    fn a_full_table_and_empty_regions_are_refused() {
        let t = RegionTable::<2>::new();
        assert!(!t.register(0, 8) && !t.register(0x1000, 0) && !t.unregister(0));
        assert!(t.register(0x1000, 8) && t.register(0x2000, 8));
        assert!(!t.register(0x3000, 8));
        assert_eq!(regions(&t).len(), 2);
    }
}
