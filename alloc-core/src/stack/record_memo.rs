//! The frame-record walk of a thread's last capture, replayed.
//!
//! # What it owns
//! [`RecordMemos`]: per thread, the last frame-record walks (`unwind::walk_records`) from
//! `capture`'s frame, one per stack pointer's slot: where each started, within what bounds
//! and room, every record it read (each record's address, the two words there), and what
//! it returned.
//!
//! # Why
//! The frame-record walk is a chain of dependent loads: the next record's address is the
//! word read from the one before, so a walk of n frames waits n load latencies one after
//! the other, most of a capture of a shallow stack (perf annotate of small pairs: the
//! record loop held most of `capture`'s samples). A program allocating in a loop captures
//! the same stack from the same stack pointer again and again. A replay loads the same
//! words from addresses it already knows: loads that do not wait on each other.
//!
//! A program that allocates from several places in turn (a parser: strings, arrays and
//! maps) captures from several stack pointers: a walk is kept in the slot of its stack
//! pointer, [`SLOTS`] of them, so that walks from different depths do not push each other
//! out (the allocator benchmark's json workload: 17% of captures replayed with one slot,
//! 67% with eight; btreemap 78% and 99.99%).
//!
//! # Why the replay is exact
//! `walk_records` is a function of its start (`fp`), its bounds, the room in its output
//! and the words it reads: each read is at an address computed from the start and the
//! words read before it, and each decision (stop at a bound or a misaligned record, at a
//! zero return address, at a record that does not lie above the last, at the end of the
//! room) depends on those alone. So a walk from the same start, within the same bounds
//! and room, that would find in each word the memo read the value it read, reads exactly
//! those words, in that order, and returns the same frames and registers; a replay
//! checks each word (a load and a compare) and returns what the kept walk returned.
//! The bounds' lower end is `capture`'s stack pointer: the same start and bounds mean
//! the same frame position on the same thread's stack.
//!
//! # The whole stack
//! A slot also keeps the id of the stack its walk ended in, once a capture found it by
//! the exact path (a frame-record prefix that checked out under the current rules, then
//! the walk on that the thread kept, `tail::TailMemo`), with the stack words that walk
//! on read. The stack is the prefix's frames and then the walk on's; the walk on is a
//! function of where the prefix stopped (the replay returns the same), the rules, the
//! room left and the words it reads (`tail`'s argument). So a replay under the same
//! rules that finds those words unchanged has the same stack: its id, without the hash,
//! the alias and the cache probe (small pairs with stacks 25.3 -> 21.8 ns, larson
//! 24.5 -> 20.1).

use super::unwind::{self, RecordReads, Records};
use super::{StackBounds, StackId};
use crate::platform::RecordWords;
use core::mem::MaybeUninit;

/// Slots per thread (a power of two).
const SLOTS: usize = 8;
const SLOT_SHIFT: u32 = 64 - SLOTS.trailing_zeros();
/// Most frames a kept walk may have room for (the default `stack_depth`): a slot is 1,152
/// bytes (512 of them the records' words), a thread's memos 9 KiB.
pub(super) const FRAMES: usize = 32;
const _: () = assert!(FRAMES.is_multiple_of(4), "a replay compares records four at a time");
/// Most words of a walk on past the records a slot remembers (`tail::TailMemo` keeps at
/// most as many).
const TAIL_WORDS: usize = 16;

/// A thread's last frame-record walks from `capture`'s frame, one per slot.
#[derive(Debug)]
pub(crate) struct RecordMemos {
    slots: [RecordMemo; SLOTS],
    /// The slot of the last walk replayed or walked and kept; [`NO_SLOT`] after a walk
    /// not kept (its slot holds another walk, which `remember` must not be told of).
    last: usize,
}

const NO_SLOT: usize = usize::MAX;

/// A slot's `lo` while it keeps no walk (made, or between a walk's start and its keep):
/// a replay's `lo` is its stack pointer, never 0.
const NOT_KEPT: usize = 0;

/// A replayed walk, and the id of the whole stack when its slot knows it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Replayed {
    pub(super) at: Records,
    pub(super) id: Option<StackId>,
}

