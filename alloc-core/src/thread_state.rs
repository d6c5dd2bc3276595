//! The allocator's per-thread state: this thread's heap slot, and one mode word holding
//! the reentrancy guard, the depth of `disable()` scopes and the leak-check scope.
//!
//! # What it owns
//! One `const`-initialized thread-local without a destructor ([`ThreadState`]): reading it
//! is a single `fs:`-relative address computation, and it never allocates nor registers a
//! destructor, so it is usable at any point of a thread's life, in the allocator's own
//! code included. The heap slot is an opaque address here (this module sits below the
//! heap, which gives it its type): [`NO_HEAP`] before the thread's first allocation, a
//! heap's address while the thread runs, and [`HEAP_RETIRED`] once the heap was handed
//! back at thread exit.
//!
//! # Reentrancy
//! Anything the allocator does that may allocate (stack capture fallback, report
//! writing, symbolization, pushing onto a lock-free queue) runs inside a
//! [`ReentrancyGuard`]: the allocation entry point sends allocations made meanwhile to
//! the internal heap, which is never tracked, never scanned as heap and never reported.

use core::cell::Cell;

/// The heap slot before the thread's first allocation.
pub(crate) const NO_HEAP: usize = 0;
/// The heap slot once the thread's heap was retired (thread exit).
pub(crate) const HEAP_RETIRED: usize = 1;

/// Per-thread allocator state. No destructor: safe to touch at any point of a thread's life.
pub(crate) struct ThreadState {
    /// [`NO_HEAP`], [`HEAP_RETIRED`], or the address of this thread's heap.
    heap: Cell<usize>,
    /// Everything that makes an allocation other than plain, in one word so that the
    /// allocation fast path tests it with one load and one compare (`mode == 0`):
    /// - bit 0 ([`GUARD`]): inside the allocator's own code (allocations go to the
    ///   internal heap);
    /// - bits 1..32 ([`DISABLED_ONE`] times the depth): the depth of `disable()` scopes
    ///   (blocks allocated meanwhile are ignored);
    /// - bits 32..64 ([`SCOPE_SHIFT`]): the leak-check scope (`check_scope`) this thread
    ///   allocates into, as the runtime's scope id; 0 outside any.
    mode: Cell<u64>,
}

/// [`ThreadState::mode`]'s reentrancy-guard bit.
const GUARD: u64 = 1;
/// One level of `disable()` depth in [`ThreadState::mode`].
const DISABLED_ONE: u64 = 2;
/// The bits of the `disable()` depth.
const DISABLED_MASK: u64 = 0xFFFF_FFFE;
/// Where the leak-check scope id sits in [`ThreadState::mode`].
const SCOPE_SHIFT: u32 = 32;

thread_local! {
    static STATE: ThreadState = const { ThreadState { heap: Cell::new(NO_HEAP), mode: Cell::new(0) } };
}

/// This thread's state. Taking the address in a tiny closure keeps `LocalKey::with`
/// inlined, so the access compiles to one `fs:`-relative address computation (a large
/// closure made LLVM outline `with` and reach the slot through an indirect call).
#[inline(always)]
fn state() -> *const ThreadState {
    STATE.with(|s| s as *const ThreadState)
}

/// Runs `f` on this thread's state.
#[inline(always)]
pub(crate) fn with<R>(f: impl FnOnce(&ThreadState) -> R) -> R {
    // SAFETY: the state is a destructor-free thread-local: it lives as long as the thread,
    // and only this thread reaches it (the reference never leaves `f`).
    f(unsafe { &*state() })
}

impl ThreadState {
    /// The heap slot: [`NO_HEAP`], [`HEAP_RETIRED`] or a heap's address.
    #[inline(always)]
    pub(crate) fn heap(&self) -> usize {
        self.heap.get()
    }

    /// Sets the heap slot.
    #[inline]
    pub(crate) fn set_heap(&self, heap: usize) {
        self.heap.set(heap);
    }

    /// Whether the reentrancy guard is held: the allocator's own code is running.
    #[inline(always)]
    pub(crate) fn in_allocator(&self) -> bool {
        self.mode.get() & GUARD != 0
    }

    /// Whether the thread's allocations take the fast path: not inside the allocator,
    /// no `disable()` scope, no leak-check scope. One load and one compare.
    #[inline(always)]
    pub(crate) fn fast(&self) -> bool {
        self.mode.get() == 0
    }

    /// Whether a `disable()` scope is open on this thread.
    #[inline(always)]
    pub(crate) fn disabled(&self) -> bool {
        self.mode.get() & DISABLED_MASK != 0
    }

