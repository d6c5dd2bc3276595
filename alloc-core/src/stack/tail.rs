//! The tail of a thread's stacks: the rule walk past the last frame record, replayed.
//!
//! # What it owns
//! [`TailMemo`]: per thread, the last rule walk that went on from where a frame-record
//! prefix stopped (`unwind::walk_rules_after`), with every stack word it read.
//!
//! # Why
//! In a program built with frame pointers the frame records of a thread's stacks end in
//! its start code (the C library's `__libc_start_call_main` and `_start`, or
//! `start_thread` and `clone3`), which keeps no frame pointer: every capture of the
//! thread walks those same two or three frames by their rules, at the same stack
//! addresses, and that walk cost more than the whole frame-record prefix before it.
//!
//! # Why the replay is exact
//! A rule walk is a function of its start (the frame's address, stack pointer and `rbp`),
//! the rules (fixed while `rules::generation` is), the bounds it reads within (from 16
//! bytes below the start's stack pointer, see `unwind::walk_rules_after`, to the top of
//! the thread's stack), the room left in the output (see [`TailMemo::replay`]), and the
//! stack words it reads; each word it reads is at an
//! address computed from the start and the words read before. So a walk from the same
//! start, under the same rules, with the same room, that finds the same value in every
//! word the memo records, reads exactly those words and finds exactly those frames. A
//! replay checks each word (one load and compare each) instead of looking up the rules.
//! Walks that guessed a rule (the miss lock was busy) or read more words than the memo
//! holds are not kept.

use super::rules;
use super::unwind::{finish, mix, Frame, Reads, Records, RuleWalk, Walk};
use super::StackBounds;
use core::mem::MaybeUninit;

/// Most frames and stack words a kept walk may have.
const FRAMES: usize = 8;
const WORDS: usize = 16;

/// Where a walk started, and under what: what a replay must match. The bounds the walk
/// read within are `[sp - 16, hi)` (`unwind::walk_rules_after`).
#[derive(Clone, Copy, Debug)]
struct Start {
    addr: usize,
    sp: usize,
    fp: usize,
    hi: usize,
    generation: u32,
}

impl Start {
    #[inline(always)]
    fn new(frame: Frame, bounds: StackBounds, generation: u32) -> Start {
        debug_assert_eq!(bounds.lo, frame.sp - 16);
        Start { addr: frame.addr, sp: frame.sp, fp: frame.fp, hi: bounds.hi, generation }
    }

    /// Whether both are the same start (branch-free: every field is compared every time).
    #[inline(always)]
    fn same(&self, other: &Start) -> bool {
        ((self.addr ^ other.addr)
            | (self.sp ^ other.sp)
            | (self.fp ^ other.fp)
            | (self.hi ^ other.hi)
            | (self.generation ^ other.generation) as usize)
            == 0
    }
}

/// The stack words a walk read, as [`Reads`] reports them.
#[derive(Debug)]
pub(super) struct Trace {
    start: Start,
    /// Frames in the output before the walk, and the output's length.
    from: usize,
    limit: usize,
    words: [(usize, usize); WORDS],
    len: usize,
    overflowed: bool,
}

impl Reads for Trace {
    #[inline(always)]
    fn read(&mut self, addr: usize, value: usize) {
        if self.len == WORDS {
            self.overflowed = true;
            return;
        }
        self.words[self.len] = (addr, value);
        self.len += 1;
    }
}

/// A thread's last walk on from a frame-record prefix. Invariant: when `kept`, walking on
/// from `start` under its rules generation read exactly `words[..words_len]` (address,
/// value), in that order, and found `frames[..frames_len]`.
///
/// In declaration order (`repr(C)`): what every capture reads first, in the same cache
/// lines.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct TailMemo {
    kept: bool,
    /// The walk stopped because the output was full, not at a step that failed.
    cut: bool,
    words_len: usize,
    frames_len: usize,
    /// Bumped by every walk kept: names the kept walk in [`Self::key`]s.
    epoch: u64,
    start: Start,
    words: [(usize, usize); WORDS],
    frames: [usize; FRAMES],
    /// Walks replayed.
    #[cfg(test)]
    pub(super) replays: u64,
}

impl TailMemo {
    /// An empty memo.
    pub(crate) const fn new() -> Self {
        let start = Start { addr: 0, sp: 0, fp: 0, hi: 0, generation: 0 };
        Self {
            kept: false,
            start,
            words: [(0, 0); WORDS],
            words_len: 0,
            frames: [0; FRAMES],
            frames_len: 0,
            cut: false,
            epoch: 0,
            #[cfg(test)]
            replays: 0,
        }
    }

