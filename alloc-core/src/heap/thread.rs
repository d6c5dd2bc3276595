//! Threads and their heaps: the thread-local heap pointer, the reentrancy guard, heap
//! creation and retirement, the locked internal and shared heaps, abandoned pages, `fork`.
//!
//! # Thread-local state
//! One `const`-initialized thread-local without a destructor ([`ThreadState`]): reading it
//! is a single `fs:`-relative load, and it never allocates nor registers a destructor.
//! `heap` is null before the thread's first allocation, a heap pointer while the thread
//! runs, and [`HEAP_RETIRED`] once its heap was handed back at thread exit.
//!
//! # Thread exit
//! A `pthread` key destructor (not a `thread_local!` destructor, which would allocate)
//! abandons the heap's pages: empty ones go back to the pool, the others onto per-class
//! abandoned lists (`crossbeam_queue::SegQueue`, whose own allocations go to the internal
//! heap) that other threads adopt from on their slow path. Allocations after that (later
//! destructors of the same thread) are served by the shared heap, under its lock.
//!
//! # Reentrancy
//! Anything the allocator does that may allocate (stack capture fallback, report
//! writing, symbolization, pushing onto a `SegQueue`) runs inside a [`ReentrancyGuard`]:
//! allocations made meanwhile go to the internal heap, which is never tracked, never
//! scanned as heap and never reported.

use super::{Heap, HeapKind, Misuse};
use crate::page::{Page, IGNORED};
use crate::size_class::CLASS_COUNT;
use crate::stack::{self, StackBounds};
use crate::sync::SpinLock;
use crate::{os, segment, track};
use core::cell::Cell;
use core::sync::atomic::{AtomicU8, Ordering};
use crossbeam_queue::SegQueue;

/// `ThreadState::heap` once the thread's heap was retired.
pub(crate) const HEAP_RETIRED: *mut Heap = std::ptr::dangling_mut::<Heap>();

/// Per-thread allocator state. No destructor: safe to touch at any point of a thread's life.
pub(crate) struct ThreadState {
    heap: Cell<*mut Heap>,
    /// Inside the allocator's own code: allocations go to the internal heap.
    guard: Cell<bool>,
    /// Depth of `disable()` scopes: blocks allocated meanwhile are ignored.
    disabled: Cell<u32>,
}

