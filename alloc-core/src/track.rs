//! The tracking hook: the one place where the heap tells its listeners that a tracked
//! block was allocated, freed or resized in place.
//!
//! # What it owns
//! Nothing but the dispatch, in the spirit of mimalloc's `track.h`: the heap calls
//! [`on_alloc`], [`on_free`], [`on_remote_free`] and [`on_resize`] and knows nothing of who
//! listens. The listeners are fixed at compile time, so the calls inline into the heap's
//! fast paths:
//! - `counters`: per-heap totals and the global peak, always;
//! - the heap profile's recorder (`profile::recorder`), while `profile=PATH` is on: one
//!   relaxed load and a branch when it is off;
//! - the leak sweeps' schedule (`sweep_count`): nothing of its own, on either path; the
//!   counters' budget runs out no later than a heap's fold into its count is due, and
//!   `Counters::settle` asks it then;
//! - a new listener is one more line in each function here.
//!
//! The allocator's own blocks (the internal heap) never reach the hook.
//!
//! # Stacks
//! Listeners that need the block's allocation stack on a free get it through a closure,
//! so the heap reads the block's metadata only when some listener asks (a thread freeing
//! another thread's block does not otherwise touch the owner's metadata lines).

use crate::counters::{self, Counters};
use crate::profile::events::Sink;
use crate::profile::recorder;
use crate::sweep_count;
use crate::sync::Isolated;
use core::sync::atomic::{AtomicU8, Ordering};

/// Why the heap's fast paths may not be taken: bits set once and never cleared. Each
/// thread heap keeps a copy with its own reason added (`Heap::declines_plain`), which its
/// allocation fast path reads from the heap's own lines: it gets these when it is made
/// and is told of each one added (`heap::registry::note_not_plain`).
#[used]
static NOT_PLAIN: Isolated<AtomicU8> = Isolated(AtomicU8::new(0));
/// [`NOT_PLAIN`]: the heap profile's recorder wants every allocation and free.
pub(crate) const NOT_PLAIN_PROFILE: u8 = 1;
/// [`NOT_PLAIN`]: new blocks start zeroed (`segment::zeroing`), which the allocation fast
/// path does not do.
const NOT_PLAIN_ZEROING: u8 = 2;

/// Whether no listener wants blocks' allocation stacks: the fast paths may then count
/// with [`on_plain_alloc`] (no stack captured) and [`on_plain_free`] (the freed block's
/// metadata word not read for its stack). False from just before the recorder starts
/// ([`note_profile_on`]) on.
#[inline(always)]
pub(crate) fn plain() -> bool {
    NOT_PLAIN.load(Ordering::Relaxed) & NOT_PLAIN_PROFILE == 0
}

/// The reasons [`NOT_PLAIN`] holds now (0: none), for the heaps' copies.
pub(crate) fn not_plain_reasons() -> u8 {
    NOT_PLAIN.load(Ordering::SeqCst)
}

/// The heap profile's recorder is about to start: called before it says it is active,
/// so that no fast path skips an event the recorder counts (a slow path asks the
/// recorder itself).
pub(crate) fn note_profile_on() {
    NOT_PLAIN.fetch_or(NOT_PLAIN_PROFILE, Ordering::SeqCst);
}

/// From now on every new block starts zeroed (`segment::zeroing::enable`), and the
/// allocation fast path, which does not zero, is left to the general path. True when
/// this call turned it on: the caller then tells the heaps
/// (`heap::registry::note_not_plain`).
pub(crate) fn zero_new_blocks() -> bool {
    let was = NOT_PLAIN.fetch_or(NOT_PLAIN_ZEROING, Ordering::SeqCst);
    crate::segment::zeroing::enable();
    was & NOT_PLAIN_ZEROING == 0
}

/// A tracked block of `size` bytes was freed by the heap that owns it and `counters`, on
/// a free fast path (the plain one; with the profile on, the profiled one, which also
/// tells the recorder with [`on_profiled_free`]). True when the counters' frees ran out
/// their budget: the caller then calls `Counters::settle_frees`, off its fast path.
#[inline(always)]
pub(crate) fn on_fast_free(counters: &mut Counters, size: usize) -> bool {
    counters.count_free(size)
}

/// The budget of the heap that owns `counters` after a tracked allocation of `size`
/// bytes with no stack, while [`plain`] holds: zero or more when counting it is all
/// [`on_alloc`] would do for it (no fold of the counters or of the sweeps' count may
/// fall due), below zero otherwise.
#[inline(always)]
pub(crate) fn plain_alloc_budget(counters: &Counters, size: usize) -> i64 {
    counters.budget_after_alloc(size)
}