    /// Whether the walk on from `frame` within `bounds`, with `room` frames left in its
    /// output, under the rules of `generation` (the current one), is the kept one: the
    /// same start, and its words still hold their values. It then finds the kept frames,
    /// or, with less room than they need, their first `room`; with more room it goes as
    /// far, unless the kept walk was cut short by its own room.
    ///
    /// # Safety
    /// - Every byte of `[bounds.lo, bounds.hi)` is readable for the duration of the call,
    ///   and `bounds.lo == frame.sp - 16`.
    #[inline(always)]
    pub(super) unsafe fn matches(&self, frame: Frame, bounds: StackBounds, room: usize, generation: u32) -> bool {
        if !self.kept
            || !self.start.same(&Start::new(frame, bounds, generation))
            || (self.cut && room > self.frames_len)
        {
            return false;
        }
        for &(addr, value) in &self.words[..self.words_len] {
            debug_assert!(addr >= bounds.lo && addr + 8 <= bounds.hi && addr.is_multiple_of(8));
            // SAFETY: the kept walk read this word after checking that `[addr, addr + 8)`
            // lies in its bounds, which are `bounds` (the same `sp - 16` and `hi`: `start`
            // matched), readable (caller's bullet), and that `addr` is 8-byte aligned: a
            // plain load of a stack word, on this thread.
            if unsafe { *(addr as *const usize) } != value {
                return false;
            }
        }
        true
    }

    /// The key of a whole stack made of the frame-record prefix whose hash is `prefix` and
    /// the walk on from `frame` (see [`Self::matches`], whose bullet is this one's), when
    /// that walk is the kept one and finds all its frames with `room`: the prefix, the
    /// rules and the kept walk's number ([`Self::epoch`]) mixed. 0 when it is not.
    ///
    /// # Safety
    /// - As [`Self::matches`].
    #[inline(always)]
    pub(super) unsafe fn key(
        &self,
        prefix: u64,
        frame: Frame,
        bounds: StackBounds,
        room: usize,
        generation: u32,
    ) -> u64 {
        // SAFETY: this function's bullet is `matches`'.
        if room < self.frames_len || !unsafe { self.matches(frame, bounds, room, generation) } {
            return 0;
        }
        finish(mix(prefix, self.epoch as usize), generation as usize)
    }

    /// The number of the kept walk (see [`Self::epoch`]), `None` when none is kept.
    #[inline(always)]
    pub(super) fn kept_epoch(&self) -> Option<u64> {
        self.kept.then_some(self.epoch)
    }

    /// The stack words the kept walk read, when it is walk number `epoch`.
    #[inline(always)]
    pub(super) fn words_of(&self, epoch: u64) -> Option<&[(usize, usize)]> {
        (self.kept && self.epoch == epoch).then(|| &self.words[..self.words_len])
    }

    /// The walk on from `frame` within `bounds` (after the `at.len` frames of `out` a
    /// frame-record walk wrote), under the rules of `generation`, replayed into `out` when
    /// it [`matches`](Self::matches) the kept one; `None` otherwise (nothing written).
    ///
    /// # Safety
    /// - As [`Self::matches`].
    #[inline(always)]
    pub(super) unsafe fn replay(
        &mut self,
        frame: Frame,
        at: Records,
        out: &mut [MaybeUninit<usize>],
        bounds: StackBounds,
        generation: u32,
    ) -> Option<Walk> {
        let room = out.len() - at.len;
        // SAFETY: this function's bullet is `matches`'.
        if !unsafe { self.matches(frame, bounds, room, generation) } {
            return None;
        }
        let mut h = at.hash;
        let mut n = at.len;
        for &ret in &self.frames[..self.frames_len.min(room)] {
            out[n].write(ret);
            h = mix(h, ret);
            n += 1;
        }
        #[cfg(test)]
        {
            self.replays += 1;
        }
        Some(Walk { len: n, hash: finish(h, n) })
    }

    /// A trace for a walk on from `frame` within `bounds` (`lo == frame.sp - 16`), after the
    /// `at.len` frames of an output of `limit` frames, under the rules of `generation`.
    pub(super) fn start(&self, frame: Frame, at: Records, limit: usize, bounds: StackBounds, generation: u32) -> Trace {
        Trace {
            start: Start::new(frame, bounds, generation),
            from: at.len,
            limit,
            words: [(0, 0); WORDS],
            len: 0,
            overflowed: false,
        }
    }

    /// Keeps the walk `walked`, traced by `trace`, which wrote `out[trace.from ..
    /// walked.walk.len]`, if it can be replayed: no guessed rule, no more words and
    /// frames than the memo holds, and the rules unchanged since it started.
    pub(super) fn keep(&mut self, trace: Trace, walked: &RuleWalk, out: &[MaybeUninit<usize>]) {
        let from = trace.from;
        let frames = walked.walk.len.saturating_sub(from);
        self.kept = false;
        if walked.guessed
            || trace.overflowed
            || frames > FRAMES
            || walked.walk.len < from
            || trace.start.generation != rules::generation()
        {
            return;
        }
        for (slot, frame) in self.frames.iter_mut().zip(&out[from..walked.walk.len]) {
            // SAFETY: the walk wrote `out[from..len]` before counting them into `len`.
            *slot = unsafe { frame.assume_init() };
        }
        self.frames_len = frames;
        self.cut = walked.walk.len == trace.limit;
        self.words = trace.words;
        self.words_len = trace.len;
        self.start = trace.start;
        self.epoch += 1;
        self.kept = true;
    }
}