impl RecordMemos {
    /// No walk kept.
    pub(crate) const fn new() -> Self {
        Self { slots: [const { RecordMemo::new() }; SLOTS], last: NO_SLOT }
    }

    /// The slot of walks within `bounds`: by their lower end, `capture`'s stack pointer.
    #[inline(always)]
    fn slot(bounds: StackBounds) -> usize {
        ((bounds.lo as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> SLOT_SHIFT) as usize
    }

    /// What the walk from `fp` within `bounds`, with room for `room` frames, returns, when
    /// its slot keeps it (see [`RecordMemo::replay`]), and the whole stack's id when the
    /// slot knows it under the rules of `generation` (the current one). Its frames are not
    /// written: [`Self::write_frames`] does that.
    ///
    /// # Safety
    /// - If a slot keeps a walk within `bounds` (the same `lo` and `hi`), every byte of
    ///   `[bounds.lo, bounds.hi)` is readable for the duration of the call (stack words
    ///   are read only once a slot matched).
    #[inline(always)]
    pub(super) unsafe fn replay(
        &mut self,
        fp: usize,
        bounds: StackBounds,
        room: usize,
        generation: u32,
    ) -> Option<Replayed> {
        self.last = Self::slot(bounds);
        // SAFETY: this function's bullet is `replay`'s.
        unsafe { self.slots[self.last].replay(fp, bounds, room, generation) }
    }

    /// Tells the slot of the last walk (replayed or walked and kept) the id of the whole
    /// stack: that walk's frames, then (`tail`) those of the walk on from where it stopped
    /// that read exactly these words (the thread's `tail::TailMemo`, which matched), or
    /// none (`None`: the walk's frames are the whole stack), under the rules of
    /// `generation`. Callers know the frame-record prefix was exact under those rules.
    #[inline(always)]
    pub(super) fn remember(&mut self, tail: Option<&[(usize, usize)]>, id: StackId, generation: u32) {
        if let Some(slot) = self.slots.get_mut(self.last) {
            slot.remember(tail.unwrap_or(&[]), id, generation);
        }
    }

    /// The frame-record walk from `fp` within `bounds` into `out` (`unwind::walk_records`),
    /// kept in its slot when `out` has room for 1 to [`FRAMES`] frames (so that a replay
    /// that matches a slot's room has as much).
    ///
    /// # Safety
    /// - As `unwind::walk_records`.
    #[inline(always)]
    pub(super) unsafe fn walk(&mut self, fp: usize, out: &mut [MaybeUninit<usize>], bounds: StackBounds) -> Records {
        if out.len() > FRAMES || out.is_empty() {
            self.last = NO_SLOT;
            // SAFETY: this function's bullet is `walk_records`'.
            return unsafe { unwind::walk_records(fp, out, bounds) };
        }
        self.last = Self::slot(bounds);
        let memo = &mut self.slots[self.last];
        memo.start(fp);
        // SAFETY: this function's bullet is `walk_records_traced`'.
        let at = unsafe { unwind::walk_records_traced(fp, out, bounds, memo) };
        memo.keep(fp, bounds, out.len(), at);
        at
    }

    /// Writes the frames of the walk [`Self::replay`] just returned to `out[..at.len]`.
    #[inline(always)]
    pub(super) fn write_frames(&self, out: &mut [MaybeUninit<usize>]) {
        debug_assert_ne!(self.last, NO_SLOT);
        self.slots[self.last].write_frames(out);
    }

    /// Walks replayed, over all slots.
    #[cfg(test)]
    pub(super) fn replays(&self) -> u64 {
        self.slots.iter().map(|m| m.replays).sum()
    }
}

/// A slot's last frame-record walk from `capture`'s frame. Invariant: when kept (`lo` is
/// not [`NOT_KEPT`]), the walk from `fp` within `[lo, hi)` with room for `room` frames
/// read `read` records (each the caller's `rbp`, then a return address), found at record
/// `i`, at `addrs[i]`, the two words `words[i]`, and returned `at` (its frames: the
/// return addresses of `words[..at.len]`). Record 0 is at `fp`, record `i + 1` at
/// `words[i][0]` (the `rbp` word read before it). Past `read`, up to `4 * groups` (`read`
/// rounded up to a multiple of 4), record 0 again: a replay compares `groups` groups of
/// four records.
///
/// The fields every capture compares first, first (`repr(C)`).
#[derive(Debug)]
#[repr(C)]
struct RecordMemo {
    read: usize,
    fp: usize,
    lo: usize,
    hi: usize,
    room: usize,
    at: Records,
    /// The id of the stack made of this walk's frames and then those of the walk on that
    /// read `tail[..tail_len]`, under the rules of `generation`; 0 when none is known.
    id: u32,
    generation: u32,
    tail_len: usize,
    tail: [(usize, usize); TAIL_WORDS],
    /// The two words read at each record, as they lie there: the next record's address,
    /// then the return address. A replay compares each record with its pair whole.
    words: [RecordWords; FRAMES],
    /// Where each record lies (see `words`).
    addrs: [usize; FRAMES],
    /// Groups of four records a replay compares (`compared`: `read` rounded up to a
    /// multiple of 4, over 4).
    groups: usize,
    /// Walks replayed.
    #[cfg(test)]
    replays: u64,
}

impl RecordMemo {
    /// An empty memo.
    const fn new() -> Self {
        Self {
            read: 0,
            fp: 0,
            lo: NOT_KEPT,
            hi: 0,
            room: 0,
            at: Records { len: 0, hash: 0, sp: 0, fp: 0, ret: 0 },
            id: 0,
            generation: 0,
            tail_len: 0,
            tail: [(0, 0); TAIL_WORDS],
            words: [RecordWords([0; 2]); FRAMES],
            addrs: [0; FRAMES],
            groups: 0,
            #[cfg(test)]
            replays: 0,
        }
    }