/// A tracked block of `size` bytes was allocated, with no stack, by the heap that owns
/// `counters`, where [`plain_alloc_budget`] said `left` (zero or more).
#[inline(always)]
pub(crate) fn on_plain_alloc(counters: &mut Counters, size: usize, left: i64) {
    counters.count_alloc_within(size, left);
}

/// A tracked block of `size` bytes was allocated from `stack`, by the heap that owns
/// `counters` and sends its profile events to `sink`.
#[inline(always)]
pub(crate) fn on_alloc(counters: &mut Counters, sink: Sink, stack: u32, size: usize) {
    count_alloc(counters, size);
    if recorder::active() {
        recorder::record_alloc(sink, stack, size);
    }
}

/// A tracked block of `size` bytes was allocated, with a stack, by the heap that owns
/// `counters`, a heap the heap profile does not listen to (its reasons to decline the
/// plain path say so: the recorder is on for every heap made after it started, which is
/// every heap): counting is all [`on_alloc`] would do.
#[inline(always)]
pub(crate) fn on_unprofiled_alloc(counters: &mut Counters, size: usize) {
    debug_assert!(!recorder::active());
    count_alloc(counters, size);
}

/// A tracked block of `size` bytes was allocated from `stack` by the heap that owns
/// `counters` and sends its events to `sink`, a heap the heap profile listens to (its
/// reasons to decline its plain path say so): [`on_alloc`] without asking whether the
/// recorder is on, which it is, for good, from before the heap was made (three
/// instructions an allocation).
#[inline(always)]
pub(crate) fn on_profiled_alloc(counters: &mut Counters, sink: Sink, stack: u32, size: usize) {
    debug_assert!(recorder::active());
    count_alloc(counters, size);
    recorder::record_alloc(sink, stack, size);
}

/// The profile's share of a free of the fast path with the profile on (whose counting is
/// [`on_fast_free`]'s): a tracked block of `size` bytes from `stack` was freed by the
/// heap that owns it and sends its events to `sink`. The recorder is on (the heap's sink
/// has a buffer only while it is, and it is never turned off): not asked.
#[inline(always)]
pub(crate) fn on_profiled_free(sink: Sink, stack: u32, size: usize) {
    debug_assert!(recorder::active() && sink.is_buffered());
    recorder::record_free(sink, stack, size);
}

/// A tracked block of `size` bytes, live and held by the caller, is being freed by the
/// heap that owns it and `counters`. `stack` reads the block's allocation stack.
#[inline(always)]
pub(crate) fn on_free(counters: &mut Counters, sink: Sink, size: usize, stack: impl FnOnce() -> u32) {
    if recorder::active() {
        recorder::record_free(sink, stack(), size);
    }
    counters.on_free(size);
}

/// A tracked block of `size` bytes is being freed by a thread whose heap does not own
/// it: `counters` and `sink` are that thread's heap's, or `None` and [`Sink::NONE`] when
/// the thread has no heap (it ended, or never allocated). `stack` reads the block's
/// allocation stack from its metadata word.
///
/// The block's live bit is not asked: it is the owner's to read and write (each of its
/// allocations and frees in the page writes the word), and a free from another thread
/// that read it missed on it whenever the owner was allocating nearby: the
/// producer-consumer benchmark with the heap profile on 61-66 ns an operation with the
/// read, 42-45 without, in builds of two different code layouts (BENCHMARKS.md). A
/// double free from another thread is still caught, by the owner when it collects the
/// block (and aborts); until then the profile has counted the second free.
#[inline(always)]
pub(crate) fn on_remote_free(counters: Option<&mut Counters>, sink: Sink, size: usize, stack: impl FnOnce() -> u32) {
    if recorder::active() {
        recorder::record_free(sink, stack(), size);
    }
    match counters {
        Some(c) => c.on_free(size),
        None => counters::on_orphan_free(size),
    }
}

/// A tracked block from `stack` was resized in place from `old` to `new` bytes, counted
/// as the free of the old size and the allocation of the new one. `counters` and `sink`
/// as in [`on_remote_free`].
#[inline]
pub(crate) fn on_resize(counters: Option<&mut Counters>, sink: Sink, stack: u32, old: usize, new: usize) {
    match counters {
        Some(c) => {
            c.on_free(old);
            count_alloc(c, new);
        }
        None => {
            counters::on_orphan_free(old);
            counters::on_orphan_alloc(new);
        }
    }
    if recorder::active() {
        recorder::record_resize(sink, stack, old, new);
    }
}

/// Counts an allocation of `size` bytes into `counters` (a heap's), and makes the folds
/// that fall due with it (`Counters::settle`, with the leak sweeps' count).
#[inline(always)]
fn count_alloc(counters: &mut Counters, size: usize) {
    if counters.count_alloc_spending(size) {
        counters.settle(sweep_count::settle);
    }
}
