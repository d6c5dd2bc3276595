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
    /// Everything that makes an allocation other than plain, in one word (`mode == 0`:
    /// plain; the allocation fast path reads it through `plain_heap`):
    /// - bit 0 ([`GUARD`]): inside the allocator's own code (allocations go to the
    ///   internal heap);
    /// - bits 1..32 ([`DISABLED_ONE`] times the depth): the depth of `disable()` scopes
    ///   (blocks allocated meanwhile are ignored);
    /// - bits 32..64 ([`SCOPE_SHIFT`]): the leak-check scope (`check_scope`) this thread
    ///   allocates into, as the runtime's scope id; 0 outside any.
    mode: Cell<u64>,
    /// `heap` while `mode` is 0, [`NO_HEAP`] otherwise: the allocation fast path's one
    /// load and one compare for both (two instructions fewer than testing each). Every
    /// write of `heap` or `mode` writes it too ([`ThreadState::set_mode`]).
    plain_heap: Cell<usize>,
    /// What the free fast path compares a page's owner with: `heap`, with bit 0 set when
    /// the heap profile asks for the heap's frees ([`PROFILED`]). Equal, the block is
    /// this thread's and its free is plain; equal but for that bit, it is this thread's
    /// and profiled (one compare for both questions on the plain free: heaps are aligned,
    /// and no owner has bit 0 set).
    free_key: Cell<usize>,
}

/// [`ThreadState::free_key`]'s bit: the thread's heap sends its frees to the heap profile.
pub(crate) const PROFILED: usize = 1;

/// [`ThreadState::mode`]'s reentrancy-guard bit.
const GUARD: u64 = 1;
/// One level of `disable()` depth in [`ThreadState::mode`].
const DISABLED_ONE: u64 = 2;
/// The bits of the `disable()` depth.
const DISABLED_MASK: u64 = 0xFFFF_FFFE;
/// Where the leak-check scope id sits in [`ThreadState::mode`].
const SCOPE_SHIFT: u32 = 32;

thread_local! {
    static STATE: ThreadState = const { ThreadState::new() };
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
    const fn new() -> Self {
        Self {
            heap: Cell::new(NO_HEAP),
            mode: Cell::new(0),
            plain_heap: Cell::new(NO_HEAP),
            free_key: Cell::new(NO_HEAP),
        }
    }

    /// The heap slot: [`NO_HEAP`], [`HEAP_RETIRED`] or a heap's address.
    #[inline(always)]
    pub(crate) fn heap(&self) -> usize {
        self.heap.get()
    }

    /// Sets the heap slot; `profiled`: the heap sends its frees to the heap profile.
    #[inline]
    pub(crate) fn set_heap(&self, heap: usize, profiled: bool) {
        debug_assert!(!is_heap(heap) || heap.is_multiple_of(2));
        self.heap.set(heap);
        self.free_key.set(if is_heap(heap) { heap | if profiled { PROFILED } else { 0 } } else { NO_HEAP });
        self.set_mode(self.mode.get());
    }

    /// See [`ThreadState::free_key`]: the heap slot, tagged with [`PROFILED`]; [`NO_HEAP`]
    /// for a thread without a heap.
    #[inline(always)]
    pub(crate) fn free_key(&self) -> usize {
        self.free_key.get()
    }

    /// Sets the mode word, and the plain heap that follows from it and the heap slot.
    #[inline(always)]
    fn set_mode(&self, mode: u64) {
        self.mode.set(mode);
        self.plain_heap.set(if mode == 0 { self.heap.get() } else { NO_HEAP });
    }

    /// The heap slot if the thread's allocations take the fast path (see
    /// [`ThreadState::fast`]), [`NO_HEAP`] otherwise: one load for both questions.
    #[inline(always)]
    pub(crate) fn plain_heap(&self) -> usize {
        self.plain_heap.get()
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
        self.set_mode((mode & !(u64::MAX << SCOPE_SHIFT)) | (u64::from(scope) << SCOPE_SHIFT));
        (mode >> SCOPE_SHIFT) as u32
    }

    /// Sets or clears the reentrancy guard; returns whether it was set.
    #[inline]
    fn replace_guard(&self, on: bool) -> bool {
        let mode = self.mode.get();
        self.set_mode((mode & !GUARD) | u64::from(on));
        mode & GUARD != 0
    }

    /// Adds `delta` (+1 or -1) to the `disable()` depth, never below 0 nor above the
    /// field's 31 bits.
    fn add_disabled(&self, delta: i64) {
        let mode = self.mode.get();
        let depth = (mode & DISABLED_MASK) / DISABLED_ONE;
        let depth = depth.saturating_add_signed(delta).min(DISABLED_MASK / DISABLED_ONE);
        self.set_mode((mode & !DISABLED_MASK) | (depth * DISABLED_ONE));
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
    fn the_plain_heap_is_the_heap_only_while_the_mode_is_clear() {
        let s = ThreadState::new();
        assert_eq!(s.plain_heap(), NO_HEAP);
        s.set_heap(4096, false);
        assert_eq!(s.plain_heap(), 4096);
        assert!(!s.replace_guard(true));
        assert_eq!(s.plain_heap(), NO_HEAP);
        s.set_heap(8192, true);
        assert_eq!(s.free_key(), 8192 | PROFILED);
        assert_eq!(s.plain_heap(), NO_HEAP, "a heap set inside the allocator is not plain");
        assert!(s.replace_guard(false));
        assert_eq!(s.plain_heap(), 8192);
        s.add_disabled(1);
        assert_eq!(s.plain_heap(), NO_HEAP);
        s.add_disabled(-1);
        assert_eq!(s.set_scope(3), 0);
        assert_eq!(s.plain_heap(), NO_HEAP);
        assert_eq!(s.set_scope(0), 3);
        assert_eq!(s.plain_heap(), 8192);
        s.set_heap(HEAP_RETIRED, false);
        assert_eq!(s.free_key(), NO_HEAP);
        assert!(!is_heap(s.plain_heap()));
    }

    #[test]
    fn the_mode_fields_stay_apart() {
        let s = ThreadState::new();
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
