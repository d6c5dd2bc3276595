//! The registry of thread heaps: making a heap for a thread, retiring it when the thread
//! ends, and walking the live ones.
//!
//! # What it owns
//! [`REGISTRY`]: a doubly linked list of the thread heaps in use, a free list of retired
//! heap structs for reuse, and the mappings heap structs are carved from (registered as
//! the allocator's own memory: never scanned as roots). Heaps are never unmapped: a heap
//! struct is reused, never freed.
//!
//! # Who calls it
//! The runtime (thread start and exit, `fork`), `introspect` (statistics), the leak
//! check's heap walk. Never on a fast path.

use super::{Heap, HeapKind};
use crate::counters;
use crate::os;
use crate::stack::StackBounds;
use crate::sync::SpinLock;
use crate::thread_state::ReentrancyGuard;
use core::sync::atomic::Ordering;

/// The registered heaps.
///
/// Invariants:
/// - `head` links (through `next`/`prev`, `prev` of the head null) exactly the heaps in
///   use, `count` of them; `free` links (through `next`) the retired heap structs; while
///   the lock is free, every carved heap struct is on exactly one of the two lists;
/// - every heap struct lies in a mapping of [`HEAP_CHUNK`] bytes that is never unmapped,
///   at a multiple of 64 from its page-aligned start (and `align_of::<Heap>() <= 64`), so
///   it stays valid, and aligned, for the life of the process;
/// - `[chunk, chunk_end)` is the unused part of the last carving mapping;
/// - every field is read and written only under [`REGISTRY`]'s lock (a `&Registry` can be
///   had only through its guard).
pub(crate) struct Registry {
    head: *mut Heap,
    free: *mut Heap,
    chunk: usize,
    chunk_end: usize,
    count: usize,
}

// SAFETY: the raw pointers name heap structs in process-wide mappings, tied to no thread;
// every access through a `Registry` is made under `REGISTRY`'s lock, so moving it between
// threads moves only the right to use them under that lock.
unsafe impl Send for Registry {}

/// The registry, under its lock.
pub(crate) static REGISTRY: SpinLock<Registry> = SpinLock::new(Registry {
    head: core::ptr::null_mut(),
    free: core::ptr::null_mut(),
    chunk: 0,
    chunk_end: 0,
    count: 0,
});

/// Size of the mappings heap structs are carved from.
const HEAP_CHUNK: usize = 256 << 10;

impl Registry {
    /// Memory for one heap struct: a retired one, or carved from a mapping. Null when the
    /// OS refuses memory.
    fn heap_memory(&mut self) -> *mut Heap {
        if !self.free.is_null() {
            let h = self.free;
            // SAFETY: `h` is the non-null head of `free`: a retired heap struct, valid for
            // the life of the process, whose `next` was set by `unlink` (registry
            // invariants); `&mut self` proves the registry lock is held, so nobody else
            // walks or changes the list.
            self.free = unsafe { (*h).next };
            return h;
        }
        let size = (core::mem::size_of::<Heap>() + 63) & !63;
        debug_assert!(core::mem::align_of::<Heap>() <= 64 && size <= HEAP_CHUNK);
        if self.chunk + size > self.chunk_end {
            let Some(p) = os::map(HEAP_CHUNK) else {
                return core::ptr::null_mut();
            };
            os::register_own_mapping(p.as_ptr() as usize, HEAP_CHUNK);
            self.chunk = p.as_ptr() as usize;
            self.chunk_end = self.chunk + HEAP_CHUNK;
        }
        let h = self.chunk as *mut Heap;
        self.chunk += size;
        h
    }

    /// Links an initialized heap at the head of the list.
    ///
    /// # Safety
    /// - `heap` is a valid, initialized heap struct on neither list.
    unsafe fn link(&mut self, heap: *mut Heap) {
        // SAFETY:
        // - `heap` is valid and on no list (caller), so writing its links breaks no list.
        // - `head` is null or a registered heap (registry invariant), valid, whose `prev`
        //   is written only under the registry lock, which `&mut self` proves we hold.
        unsafe {
            (*heap).prev = core::ptr::null_mut();
            (*heap).next = self.head;
            if !self.head.is_null() {
                (*self.head).prev = heap;
            }
        }
        self.head = heap;
        self.count += 1;
    }

    /// Takes a registered heap off the list and puts its struct on the free list.
    ///
    /// # Safety
    /// - `heap` is registered (on the `head` list).
    /// - Nobody uses it any more: once on the free list, `create` may hand it out again.
    unsafe fn unlink(&mut self, heap: *mut Heap) {
        // SAFETY:
        // - `heap` is registered (caller, first bullet), so valid, and its `prev`/`next`
        //   are null or registered heaps (registry invariant), whose links are written
        //   only under the registry lock, which `&mut self` proves we hold.
        // - Writing its `next`/`prev` for the free list races with nobody: nobody else
        //   uses it (caller, second bullet).
        unsafe {
            let (p, n) = ((*heap).prev, (*heap).next);
            if p.is_null() {
                self.head = n
            } else {
                (*p).next = n
            }
            if !n.is_null() {
                (*n).prev = p;
            }
            (*heap).next = self.free;
            (*heap).prev = core::ptr::null_mut();
        }
        self.free = heap;
        self.count -= 1;
    }
}

