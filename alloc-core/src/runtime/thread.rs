//! A thread's start and end, as the allocator sees them.
//!
//! # Start
//! A thread's first allocation (the entry's cold path) makes its heap, registers it, puts
//! it in the thread's state slot, and sets it as the value of a `pthread` key whose
//! destructor runs at thread exit. Not a `thread_local!` destructor: registering one
//! allocates, and it may run too early (before other destructors that still allocate).
//!
//! # Stack bounds under `LD_PRELOAD`
//! The heap keeps its thread's stack bounds, from `pthread_getattr_np`. Under the preload
//! library that function's own `malloc` calls (it opens `/proc/self/maps` for the main
//! thread, and sizes an affinity mask) are ours, made while it holds the thread's lock,
//! and a program's call to it (Rust's runtime makes one at every thread start) is often
//! where the thread allocates first: asking it again from there would wait for that lock
//! forever. So when preloaded, the bounds are those of the mapping in `/proc/self/maps`
//! that holds the stack pointer (asked with the `PROCMAP_QUERY` ioctl, or where the kernel
//! lacks it read from the file, without allocating either way; for a thread made by
//! `pthread_create` it also covers the thread's static TLS at its top).
//!
//! # End
//! The key's destructor runs among the thread's last destructors. It flushes what the
//! listeners buffer per thread (the heap profile's events), marks the slot retired (later
//! allocations of the thread, by destructors that run after, go to the shared heap), and
//! retires the heap: its empty pages go back to the pool, the others to the abandoned
//! lists for other threads to adopt.

use crate::heap::{registry, Heap};
use crate::leak::maps;
use crate::platform;
use crate::profile::{events, recorder};
use crate::stack;
use crate::thread_state::{self, ReentrancyGuard, ThreadState, HEAP_RETIRED};

/// Makes the process's thread-exit key, whose destructor retires a thread's heap. Called
/// once, by the process's initialization, before any thread heap exists. Without it (the
/// key could not be made), threads keep their heaps past their end: their pages are never
/// adopted, which wastes memory but loses no block.
pub(crate) fn create_exit_key() {
    if let Err(e) = platform::thread_exit_key_create(on_thread_exit) {
        warning!("cannot register the thread-exit hook ({}); heaps of ended threads are not reused", e);
    }
}

/// The calling thread's start: makes its heap and sets its slot. Null when the OS refused
/// memory (the caller falls back to the shared heap).
pub(crate) fn start(s: &ThreadState) -> *mut Heap {
    let bounds = {
        let _guard = ReentrancyGuard::enter();
        if crate::config::preloaded() {
            stack_bounds_from_maps()
        } else {
            stack::current_thread_stack_bounds()
        }
    };
    if bounds.hi > bounds.lo && platform::gettid() != platform::getpid() {
        crate::leak::roots::note_thread_stack(bounds.hi, platform::thread_pointer());
    }
    let heap = registry::create(bounds);
    if heap.is_null() {
        return heap;
    }
    // SAFETY: `registry::create` returned a made heap, this thread's alone.
    let profiled = unsafe { (*heap).events.is_buffered() };
    s.set_heap(heap as usize, profiled);
    super::scope::on_thread_start(s);
    // The key was made by initialization, which runs before any thread starts here; the
    // value is read only by `on_thread_exit`. A failure (out of memory in glibc) keeps the
    // heap alive past the thread's end, as when the key is missing.
    let _ = platform::thread_exit_key_set(heap.cast());
    heap
}

/// The calling thread's stack bounds under `LD_PRELOAD`: the mapping holding its stack
/// pointer (see the module notes). Unknown when the mappings cannot be read. (A thread
/// start used to read the whole file: 15 µs a thread in a small process, more in a large
/// one; the kernel now answers the one question.)
fn stack_bounds_from_maps() -> stack::StackBounds {
    let sp = platform::frame_pointer_and_sp().1;
    match maps::mapping_containing(sp) {
        Some(m) if m.readable && m.writable => stack::StackBounds { lo: m.start, hi: m.end },
        _ => stack::StackBounds { lo: 0, hi: 0 },
    }
}

/// The thread-exit key's destructor: `value` is the exiting thread's heap.
///
/// The work runs at the bottom of the thread's stack ([`stack::exit_stack_top`]), far
/// below the exit path's frames, so that the scrub that ends it can clear everything the
/// thread's own frames left, up to the exit path (see [`stack::scrub_at_exit`]).
extern "C" fn on_thread_exit(value: *mut core::ffi::c_void) {
    let heap = value.cast::<Heap>();
    if heap.is_null() {
        return;
    }
    // SAFETY: the heap was registered for this exiting thread; its bounds were written at
    // its creation and never change.
    let bounds = unsafe { (*heap).bounds };
    match stack::exit_stack_top(bounds) {
        // SAFETY: `top` is 16-byte aligned, with 64 KiB of this thread's own stack below
        // it (above the guard page) that nothing uses: the thread is ending, and its live
        // frames (the exit path's) are all above, at least 64 KiB higher. `exit_on_stack`
        // is `extern "C"`: a panic in it aborts instead of unwinding.
        Some(top) => unsafe { platform::call_on_stack(heap as usize, top, exit_on_stack) },
        None => {
            let bounds = retire_exiting(heap);
            stack::scrub_at_exit(bounds, None);
        }
    }
}

/// [`on_thread_exit`]'s work, on the bottom of the stack: `heap` is the exiting thread's,
/// `caller_sp` the lowest address of the exit path's frames.
extern "C" fn exit_on_stack(heap: usize, caller_sp: usize) {
    let bounds = retire_exiting(heap as *mut Heap);
    // Between this region's top and the exit path's frames, all is dead.
    stack::scrub_at_exit(bounds, Some((stack::exit_region_top(bounds), caller_sp)));
}

/// The exiting thread gives up `heap`, its own; returns the thread's stack bounds.
#[inline(never)]
fn retire_exiting(heap: *mut Heap) -> stack::StackBounds {
    // The listeners' per-thread buffers, while the thread still has its heap (events
    // after this are applied at once).
    if recorder::active() {
        events::flush_this_thread();
    }
    thread_state::with(|s| {
        if s.heap() == heap as usize {
            s.set_heap(HEAP_RETIRED, false);
        }
    });
    // SAFETY: the heap was registered for this exiting thread, which it no longer uses
    // after this (its slot says retired); the bounds were written at its creation.
    let bounds = unsafe { (*heap).bounds };
    // SAFETY: as above: no other thread ever uses a thread's heap.
    unsafe { registry::retire(heap) };
    bounds
}