    /// What the walk from `fp` within `bounds`, with room for `room` frames, returns, when
    /// it is the kept one: the same start, bounds and room, and every word it read still
    /// holds its value. Its frames are not written: [`Self::write_frames`] does that.
    ///
    /// # Safety
    /// - If this memo keeps a walk within `bounds` (the same `lo` and `hi`), every byte of
    ///   `[bounds.lo, bounds.hi)` is readable for the duration of the call.
    #[inline(always)]
    unsafe fn replay(&mut self, fp: usize, bounds: StackBounds, room: usize, generation: u32) -> Option<Replayed> {
        // A memo that keeps no walk has `lo` at `NOT_KEPT`, which no stack pointer is: no
        // test of its own (two instructions a capture).
        debug_assert_ne!(bounds.lo, NOT_KEPT);
        if ((self.fp ^ fp) | (self.lo ^ bounds.lo) | (self.hi ^ bounds.hi) | (self.room ^ room)) != 0 {
            return None;
        }
        debug_assert!(self.read <= room && self.at.len <= self.read && self.read <= 4 * self.groups);
        debug_assert!(4 * self.groups <= FRAMES);
        // SAFETY: `4 * groups <= FRAMES`, the length of `words` and `addrs` (`keep` sets it
        // from `read`, at most `FRAMES`, rounded up to a multiple of 4, which `FRAMES` is):
        // the first `groups` groups of four of each array, which have the layout of arrays
        // of groups (arrays are their elements in a row).
        let (addrs, kept) = unsafe {
            (
                core::slice::from_raw_parts(self.addrs.as_ptr().cast::<[usize; 4]>(), self.groups),
                core::slice::from_raw_parts(self.words.as_ptr().cast::<[RecordWords; 4]>(), self.groups),
            )
        };
        debug_assert!(addrs.iter().flatten().all(|&r| r >= bounds.lo && r + 16 <= bounds.hi && r.is_multiple_of(8)));
        // Each record's address is the kept walk's: the first is `fp`, each next one the
        // word the record before held when the kept walk read it. Whether each record
        // still holds its two words is one answer for all of them, from loads that do not
        // wait on each other (`records_hold`): a walk stops at the first difference, but a
        // replay that finds one anywhere is simply not taken.
        // SAFETY: the kept walk read each of these records (the padding: record 0 again)
        // after checking that its 16 bytes lie in its bounds, which are `bounds` (compared
        // above: readable, caller's bullet), and that its address is 8-byte aligned:
        // `records_hold`'s bullet, both of `groups` groups.
        if !unsafe { crate::platform::records_hold(addrs, kept) } {
            return None;
        }
        #[cfg(test)]
        {
            self.replays += 1;
        }
        Some(Replayed { at: self.at, id: self.known_id(bounds, generation) })
    }

