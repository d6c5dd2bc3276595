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
///
/// Invariant: `heap` is initialized (by [`Heap::init`], for the lock's kind) ⇔ `ready`;
/// it is used only by the holder of the lock around this struct, so that holder has the
/// heap's exclusive use.
pub(crate) struct LockedHeap {
    ready: bool,
    heap: core::mem::MaybeUninit<Heap>,
}

// SAFETY: the heap's raw pointers name process-wide pages and segments, tied to no
// thread; a `LockedHeap` lives only inside a `SpinLock`, so every use of it is made by the
// lock's holder, whichever thread that is.
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
///
/// A safe `fn` whose callers ensure that `align` is a power of two (checked in debug
/// builds): they pass a `Layout`'s, which [`Heap::alloc`] requires.
pub(crate) fn alloc(which: Which, size: usize, align: usize, flags: u8, zeroed: bool) -> *mut u8 {
    debug_assert!(align.is_power_of_two());
    let (lock, kind) = match which {
        Which::Internal => (&INTERNAL_HEAP, HeapKind::Internal),
        Which::Shared => (&SHARED_HEAP, HeapKind::Shared),
    };
    let _guard = ReentrancyGuard::enter();
    let mut h = lock.lock();
    if !h.ready {
        // SAFETY: `Heap::init`'s bullet: `h.heap` is the static's own `MaybeUninit<Heap>`,
        // valid for writes of a `Heap` and aligned for it; `ready` is false, so it was never
        // initialized, and nobody else uses it: we hold the lock (`h`), and every use of
        // the heap is made under it.
        unsafe { Heap::init(h.heap.as_mut_ptr(), kind, StackBounds { lo: 0, hi: 0 }) };
        h.ready = true;
    }
    // SAFETY:
    // - The heap is initialized: `ready` is set (type invariant), just above if not before.
    // - `Heap::alloc`, first bullet: we hold the heap's lock (`h`, type invariant), so we
    //   have its exclusive use; `as_mut_ptr` makes no reference another user could hold.
    // - Second bullet: `align` is a power of two (callers, see above).
    unsafe { (*h.heap.as_mut_ptr()).alloc(size, align, flags, zeroed) }
}

/// Calls `f` with the shared heap's counters, if it was ever used (the internal heap is
/// untracked).
pub(crate) fn with_shared_counters(f: impl FnOnce(&crate::counters::Counters)) {
    let h = SHARED_HEAP.lock();
    if h.ready {
        // SAFETY: `ready` is set, so the heap is initialized (type invariant); we hold its
        // lock (`h`), so nobody writes it while `f` reads the counters.
        f(unsafe { &(*h.heap.as_ptr()).counters });
    }
}