    /// The leak-check scope id the thread allocates into (0: none).
    #[inline]
    pub(crate) fn scope(&self) -> u32 {
        (self.mode.get() >> SCOPE_SHIFT) as u32
    }

    /// Sets the leak-check scope id (0: none); returns the previous one.
    #[inline]
    pub(crate) fn set_scope(&self, scope: u32) -> u32 {
        let mode = self.mode.get();
        self.mode.set((mode & !(u64::MAX << SCOPE_SHIFT)) | (u64::from(scope) << SCOPE_SHIFT));
        (mode >> SCOPE_SHIFT) as u32
    }

    /// Sets or clears the reentrancy guard; returns whether it was set.
    #[inline]
    fn replace_guard(&self, on: bool) -> bool {
        let mode = self.mode.get();
        self.mode.set((mode & !GUARD) | u64::from(on));
        mode & GUARD != 0
    }

    /// Adds `delta` (+1 or -1) to the `disable()` depth, never below 0 nor above the
    /// field's 31 bits.
    fn add_disabled(&self, delta: i64) {
        let mode = self.mode.get();
        let depth = (mode & DISABLED_MASK) / DISABLED_ONE;
        let depth = depth.saturating_add_signed(delta).min(DISABLED_MASK / DISABLED_ONE);
        self.mode.set((mode & !DISABLED_MASK) | (depth * DISABLED_ONE));
    }
}

/// This thread's heap slot (see [`ThreadState::heap`]).
#[inline]
pub(crate) fn heap_slot() -> usize {
    with(|s| s.heap())
}

/// Whether `slot` names a heap (made, not yet retired).
#[inline(always)]
pub(crate) const fn is_heap(slot: usize) -> bool {
    slot > HEAP_RETIRED
}

/// Routes this thread's allocations to the internal heap while alive. Nests.
#[derive(Debug)]
pub(crate) struct ReentrancyGuard {
    was: bool,
}

impl ReentrancyGuard {
    /// Sets the guard until the returned value is dropped.
    #[inline]
    pub(crate) fn enter() -> Self {
        Self { was: with(|s| s.replace_guard(true)) }
    }
}

impl Drop for ReentrancyGuard {
    #[inline]
    fn drop(&mut self) {
        let was = self.was;
        with(|s| {
            s.replace_guard(was);
        });
    }
}

/// Enters a `disable()` scope on this thread. The caller has called
/// `page::note_ignored` first: blocks allocated inside are flagged ignored.
pub(crate) fn disable_enter() {
    with(|s| s.add_disabled(1));
}

/// Leaves a `disable()` scope on this thread.
pub(crate) fn disable_leave() {
    with(|s| s.add_disabled(-1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_nests_and_restores() {
        assert!(!with(|s| s.in_allocator()));
        {
            let _a = ReentrancyGuard::enter();
            {
                let _b = ReentrancyGuard::enter();
                assert!(with(|s| s.in_allocator()));
            }
            assert!(with(|s| s.in_allocator()), "the inner guard must restore the outer one");
        }
        assert!(!with(|s| s.in_allocator()));
    }

    #[test]
    fn disable_scopes_count_and_never_underflow() {
        disable_enter();
        disable_enter();
        disable_leave();
        assert!(with(|s| s.disabled()));
        disable_leave();
        disable_leave();
        assert!(!with(|s| s.disabled()));
    }

    #[test]
    fn the_mode_fields_stay_apart() {
        let s = ThreadState { heap: Cell::new(NO_HEAP), mode: Cell::new(0) };
        assert!(s.fast());
        assert_eq!(s.set_scope(u32::MAX), 0);
        s.add_disabled(1);
        assert!(!s.replace_guard(true));
        assert!(s.in_allocator() && s.disabled() && s.scope() == u32::MAX && !s.fast());
        assert!(s.replace_guard(false));
        s.add_disabled(-1);
        s.add_disabled(-1);
        assert!(!s.in_allocator() && !s.disabled() && s.scope() == u32::MAX);
        assert_eq!(s.set_scope(7), u32::MAX);
        assert_eq!(s.scope(), 7);
        assert_eq!(s.set_scope(0), 7);
        assert!(s.fast());
        for _ in 0..3 {
            s.add_disabled(i64::MAX);
        }
        assert!(s.disabled() && !s.in_allocator() && s.scope() == 0);
    }

    #[test]
    fn slot_values_are_told_apart() {
        assert!(!is_heap(NO_HEAP) && !is_heap(HEAP_RETIRED) && is_heap(4096));
    }
}