    /// The stack's id, when known under the rules of `generation` and every word of the
    /// walk on still holds its value (after a replay: the same walk).
    #[inline(always)]
    fn known_id(&self, bounds: StackBounds, generation: u32) -> Option<StackId> {
        if self.id == 0 || self.generation != generation {
            return None;
        }
        debug_assert!(self.tail_len <= TAIL_WORDS);
        // SAFETY: `tail_len <= TAIL_WORDS`, the length of `tail` (`remember` sets it only
        // to the length of a slice it copied into `tail`).
        let tail = unsafe { self.tail.get_unchecked(..self.tail_len) };
        for &(addr, value) in tail {
            debug_assert!(addr >= bounds.lo && addr + 8 <= bounds.hi && addr.is_multiple_of(8));
            // SAFETY: `remember` kept only words in the bounds of the kept walk, 8-byte
            // aligned; those bounds are `bounds` (the replay compared them), readable for
            // the call (`replay`'s bullet): a plain load of a stack word, on this thread.
            if unsafe { *(addr as *const usize) } != value {
                return None;
            }
        }
        Some(StackId(self.id))
    }

    /// See [`RecordMemos::remember`]. Words outside the kept walk's bounds or misaligned
    /// (none are expected), or more than the slot holds: nothing is remembered.
    fn remember(&mut self, tail: &[(usize, usize)], id: StackId, generation: u32) {
        let inside =
            |&(addr, _): &(usize, usize)| addr >= self.lo && addr < self.hi.saturating_sub(7) && addr.is_multiple_of(8);
        if !self.kept() || tail.len() > TAIL_WORDS || !tail.iter().all(inside) {
            return;
        }
        self.tail[..tail.len()].copy_from_slice(tail);
        self.tail_len = tail.len();
        self.generation = generation;
        self.id = id.0;
    }

    /// Writes the kept walk's frames to `out[..at.len]` (after a [`Self::replay`]).
    fn write_frames(&self, out: &mut [MaybeUninit<usize>]) {
        debug_assert!(self.kept() && self.at.len <= out.len());
        for (slot, &RecordWords([_, ret])) in out.iter_mut().zip(&self.words[..self.at.len]) {
            slot.write(ret);
        }
    }

    /// Forgets the kept walk, before a walk from `fp` traced into this memo.
    #[inline(always)]
    fn start(&mut self, fp: usize) {
        self.lo = NOT_KEPT;
        self.id = 0;
        self.read = 0;
        self.fp = fp;
    }

    /// Keeps the walk from `fp` within `bounds`, with room for `room` frames, traced into
    /// this memo since [`Self::start`], which returned `at`.
    #[inline(always)]
    fn keep(&mut self, fp: usize, bounds: StackBounds, room: usize, at: Records) {
        debug_assert!(self.fp == fp && self.at_most(room));
        self.fp = fp;
        self.lo = bounds.lo;
        self.hi = bounds.hi;
        self.room = room;
        self.at = at;
        // Record 0 again up to a multiple of 4 (`FRAMES` is one): a replay then compares
        // four records a step, with no odd ones to handle.
        let compared = self.read.next_multiple_of(4);
        self.groups = compared / 4;
        for i in self.read..compared {
            (self.addrs[i], self.words[i]) = (self.addrs[0], self.words[0]);
        }
    }

    /// Whether the memo keeps a walk.
    fn kept(&self) -> bool {
        self.lo != NOT_KEPT
    }

    fn at_most(&self, room: usize) -> bool {
        self.read <= room
    }
}

impl RecordReads for RecordMemo {
    #[inline(always)]
    fn record(&mut self, i: usize, fp: usize, next: usize, ret: usize) {
        debug_assert_eq!(if i == 0 { self.fp } else { self.words[i - 1].0[0] }, fp);
        // A walk reads at most one record per frame of its output, which holds at most
        // `FRAMES` when traced (`RecordMemos::walk`): the index is in bounds (checked
        // anyway).
        self.words[i] = RecordWords([next, ret]);
        self.addrs[i] = fp;
        self.read = i + 1;
    }
}
