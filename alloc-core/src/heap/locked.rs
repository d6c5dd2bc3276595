//! The two heaps shared under locks: the internal heap and the shared heap.
//!
//! # What it owns
//! - [`INTERNAL_HEAP`]: the allocator's own allocations (stack capture fallback,
//!   symbolization, reports, lock-free queue nodes), made under the reentrancy guard.
//!   Untracked: its blocks are never counted, reported or scanned as heap.
//! - [`SHARED_HEAP`]: tracked allocations of threads that have no heap of their own
//!   (destructors running after the thread's heap was retired at thread exit).
//!
//! Each is set up on first use, under its lock. The `fork` handlers hold both locks
//! across `fork` (`runtime::fork` gives the order).

use super::{Heap, HeapKind};
use crate::stack::StackBounds;
use crate::sync::SpinLock;
use crate::thread_state::ReentrancyGuard;

/// A heap under a lock, set up on first use.
pub(crate) struct LockedHeap {
    ready: bool,
    heap: core::mem::MaybeUninit<Heap>,
}

// SAFETY: the heap's raw pointers name process-wide pages; the lock serializes every use.
unsafe impl Send for LockedHeap {}

/// The allocator's own allocations.
pub(crate) static INTERNAL_HEAP: SpinLock<LockedHeap> =
    SpinLock::new(LockedHeap { ready: false, heap: core::mem::MaybeUninit::uninit() });
/// Tracked allocations of threads without a heap of their own.
pub(crate) static SHARED_HEAP: SpinLock<LockedHeap> =
    SpinLock::new(LockedHeap { ready: false, heap: core::mem::MaybeUninit::uninit() });

/// Which locked heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    /// [`INTERNAL_HEAP`].
    Internal,
    /// [`SHARED_HEAP`].
    Shared,
}

/// Allocates from a locked heap. `flags` are the block's initial flags (`IGNORED` inside
/// a `disable()` scope). Null when out of memory.
pub(crate) fn alloc(which: Which, size: usize, align: usize, flags: u8, zeroed: bool) -> *mut u8 {
    let (lock, kind) = match which {
        Which::Internal => (&INTERNAL_HEAP, HeapKind::Internal),
        Which::Shared => (&SHARED_HEAP, HeapKind::Shared),
    };
    let _guard = ReentrancyGuard::enter();
    let mut h = lock.lock();
    if !h.ready {
        // SAFETY: first use, under the lock: the memory is the static's own, aligned, and
        // nobody else sees the heap until `ready` is set.
        unsafe { Heap::init(h.heap.as_mut_ptr(), kind, StackBounds { lo: 0, hi: 0 }) };
        h.ready = true;
    }
    // SAFETY: initialized (`ready`); the lock gives exclusive use; `align` is a Layout's
    // (the entry point's caller).
    unsafe { (*h.heap.as_mut_ptr()).alloc(size, align, flags, zeroed) }
}

/// Calls `f` with the shared heap's counters, if it was ever used (the internal heap is
/// untracked).
pub(crate) fn with_shared_counters(f: impl FnOnce(&crate::counters::Counters)) {
    let h = SHARED_HEAP.lock();
    if h.ready {
        // SAFETY: initialized (`ready`); the lock is held for the read.
        f(unsafe { &(*h.heap.as_ptr()).counters });
    }
}
