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
//! up to [`CAPACITY`] events of each other thread late (an event of short-lived blocks
//! counts up to [`MAX_TIMES`] of them). A snapshot applies the calling
//! thread's buffer first; a thread's buffer is applied when the thread ends.
//!
//! A thread's own heap finds the thread's buffer once, when the heap is made ([`Sink`];
//! profiling is on from before the first thread heap is made).
//! Threads without a heap of their own (before it exists, after it was retired at thread
//! exit) and the locked heaps apply each event at once, and so does every thread while a
//! signal's profile is pending (so it is written at the next allocation or free, as
//! `signal` promises).

use super::recorder;
use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::Ordering;

/// One allocation or free not yet applied (16 bytes, no padding: see [`Event::bits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Event {
    /// The block's size; for [`Kind::AllocThenFree`], the bytes of all its blocks.
    pub(crate) size: u64,
    pub(crate) stack: u32,
    /// [`Kind::AllocThenFree`] of more than one block: the size of the largest (blocks
    /// of [`UNGROUPED`] bytes or more are never grouped); 0 otherwise.
    pub(crate) largest: u16,
    pub(crate) kind: Kind,
    /// Blocks the event counts: 1, or up to [`MAX_TIMES`] for [`Kind::AllocThenFree`].
    pub(crate) times: u8,
}

const _: () = assert!(core::mem::size_of::<Event>() == 16);

impl Event {
    /// One block's allocation or free.
    pub(crate) const fn once(stack: u32, kind: Kind, size: u64) -> Self {
        Self { size, stack, kind, times: 1, largest: 0 }
    }

    /// The event's 16 bytes as one number: equal events have equal bits and the other
    /// way round (no padding), and a compare of two is two 8-byte compares where the
    /// derived `==` made one a field (ten instructions a profiled free).
    #[inline(always)]
    fn bits(self) -> u128 {
        // SAFETY: an `Event` is 16 bytes (asserted above), every one of them a field's
        // (`repr(C)`: 8 + 4 + 2 + 1 + 1, no padding), so all are initialized, and any
        // 16 bytes are a `u128`.
        unsafe { core::mem::transmute::<Event, u128>(self) }
    }

    /// The size of the largest block this event counts.
    pub(crate) fn largest_block(&self) -> u64 {
        if self.times > 1 {
            u64::from(self.largest)
        } else {
            self.size
        }
    }
}

/// Most short-lived blocks one [`Kind::AllocThenFree`] event counts. A snapshot sees up to
/// `CAPACITY` events of another thread late, so up to `CAPACITY * MAX_TIMES` of its
/// short-lived blocks.
pub(crate) const MAX_TIMES: u8 = 32;

/// Short-lived blocks of this size or more are not grouped (their size would not fit
/// [`Event::largest`]).
pub(crate) const UNGROUPED: u16 = u16::MAX;

/// What an [`Event`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Free,
    Alloc,
    /// An allocation, then the free of a block of the same size from the same stack:
    /// the two events a short-lived block makes when nothing else was recorded between
    /// them, in one slot of the buffer (and one site lookup when applied). The recorder
    /// applies both, in that order: nothing is lost but the slot.
    ///
    /// Short-lived blocks of one stack in a row, whatever their sizes, share one event
    /// ([`Event::times`] of them, [`Event::size`] bytes in all, the largest
    /// [`Event::largest`] bytes): a loop that allocates and frees costs the recorder one
    /// site lookup every [`MAX_TIMES`] blocks. The recorder applies the largest first
    /// (the only one of them that can make a peak, at the same height whatever the
    /// order), then counts the others: every count and peak as with the blocks one by
    /// one.
    AllocThenFree,
}

/// Events a thread buffers before applying them. 256 (4 KiB of thread-local storage):
/// with 64, two threads allocating at once queued on the recorder's lock (larson with the
/// profile 1.13-1.18x slower after the runtime restructure; 0.99-1.02x of before with 256,
/// BENCHMARKS.md).
pub(crate) const CAPACITY: usize = 256;

const NO_EVENT: Event = Event::once(0, Kind::Free, 0);

/// A thread's buffer. No destructor: usable at any point of the thread's life.
///
/// Invariants: `len <= CAPACITY`, or `len == APPLYING` while `apply_buffer` lends the
/// events to the recorder; `events` is reached only by its own thread (it lives in
/// `BUFFER`, a `thread_local!`, and no reference to it escapes), and only by the element
/// write in `push`, which creates no lasting reference and is not made while `len ==
/// APPLYING`, and by that loan.
struct Buffer {
    events: UnsafeCell<[Event; CAPACITY]>,
    len: Cell<usize>,
}

/// [`Buffer::len`] while `apply_buffer` applies the events in place: a `push` reentered
/// from inside it (an allocation while a profile is written) applies its event at once.
const APPLYING: usize = usize::MAX;

thread_local! {
    static BUFFER: Buffer = const { Buffer { events: UnsafeCell::new([NO_EVENT; CAPACITY]), len: Cell::new(0) } };
}

/// Where a thread's own heap sends its events: the thread's buffer, found once when the
/// heap is made (so that the heap's hot paths reach it with no thread-local access: in
/// code compiled into this crate, the compiler sees that access as a call, and the
/// profiled free saved six registers for it), or nowhere (events applied at once).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sink(*const Buffer);

