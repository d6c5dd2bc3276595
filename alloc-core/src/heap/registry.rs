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

/// The registered heaps.
///
/// Invariants: `head` links (through `next`/`prev`) exactly the heaps in use, `count` of
/// them; `free` links (through `next`) retired heap structs; `[chunk, chunk_end)` is the
/// unused part of the last carving mapping.
pub(crate) struct Registry {
    head: *mut Heap,
    free: *mut Heap,
    chunk: usize,
    chunk_end: usize,
    count: usize,
}

// SAFETY: heaps are process-wide objects; the lock serializes the registry.
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
            // SAFETY: retired heaps on the free list are valid structs with a valid `next`
            // link (registry invariant).
            self.free = unsafe { (*h).next };
            return h;
        }
        let size = (core::mem::size_of::<Heap>() + 63) & !63;
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
    /// - `heap` is a valid heap on no list.
    unsafe fn link(&mut self, heap: *mut Heap) {
        // SAFETY: `heap` is valid and unlinked (caller); `head` is null or a registered
        // heap (invariant).
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
    /// - `heap` is registered, and nobody uses it any more.
    unsafe fn unlink(&mut self, heap: *mut Heap) {
        // SAFETY: `heap` is registered (caller): its neighbours are null or registered
        // heaps, valid and linked only under this lock.
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
        // SAFETY: fresh or retired heap memory, aligned to 64, ours under the registry
        // lock; initialized before it is linked.
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
    // SAFETY: valid and unused by anyone else (caller).
    unsafe { (*heap).abandon_all() };
    let mut r = REGISTRY.lock();
    // SAFETY: as above; read before the struct goes on the free list.
    counters::RETIRED.absorb(unsafe { &(*heap).counters });
    // SAFETY: registered and unused (caller).
    unsafe { r.unlink(heap) };
}

/// Calls `f` for every registered thread heap, under the registry lock.
pub(crate) fn for_each_heap(mut f: impl FnMut(&Heap)) {
    let r = REGISTRY.lock();
    let mut h = r.head;
    while !h.is_null() {
        // SAFETY: registered heaps are valid while the lock is held; `next` links them.
        unsafe {
            f(&*h);
            h = (*h).next;
        }
    }
}

/// A registered heap other than `me`, if any (for the `fork` child, which retires the
/// heaps of the threads it did not inherit).
pub(crate) fn any_other_than(me: *mut Heap) -> Option<*mut Heap> {
    let r = REGISTRY.lock();
    let mut h = r.head;
    while !h.is_null() && h == me {
        // SAFETY: registered heaps are valid under the lock.
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