thread_local! {
    static STATE: ThreadState = const {
        ThreadState { heap: Cell::new(core::ptr::null_mut()), guard: Cell::new(false), disabled: Cell::new(0) }
    };
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
fn with_state<R>(f: impl FnOnce(&ThreadState) -> R) -> R {
    // SAFETY: the state is a destructor-free thread-local: it lives as long as the thread,
    // and only this thread reaches it.
    f(unsafe { &*state() })
}

/// This thread's heap, or null / [`HEAP_RETIRED`].
#[inline]
pub(crate) fn current_heap() -> *mut Heap {
    with_state(|s| s.heap.get())
}

/// Whether this thread has a heap of its own (made, not yet retired).
#[inline]
pub(crate) fn has_own_heap() -> bool {
    (current_heap() as usize) > (HEAP_RETIRED as usize)
}

/// Routes this thread's allocations to the internal heap while alive. Nests.
pub(crate) struct ReentrancyGuard {
    was: bool,
}

impl ReentrancyGuard {
    #[inline]
    pub(crate) fn enter() -> Self {
        Self { was: with_state(|s| s.guard.replace(true)) }
    }
}

impl Drop for ReentrancyGuard {
    #[inline]
    fn drop(&mut self) {
        let was = self.was;
        with_state(|s| s.guard.set(was));
    }
}

/// Enters a `disable()` scope on this thread.
pub(crate) fn disable_enter() {
    with_state(|s| s.disabled.set(s.disabled.get() + 1));
}

/// Leaves a `disable()` scope on this thread.
pub(crate) fn disable_leave() {
    with_state(|s| s.disabled.set(s.disabled.get().saturating_sub(1)));
}

/// The allocation entry point: `size` bytes aligned to `align` (a power of two).
#[inline]
pub(crate) fn alloc(size: usize, align: usize, zeroed: bool) -> *mut u8 {
    with_state(|s| {
        let heap = s.heap.get();
        if (heap as usize) > (HEAP_RETIRED as usize) && !s.guard.get() {
            let flags = if s.disabled.get() == 0 { 0 } else { IGNORED };
            // SAFETY: this thread's heap is used by this thread only.
            return unsafe { (*heap).alloc(size, align, flags, zeroed) };
        }
        alloc_special(s, size, align, zeroed)
    })
}

/// Allocation when the thread has no usable heap, or inside the allocator.
#[cold]
#[inline(never)]
fn alloc_special(s: &ThreadState, size: usize, align: usize, zeroed: bool) -> *mut u8 {
    if !ensure_init() {
        return core::ptr::null_mut();
    }
    if s.guard.get() {
        return locked_alloc(&INTERNAL_HEAP, HeapKind::Internal, size, align, 0, zeroed);
    }
    let flags = if s.disabled.get() == 0 { 0 } else { IGNORED };
    if s.heap.get().is_null() {
        let heap = create_heap();
        if !heap.is_null() {
            s.heap.set(heap);
            // SAFETY: the heap was just made for this thread.
            return unsafe { (*heap).alloc(size, align, flags, zeroed) };
        }
    }
    locked_alloc(&SHARED_HEAP, HeapKind::Shared, size, align, flags, zeroed)
}

/// A heap under a lock, set up on first use.
pub(crate) struct LockedHeap {
    ready: bool,
    heap: core::mem::MaybeUninit<Heap>,
}

// SAFETY: the heap's raw pointers name process-wide pages; the lock serializes use.
unsafe impl Send for LockedHeap {}

static INTERNAL_HEAP: SpinLock<LockedHeap> =
    SpinLock::new(LockedHeap { ready: false, heap: core::mem::MaybeUninit::uninit() });
static SHARED_HEAP: SpinLock<LockedHeap> =
    SpinLock::new(LockedHeap { ready: false, heap: core::mem::MaybeUninit::uninit() });

fn locked_alloc(
    lock: &SpinLock<LockedHeap>,
    kind: HeapKind,
    size: usize,
    align: usize,
    flags: u8,
    zeroed: bool,
) -> *mut u8 {
    let _guard = ReentrancyGuard::enter();
    let mut h = lock.lock();
    if !h.ready {
        // SAFETY: first use, under the lock: nobody else sees the heap yet.
        unsafe { Heap::init(h.heap.as_mut_ptr(), kind, StackBounds { lo: 0, hi: 0 }) };
        h.ready = true;
    }
    // SAFETY: initialized above; the lock gives exclusive use.
    unsafe { (*h.heap.as_mut_ptr()).alloc(size, align, flags, zeroed) }
}

/// Counts a free of a block this thread's heap does not own.
#[inline]
pub(crate) fn count_remote_free(heap: *mut Heap, size: usize) {
    if (heap as usize) > (HEAP_RETIRED as usize) {
        // SAFETY: this thread's own heap; counters are its to write.
        unsafe { (*heap).counters.on_free(size) };
    } else {
        track::on_orphan_free(size);
    }
}

/// Counts an in-place resize as a free of the old size and an allocation of the new.
pub(crate) fn count_resize(heap: *mut Heap, old: usize, new: usize) {
    if (heap as usize) > (HEAP_RETIRED as usize) {
        // SAFETY: this thread's own heap.
        unsafe {
            (*heap).counters.on_free(old);
            (*heap).counters.on_alloc(new);
        }
    } else {
        track::on_orphan_free(old);
        let mut h = SHARED_HEAP.lock();
        if h.ready {
            // SAFETY: initialized; the lock gives exclusive use.
            unsafe { (*h.heap.as_mut_ptr()).counters.on_alloc(new) };
        }
    }
}

// ---------------------------------------------------------------------------------------
// One-time initialization.

const INIT_NONE: u8 = 0;
const INIT_RUNNING: u8 = 1;
const INIT_DONE: u8 = 2;
const INIT_FAILED: u8 = 3;
static INIT: AtomicU8 = AtomicU8::new(INIT_NONE);
static mut THREAD_KEY: libc::pthread_key_t = 0;

/// Sets up the process-wide state once: segment map, options, thread-exit key, fork
/// handlers, the at-exit leak check. Returns false if the OS refused memory.
#[inline]
pub(crate) fn ensure_init() -> bool {
    match INIT.load(Ordering::Acquire) {
        INIT_DONE => true,
        INIT_FAILED => false,
        _ => init_slow(),
    }
}

#[cold]
fn init_slow() -> bool {
    if INIT.compare_exchange(INIT_NONE, INIT_RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err() {
        loop {
            match INIT.load(Ordering::Acquire) {
                INIT_DONE => return true,
                INIT_FAILED => return false,
                _ => core::hint::spin_loop(),
            }
        }
    }
    let ok = segment::map::init();
    if ok {
        let opts = crate::config::current();
        register_own_statics(opts);
        crate::profile::init(opts);
        // SAFETY: called once, before any heap exists; the key destructor is a plain fn.
        unsafe {
            libc::pthread_key_create(core::ptr::addr_of_mut!(THREAD_KEY), Some(on_thread_exit));
            libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
        }
        crate::exit::register();
    }
    INIT.store(if ok { INIT_DONE } else { INIT_FAILED }, Ordering::Release);
    ok
}

/// Keeps the allocator's own statics out of the leak check's roots. They hold no pointer
/// to a user block, but their padding bytes (and a locked heap's unused fields) may hold
/// stale words copied from a stack, some of which once pointed into address ranges the
/// heap later reuses for a block: scanned as roots, those words made leaks look
/// reachable (seen with a 64 MiB leak, about one run in twenty under load).
fn register_own_statics(opts: &crate::config::Options) {
    fn own<T>(r: &T) {
        os::register_own_mapping(r as *const T as usize, core::mem::size_of::<T>());
    }
    own(opts);
    own(&INTERNAL_HEAP);
    own(&SHARED_HEAP);
    own(&REGISTRY);
    own(&segment::POOL);
}

// ---------------------------------------------------------------------------------------
// The registry of thread heaps.

struct Registry {
    head: *mut Heap,
    /// Retired heap structs, linked through `next`.
    free: *mut Heap,
    /// Carving area for new heap structs.
    chunk: usize,
    chunk_end: usize,
    count: usize,
}

// SAFETY: heaps are process-wide objects; the lock serializes the registry.
unsafe impl Send for Registry {}

static REGISTRY: SpinLock<Registry> = SpinLock::new(Registry {
    head: core::ptr::null_mut(),
    free: core::ptr::null_mut(),
    chunk: 0,
    chunk_end: 0,
    count: 0,
});

const HEAP_CHUNK: usize = 256 << 10;

fn heap_memory(r: &mut Registry) -> *mut Heap {
    if !r.free.is_null() {
        let h = r.free;
        // SAFETY: retired heaps on the free list keep a valid `next` link.
        r.free = unsafe { (*h).next };
        return h;
    }
    let size = (core::mem::size_of::<Heap>() + 63) & !63;
    if r.chunk + size > r.chunk_end {
        let Some(p) = os::map(HEAP_CHUNK) else {
            return core::ptr::null_mut();
        };
        os::register_own_mapping(p.as_ptr() as usize, HEAP_CHUNK);
        r.chunk = p.as_ptr() as usize;
        r.chunk_end = r.chunk + HEAP_CHUNK;
    }
    let h = r.chunk as *mut Heap;
    r.chunk += size;
    h
}

/// Makes and registers a heap for the calling thread.
fn create_heap() -> *mut Heap {
    let _guard = ReentrancyGuard::enter();
    let bounds = stack::current_thread_stack_bounds();
    let mut r = REGISTRY.lock();
    let heap = heap_memory(&mut r);
    if heap.is_null() {
        return heap;
    }
    // SAFETY: fresh or retired heap memory, ours under the registry lock.
    unsafe {
        Heap::init(heap, HeapKind::Thread, bounds);
        (*heap).next = r.head;
        if !r.head.is_null() {
            (*r.head).prev = heap;
        }
    }
    r.head = heap;
    r.count += 1;
    drop(r);
    // SAFETY: the key was created at init; the value is only read by our destructor.
    unsafe { libc::pthread_setspecific(THREAD_KEY, heap.cast()) };
    heap
}

fn unregister(r: &mut Registry, heap: *mut Heap) {
    // SAFETY: `heap` is registered; its neighbours are registered heaps.
    unsafe {
        let (p, n) = ((*heap).prev, (*heap).next);
        if p.is_null() {
            r.head = n
        } else {
            (*p).next = n
        }
        if !n.is_null() {
            (*n).prev = p;
        }
        (*heap).next = r.free;
        (*heap).prev = core::ptr::null_mut();
    }
    r.free = heap;
    r.count -= 1;
}

/// Retires a heap: its pages are abandoned or returned, its counters kept.
///
/// # Safety
/// - `heap` is registered and nobody will use it again.
unsafe fn retire_heap(heap: *mut Heap) {
    let _guard = ReentrancyGuard::enter();
    // SAFETY: exclusive per the contract.
    unsafe { (*heap).abandon_all() };
    let mut r = REGISTRY.lock();
    // SAFETY: as above.
    track::RETIRED.absorb(unsafe { &(*heap).counters });
    unregister(&mut r, heap);
}

extern "C" fn on_thread_exit(value: *mut libc::c_void) {
    let heap = value.cast::<Heap>();
    if heap.is_null() {
        return;
    }
    // The heap profile's events this thread buffered (while it still has its heap: events
    // after this are applied at once).
    if crate::profile::recorder::active() {
        crate::profile::events::flush_this_thread();
    }
    with_state(|s| {
        if s.heap.get() == heap {
            s.heap.set(HEAP_RETIRED);
        }
    });
    // SAFETY: the heap belonged to this exiting thread, which no longer uses it.
    unsafe { retire_heap(heap) };
}

/// Calls `f` for every registered thread heap, under the registry lock.
pub(crate) fn for_each_heap(mut f: impl FnMut(&Heap)) {
    let r = REGISTRY.lock();
    let mut h = r.head;
    while !h.is_null() {
        // SAFETY: registered heaps are live.
        unsafe {
            f(&*h);
            h = (*h).next;
        }
    }
}

/// Number of registered thread heaps.
pub(crate) fn heap_count() -> usize {
    REGISTRY.lock().count
}

/// Calls `f` with the locked heaps' counters (shared heap only; the internal one is
/// untracked).
pub(crate) fn with_shared_counters(f: impl FnOnce(&track::Counters)) {
    let h = SHARED_HEAP.lock();
    if h.ready {
        // SAFETY: initialized.
        f(unsafe { &(*h.heap.as_ptr()).counters });
    }
}

// ---------------------------------------------------------------------------------------
// Abandoned pages.

static ABANDONED: [SegQueue<usize>; CLASS_COUNT] = [const { SegQueue::new() }; CLASS_COUNT];

/// Puts a page whose owner is gone on its class's abandoned list.
pub(crate) fn push_abandoned(class: usize, page: *mut Page) {
    let _guard = ReentrancyGuard::enter();
    ABANDONED[class].push(page as usize);
}

/// Takes an abandoned page of `class`, if any.
pub(crate) fn adopt_abandoned(class: usize) -> Option<*mut Page> {
    if ABANDONED[class].is_empty() {
        return None;
    }
    let _guard = ReentrancyGuard::enter();
    ABANDONED[class].pop().map(|p| p as *mut Page)
}

// ---------------------------------------------------------------------------------------
// fork

extern "C" fn fork_prepare() {
    REGISTRY.lock_raw();
    INTERNAL_HEAP.lock_raw();
    SHARED_HEAP.lock_raw();
    segment::POOL.lock_raw();
    // A leaf lock (held, it waits for nothing), so taken last.
    crate::profile::recorder::RECORDER.lock_raw();
}

extern "C" fn fork_parent() {
    // SAFETY: each was taken by `fork_prepare` on this thread, in this order.
    unsafe {
        crate::profile::recorder::RECORDER.force_unlock();
        segment::POOL.force_unlock();
        SHARED_HEAP.force_unlock();
        INTERNAL_HEAP.force_unlock();
        REGISTRY.force_unlock();
    }
}

extern "C" fn fork_child() {
    fork_parent();
    // The other threads do not exist in the child: give their pages to the abandoned
    // lists, so their free blocks are reused, and forget their heaps.
    let me = current_heap();
    loop {
        let victim = {
            let r = REGISTRY.lock();
            let mut h = r.head;
            while !h.is_null() && h == me {
                // SAFETY: registered heaps are live.
                h = unsafe { (*h).next };
            }
            h
        };
        if victim.is_null() {
            break;
        }
        // SAFETY: its thread does not exist in this process: nobody uses the heap.
        unsafe { retire_heap(victim) };
    }
}

// ---------------------------------------------------------------------------------------
// Misuse reports.

/// Reports a detected misuse (double free, foreign pointer...) and aborts.
#[cold]
#[inline(never)]
pub(crate) fn report_misuse(op: &str, ptr: *mut u8, what: Misuse) -> ! {
    let _guard = ReentrancyGuard::enter();
    let text = match what {
        Misuse::Foreign => "a pointer HeapSweep never handed out (not in any of its segments)",
        Misuse::NotABlock => "a pointer into HeapSweep's memory that is not a block",
        Misuse::Interior => "a pointer into the middle of a block, not its start",
        Misuse::DoubleFree => "a block that is already free (double free)",
    };
    crate::misuse::print_and_abort(op, ptr as usize, text)
}