impl Sink {
    /// No buffer: each event is applied at once.
    pub(crate) const NONE: Sink = Sink(core::ptr::null());

    /// The calling thread's buffer.
    ///
    /// # Safety
    /// - The sink (and every copy of it) is used only on the calling thread, and only
    ///   while that thread lives (a thread's own heap's: made on its thread, used by it
    ///   alone, retired when it ends).
    pub(crate) unsafe fn this_thread() -> Sink {
        Sink(BUFFER.with(|b| b as *const Buffer))
    }

    /// Whether this sink has a buffer.
    #[inline(always)]
    pub(crate) fn is_buffered(self) -> bool {
        !self.0.is_null()
    }

    /// Records `e`: into the buffer, or applied at once without one.
    #[inline(always)]
    pub(crate) fn push(self, e: Event) {
        if self.0.is_null() {
            return apply_one(e.stack, e.kind, e.size);
        }
        // SAFETY: the buffer of the thread that runs this (`this_thread`'s contract),
        // which lives as long as the thread and which no other thread can name (type
        // invariant); only shared references to it are made.
        push_to(unsafe { &*self.0 }, e);
    }
}

/// Records `e` into `b`, this thread's buffer.
#[inline(always)]
fn push_to(b: &Buffer, e: Event) {
    let n = b.len.get();
    if n >= CAPACITY {
        // `APPLYING` (type invariant: a full buffer is applied at once).
        return apply_one(e.stack, e.kind, e.size);
    }
    let events = b.events.get();
    if e.kind == Kind::Free && n > 0 {
        // SAFETY:
        // - `b` is this thread's buffer; no other thread can name it (type
        //   invariant).
        // - No other reference into `events` is alive: the only other access, the
        //   slice `apply_buffer` lends the recorder, lives while `len == APPLYING`,
        //   and this one is not made then (tested above); it ends in this block.
        //   (A signal handler that allocates would reenter this thread's heap first,
        //   which no allocator entry point allows.)
        // - `n - 1 < CAPACITY` (tested above): in bounds, and bounds checked anyway.
        let last = unsafe { &mut (*events)[n - 1] };
        if last.bits() == (Event { kind: Kind::Alloc, ..e }).bits() {
            if n > 1 {
                // SAFETY: as for `last`, element `n - 2`; `last` is not used again
                // on this path.
                let group = unsafe { &mut (*events)[n - 2] };
                if group.kind == Kind::AllocThenFree
                    && group.stack == e.stack
                    && group.times < MAX_TIMES
                    && group.largest_block() < u64::from(UNGROUPED)
                    && e.size < u64::from(UNGROUPED)
                {
                    group.largest = group.largest_block().max(e.size) as u16;
                    group.times += 1;
                    group.size += e.size;
                    b.len.set(n - 1);
                    return;
                }
            }
            last.kind = Kind::AllocThenFree;
            return;
        }
    }
    // SAFETY: as above, for element `n < CAPACITY`; the write makes no lasting
    // reference.
    unsafe { (*events)[n] = e };
    b.len.set(n + 1);
    // A signal asked for a profile: apply now, and the profile follows this event.
    if n + 1 == CAPACITY || recorder::STATE.load(Ordering::Relaxed) == recorder::DUMP_PENDING {
        apply_buffer(b);
    }
}

/// Applies one event at once (no buffer, or the buffer being applied). A call of its
/// own: the buffering path then saves no register (eight instructions an event). The
/// event comes as its fields: passed as a struct, it was stored on the stack and copied
/// into the buffer from there, 16 bytes read back from three narrower stores.
#[cold]
#[inline(never)]
fn apply_one(stack: u32, kind: Kind, size: u64) {
    recorder::apply(&[Event::once(stack, kind, size)]);
}

/// Applies this thread's buffered events (before a snapshot, and when the thread ends).
pub(crate) fn flush_this_thread() {
    BUFFER.with(apply_buffer);
}

/// Applies the buffer's events in place and empties it: no copy of the array (4 KiB,
/// eight instructions a small allocation and free with the profile on). While they are
/// applied the length says `APPLYING`: a profile written meanwhile (a signal's) sees no
/// event twice, and events pushed meanwhile (reentered from inside `recorder::apply`)
/// are applied at once by `push`.
#[cold]
fn apply_buffer(b: &Buffer) {
    let n = b.len.get();
    if n == 0 || n == APPLYING {
        // Nothing, or reentered from inside an outer call's `recorder::apply` (a snapshot
        // applying this thread's buffer while its events are applied): those are being
        // applied.
        return;
    }
    b.len.set(APPLYING);
    // SAFETY:
    // - `b` is this thread's buffer; no other thread can name it (type invariant).
    // - The shared reference lives while `len == APPLYING`, during which `push` writes
    //   nothing into `events` and a nested `apply_buffer` returns at once: no mutable
    //   access overlaps it.
    // - `n <= CAPACITY` (type invariant); every event is initialized (`Event: Copy`, the
    //   array from the start).
    let events: &[Event; CAPACITY] = unsafe { &*b.events.get() };
    recorder::apply(&events[..n]);
    b.len.set(0);
}
