//! Per-thread buffers of allocation events, applied to the recorder in batches.
//!
//! # Why
//! Taking the recorder's lock on every allocation and free makes threads that allocate at
//! the same time queue for it (the lock's cache line moves between cores on every event).
//! A thread with a heap of its own instead appends each event to a buffer of
//! [`CAPACITY`] in thread-local storage and applies the full buffer, in order, under one
//! lock acquisition.
//!
//! # What stays exact
//! Events of one thread are applied in the order they happened, so a single-threaded
//! program's counts, peak and peak snapshot are exact. Between threads, events are
//! ordered at batch granularity: the free of a block made on another thread may be
//! applied before its allocation (live counts are signed for that), and a snapshot sees
//! up to [`CAPACITY`] events of each other thread late. A snapshot applies the calling
//! thread's buffer first; a thread's buffer is applied when the thread ends.
//!
//! Threads without a heap of their own (before it exists, after it was retired at thread
//! exit) apply each event at once, and so does every thread while a signal's profile is
//! pending (so it is written at the next allocation or free, as `signal` promises).

use super::recorder;
use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::Ordering;

/// One allocation or free not yet applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) stack: u32,
    pub(crate) alloc: bool,
    pub(crate) size: u64,
}

/// Events a thread buffers before applying them.
pub(crate) const CAPACITY: usize = 64;

const NO_EVENT: Event = Event { stack: 0, alloc: false, size: 0 };

/// A thread's buffer. No destructor: usable at any point of the thread's life.
struct Buffer {
    events: UnsafeCell<[Event; CAPACITY]>,
    len: Cell<usize>,
}

thread_local! {
    static BUFFER: Buffer = const { Buffer { events: UnsafeCell::new([NO_EVENT; CAPACITY]), len: Cell::new(0) } };
}

/// Records `e`: buffered on a thread with a heap of its own, applied at once otherwise.
#[inline]
pub(crate) fn push(e: Event) {
    if !crate::thread_state::has_own_heap() {
        recorder::apply(&[e]);
        return;
    }
    BUFFER.with(|b| {
        let n = b.len.get();
        debug_assert!(n < CAPACITY);
        // SAFETY: only this thread reaches its buffer, and no reference into it is alive
        // (`take` copies the events out before applying them).
        unsafe { (*b.events.get())[n] = e };
        // A signal asked for a profile: apply now, and the profile follows this event.
        if n + 1 == CAPACITY || recorder::STATE.load(Ordering::Relaxed) == recorder::DUMP_PENDING {
            b.len.set(n + 1);
            apply_buffer(b);
        } else {
            b.len.set(n + 1);
        }
    });
}

/// Applies this thread's buffered events (before a snapshot, and when the thread ends).
pub(crate) fn flush_this_thread() {
    BUFFER.with(apply_buffer);
}

/// Copies the buffer's events out, empties it, and applies them. Emptying first means a
/// profile written while they are applied (a signal's) sees no event twice.
fn apply_buffer(b: &Buffer) {
    let n = b.len.replace(0);
    if n == 0 {
        return;
    }
    // SAFETY: as in `push`; the copy ends the access before anything else runs.
    let events: [Event; CAPACITY] = unsafe { *b.events.get() };
    recorder::apply(&events[..n]);
}