/// Makes and registers a heap for the calling thread, whose stack spans `bounds`. Null
/// when the OS refuses memory. The caller makes it the thread's heap.
pub(crate) fn create(bounds: StackBounds) -> *mut Heap {
    let _guard = ReentrancyGuard::enter();
    let mut r = REGISTRY.lock();
    let heap = r.heap_memory();
    if !heap.is_null() {
        // SAFETY:
        // - `Heap::init`: `heap` is valid for writes of a `Heap` and aligned: a retired
        //   struct, or a fresh carve of at least `size_of::<Heap>()` bytes at a multiple
        //   of 64 in a page-aligned mapping (registry invariants); nobody else uses it: it
        //   was just taken off the free list or carved, under the registry lock `r`. The
        //   calling thread owns it from now on (`create`'s callers: a thread's start).
        // - `link`: the heap is initialized and on neither list.
        unsafe {
            Heap::init(heap, HeapKind::Thread, bounds);
            r.link(heap);
        }
    }
    heap
}

/// Retires a heap: its pages are abandoned or returned, its counters kept in the retired
/// totals, its struct kept for reuse.
///
/// # Safety
/// - `heap` is registered and nobody uses it again (its thread ended, or does not exist
///   in a `fork` child).
pub(crate) unsafe fn retire(heap: *mut Heap) {
    let _guard = ReentrancyGuard::enter();
    // SAFETY: `abandon_all`'s bullet: `heap` is registered, so a valid heap (registry
    // invariant), and nobody else uses it, now or later (caller): we have exclusive use,
    // and afterwards only `create` reuses the struct, through `Heap::init`.
    unsafe { (*heap).abandon_all() };
    let mut r = REGISTRY.lock();
    // SAFETY: `heap` is still registered, so valid (registry invariant), and nobody else
    // uses it (caller), so its counters are not being written; the shared reference ends
    // with this statement, before `unlink` puts the struct on the free list, where
    // `create` could reinitialize it (only under the lock `r` holds, so not before).
    counters::RETIRED.absorb(unsafe { &(*heap).counters });
    // SAFETY: `heap` is registered (caller, first bullet: `abandon_all` does not unlink
    // it) and nobody uses it any more (caller, second bullet).
    unsafe { r.unlink(heap) };
}

/// Calls `f` for every registered thread heap, under the registry lock. The heaps' threads
/// keep running and writing their heaps meanwhile: `f` touches only what is atomic (it
/// reads the counters, or adds to `declines_plain`).
pub(crate) fn for_each_heap(mut f: impl FnMut(&Heap)) {
    let r = REGISTRY.lock();
    let mut h = r.head;
    while !h.is_null() {
        // SAFETY: `h` is non-null and on the `head` list (its head, or reached through
        // `next`), so a registered heap, valid (registry invariants); it stays registered,
        // and `next` unchanged, while we hold the registry lock (`r`), which `retire`
        // needs to unlink it. (The `&Heap` spans fields its owning thread writes
        // meanwhile; `f` touches only atomic fields.)
        unsafe {
            f(&*h);
            h = (*h).next;
        }
    }
}

/// Tells every registered thread heap of the reasons `track::not_plain_reasons` holds now
/// (after one was added: new blocks zeroed). Under the registry lock: a heap made
/// meanwhile either is registered before this runs, or reads the reasons after (in
/// `Heap::init`, under the same lock).
pub(crate) fn note_not_plain() {
    let reasons = crate::track::not_plain_reasons();
    for_each_heap(|h| {
        h.declines_plain.fetch_or(u32::from(reasons), Ordering::Relaxed);
    });
}

/// A registered heap other than `me`, if any (for the `fork` child, which retires the
/// heaps of the threads it did not inherit).
pub(crate) fn any_other_than(me: *mut Heap) -> Option<*mut Heap> {
    let r = REGISTRY.lock();
    let mut h = r.head;
    while !h.is_null() && h == me {
        // SAFETY: `h` is non-null and on the `head` list, so a registered heap, valid
        // (registry invariants); its `next` is written only under the registry lock, which
        // `r` holds.
        h = unsafe { (*h).next };
    }
    (!h.is_null()).then_some(h)
}

/// Number of registered thread heaps.
pub(crate) fn heap_count() -> usize {
    REGISTRY.lock().count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(heap: *mut Heap) -> bool {
        let mut seen = false;
        for_each_heap(|h| seen |= core::ptr::eq(h, heap));
        seen
    }

    fn on_free_list(heap: *mut Heap) -> bool {
        let r = REGISTRY.lock();
        let mut h = r.free;
        while !h.is_null() {
            if h == heap {
                return true;
            }
            // SAFETY: retired structs on the free list stay valid; the lock is held.
            h = unsafe { (*h).next };
        }
        false
    }

    /// Other tests' threads make and retire heaps meanwhile: only this heap's own
    /// membership is asserted, not counts; after retirement its struct is either free or
    /// already reused by another thread's new heap, never both and never lost.
    #[test]
    fn a_heap_is_walked_from_creation_to_retirement() {
        let a = create(StackBounds { lo: 0, hi: 0 });
        assert!(!a.is_null());
        assert!(registered(a), "a new heap is walked");
        assert!(!on_free_list(a));
        assert!(heap_count() >= 1);
        // SAFETY: made above, used by nobody.
        unsafe { retire(a) };
        assert!(on_free_list(a) || registered(a), "a retired struct is kept for reuse");
    }
}
