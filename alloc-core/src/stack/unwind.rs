//! Stack walking: the cached unwinder, the validated frame-pointer walk, and the DWARF
//! unwinder.
//!
//! # What it owns
//! The three walkers [`capture`](super::capture) chooses between, and the stack hash they
//! compute as they go ([`mix`], [`finish`]), so that the same frames hash the same
//! whichever walker found them.
//!
//! # The cached unwinder
//! [`walk_rules`] starts from its own frame (its pc, `rsp` and `rbp`, read in place) and
//! steps frame by frame: the rule of the frame's address (`rules::lookup`, two loads; on a
//! miss `cfi::rule_for`), the CFA from `rsp` or `rbp` plus the rule's offset, the return
//! address at CFA - 8, the caller's `rbp` where the rule says it was saved. A frame whose
//! rule is the frame-pointer record (`CFA = rbp + 16`, what every function built with
//! frame pointers has past its prologue, std's included) is stepped exactly as the
//! frame-pointer walk steps: its loads do not wait for the rule's, so such frames cost
//! about what they cost in the frame-pointer walk. Each read is checked against the
//! live part of the thread's stack, and each CFA must lie above the frame's stack pointer:
//! a wrong rule can cut a stack short or add a wrong frame, never read outside the stack
//! or loop. The walk skips its own return address and those of the frames its caller
//! asks it to (`capture`'s walking part: its own and `capture`'s), so it starts at the
//! return address into `capture`'s caller.
//!
//! # The frame-pointer walk (x86-64 Linux)
//! From `capture`'s frame, whose `rbp` and `rsp` it reads in place and hands down. With
//! frame pointers, `rbp` points at a frame record: the caller's `rbp`, then the
//! return address. Each step is checked before it reads: the frame pointer must lie in
//! `[max(rsp, bounds.lo), bounds.hi - 16]` and be 8-byte aligned, the return address must
//! be non-zero, and the next frame pointer must be strictly above the current one (stacks
//! grow down, so the walk always moves toward the stack's top and ends). The walk stops at
//! the first failed check. Code built without frame pointers uses `rbp` as an ordinary
//! register: its value can shorten a stack or add a bogus frame, but never make the walk
//! read outside the live part of the thread's stack. About 1 ns a frame.
//!
//! # The DWARF walk
//! `backtrace::trace_unsynchronized` (libgcc's `_Unwind_Backtrace`): complete without
//! frame pointers, about 100 times slower. It reports the unwinder's own frames first. The
//! stack pointer it gives for a frame (libgcc's `_Unwind_GetCFA` there is the CFA of the
//! callee, that is the frame's own `rsp` at the call) lies at or below a marker, the
//! address of a local in `capture`'s frame (handed down to its walking part), for
//! `capture` and every frame it called; we skip those. So every walker starts at the return address into `capture`'s caller,
//! whatever the unwinder's crate inlined.

use super::rules::{self, Base, Rule, RuleMemo, Step};
use super::tail::TailMemo;
use super::{cfi, StackBounds};
use core::mem::MaybeUninit;

/// The frames a walker wrote (`out[..len]`) and their hash ([`finish`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Walk {
    pub(super) len: usize,
    pub(super) hash: u64,
}

pub(super) const SEED: u64 = 0x243F_6A88_85A3_08D3;
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// Mixes one return address into a running hash: an xor and a multiply by an odd
/// constant (a bijection of `h` for each `ip`), 4 cycles of latency, which hides under the
/// walk's own load-to-load latency.
#[inline(always)]
pub(super) fn mix(h: u64, ip: usize) -> u64 {
    (h ^ ip as u64).wrapping_mul(K)
}

/// The final hash of `n` frames: the frame count folded in, and the high bits (where the
/// multiplies put the entropy) folded down. Users index with the high bits.
#[inline(always)]
pub(super) fn finish(h: u64, n: usize) -> u64 {
    let h = (h ^ n as u64).wrapping_mul(K);
    h ^ (h >> 29)
}

/// The hash the walkers compute for `frames`.
pub(super) fn hash_frames(frames: &[usize]) -> u64 {
    finish(frames.iter().fold(SEED, |h, &ip| mix(h, ip)), frames.len())
}

/// Walks frame pointers from the frame whose frame pointer and stack pointer are `fp`
/// and `sp` (`capture`'s, read there), filling `out` with return addresses: the first is
/// the return address into that frame's caller.
///
/// A safe `fn` whose callers ensure that `bounds` are the calling thread's stack bounds
/// (from `current_thread_stack_bounds` on this thread) or unknown (`lo == hi`), and that
/// the frame is the caller's or one of its callers', live for the whole call.
#[inline(always)]
pub(super) fn walk_frame_pointers(fp: usize, sp: usize, out: &mut [MaybeUninit<usize>], bounds: StackBounds) -> Walk {
    let live = StackBounds { lo: bounds.lo.max(sp), hi: bounds.hi };
    // SAFETY: `walk_from`'s bullet: `live.lo >= sp > 0`, and every byte of
    // `[live.lo, live.hi)` is readable:
    // - `bounds` are this thread's stack or unknown (callers). Unknown bounds have
    //   `hi == lo <= sp`, so `live` is empty and nothing is read.
    // - When `sp` is on this thread's stack, `[sp, hi)` is its live part: the frames of
    //   this call and its callers, mapped and readable for the whole call.
    // - When `sp` is above `hi` (running on another stack), `live` is empty.
    // - When `sp` is below `lo` (a signal or coroutine stack mapped below the thread's
    //   stack), `live` is the whole `[lo, hi)`: readable for a thread stack glibc
    //   allocated (mapped in full), but for the main thread `lo` is `hi` minus the stack
    //   limit, and the part below the stack's lowest touched page may not be mapped. The
    //   walk then reads only if `rbp` points into `[lo, hi)`: frames of this other stack
    //   put it outside, but code built without frame pointers may leave any value there.
    unsafe { walk_from(fp, out, live) }
}

/// The validated walk of a frame-record chain starting at `fp` (see the module notes).
/// Reads only the two words `[fp, fp + 16)` of frame pointers `fp` with
/// `lo <= fp <= hi - 16`, 8-byte aligned.
///
/// # Safety
/// - Every byte of `[bounds.lo, bounds.hi)` is readable for the duration of the call, and
///   `bounds.lo > 0` or `bounds.hi >= 16` (so `hi - 16` does not saturate below `lo`).
#[inline(always)]
pub(super) unsafe fn walk_from(fp: usize, out: &mut [MaybeUninit<usize>], bounds: StackBounds) -> Walk {
    // SAFETY: this function's bullet is `walk_records`'.
    let records = unsafe { walk_records(fp, out, bounds) };
    Walk { len: records.len, hash: finish(records.hash, records.len) }
}

/// Where a frame-record walk ([`walk_records`]) stopped: the frames it wrote (`out[..len]`),
/// their running hash (not yet [`finish`]ed), and the registers of the last frame it
/// reached, the one that returns to `out[len - 1]`: its stack pointer (its CFA, 16 above
/// the record that gave its return address) and its `rbp` (the record's saved `rbp`),
/// and that return address, `out[len - 1]` (0 when `len` is 0). From there the rule walk
/// can go on ([`walk_rules_after`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Records {
    pub(super) len: usize,
    pub(super) hash: u64,
    pub(super) sp: usize,
    pub(super) fp: usize,
    pub(super) ret: usize,
}

/// The frame-record walk behind [`walk_from`], stopping where [`Records`] says.
///
/// # Safety
/// - As [`walk_from`].
#[inline(always)]
pub(super) unsafe fn walk_records(fp: usize, out: &mut [MaybeUninit<usize>], bounds: StackBounds) -> Records {
    // SAFETY: this function's bullet is `walk_records_traced`'.
    unsafe { walk_records_traced(fp, out, bounds, &mut Untraced) }
}

/// What a traced frame-record walk tells of the records it reads: [`walk_records_traced`]
/// reports each record it loads. The hot walks pass [`Untraced`], which compiles to
/// nothing.
pub(super) trait RecordReads {
    /// The walk read record number `i` (from 0), at `fp`: the word `next` (the caller's
    /// `rbp`), then the return address `ret`.
    fn record(&mut self, i: usize, fp: usize, next: usize, ret: usize);
}

impl RecordReads for Untraced {
    #[inline(always)]
    fn record(&mut self, _: usize, _: usize, _: usize, _: usize) {}
}

/// [`walk_records`], reporting each record it reads to `trace`.
///
/// # Safety
/// - As [`walk_from`].
#[inline(always)]
pub(super) unsafe fn walk_records_traced(
    mut fp: usize,
    out: &mut [MaybeUninit<usize>],
    bounds: StackBounds,
    trace: &mut impl RecordReads,
) -> Records {
    let last = bounds.hi.saturating_sub(16);
    let (mut n, mut h) = (0, SEED);
    // The record that gave the last frame.
    let mut record = 0;
    // Later records lie above this one (`next > fp`, checked), so above `lo` too.
    if fp < bounds.lo {
        return Records { len: 0, hash: h, sp: 0, fp: 0, ret: 0 };
    }
    while n < out.len() {
        debug_assert!(fp >= bounds.lo);
        if fp > last || !fp.is_multiple_of(8) {
            break;
        }
        // SAFETY:
        // - `lo <= fp` (checked before the loop for the first record, and each next one
        //   lies above the last) and `fp <= hi - 16` (checked just above; `hi - 16` did not
        //   saturate, caller's bullet), so `[fp, fp + 16)` lies in `[lo, hi)`, readable
        //   (caller).
        // - `fp` is 8-byte aligned (checked), so both `usize` reads are aligned.
        // - Stack memory is only read, on this thread: a plain load of whatever word is
        //   there (a frame record, or with frames lacking frame pointers another stack
        //   word, which ends the walk or adds a bogus frame).
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        trace.record(n, fp, next, ret);
        if ret == 0 {
            break;
        }
        out[n].write(ret);
        h = mix(h, ret);
        n += 1;
        record = fp;
        if next <= fp {
            break;
        }
        fp = next;
    }
    if n == 0 {
        return Records { len: 0, hash: h, sp: 0, fp: 0, ret: 0 };
    }
    // SAFETY: `record` passed the checks above when it was read: `[record, record + 16)`
    // lies in `[lo, hi)`, readable (caller), and is aligned. Read again rather than kept
    // in the loop, which is the whole cost of a walk.
    let (saved_rbp, ret) = unsafe { (*(record as *const usize), *((record + 8) as *const usize)) };
    Records { len: n, hash: h, sp: record + 16, fp: saved_rbp, ret }
}

/// Walks by cached unwind rules (`rules`, filled by `cfi` on a miss) from the frame of
/// this function, filling `out` with return addresses: the first is the return address
/// into the caller of the function `skip` frames above this function's caller
/// (`capture`'s caller, when `capture`'s walking part calls it with `skip` 1: the frames
/// of `capture` and of its part are not recorded). Empty when the bounds are unknown or the stack pointer lies outside them (a
/// signal stack): `capture` then takes the DWARF walk.
///
/// Also returns which frames it stepped through their frame record by a known rule (see
/// [`RuleWalk::records`]).
///
/// A safe `fn` whose callers ensure that `bounds` are the calling thread's stack bounds
/// (from `current_thread_stack_bounds` on this thread) or unknown (`lo == hi`).
#[inline(never)]
pub(super) fn walk_rules(
    out: &mut [MaybeUninit<usize>],
    bounds: StackBounds,
    memo: &mut RuleMemo,
    skip: usize,
) -> RuleWalk {
    // Inlined into this function: the address and registers of this frame.
    let (pc, sp, fp) = crate::platform::pc_sp_fp();
    let empty = RuleWalk { walk: Walk { len: 0, hash: finish(SEED, 0) }, records: 0, guessed: false };
    if bounds.hi <= bounds.lo || sp < bounds.lo || sp >= bounds.hi {
        return empty;
    }
    let live = StackBounds { lo: sp, hi: bounds.hi };
    let Some(table) = rules::table() else { return empty };
    memo.sync();
    let mut may_parse = true;
    let mut frame = Frame { addr: pc, sp, fp };
    // This frame's own return address (into its caller) is not recorded, nor those of
    // the `skip` frames above it.
    for _ in 0..=skip {
        let rule = memo
            .lookup(table, frame.addr, frame.sp)
            .unwrap_or_else(|| miss(frame.addr, frame.sp, &mut may_parse, memo));
        // SAFETY: `step`'s bullet: `live.lo = sp > 0`, and `[sp, hi)` is the live part of
        // this thread's stack (the bounds are this thread's, callers; `sp` lies in them,
        // checked just above): the frames of this call and its callers, mapped and
        // readable for the whole call.
        match unsafe { step(rule, frame, live) } {
            Some((cfa, ret, fp)) if ret != 0 => frame = Frame { addr: ret - 1, sp: cfa, fp },
            _ => return empty,
        }
    }
    let start = Records { len: 0, hash: SEED, sp: 0, fp: 0, ret: 0 };
    // SAFETY: `walk_rules_from`'s bullet, as for `step` above.
    unsafe { walk_rules_from(table, memo, frame, start, out, live) }
}

/// One frame of a rule walk: the address whose rule describes it (the frame's own pc for
/// the first frame, a return address minus one for the others, so that a call at the very
/// end of a function finds that function's rule), its stack pointer and `rbp`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Frame {
    pub(super) addr: usize,
    pub(super) sp: usize,
    pub(super) fp: usize,
}

/// What [`walk_rules`] found: the frames, and which of them it reached through a frame
/// record: bit `i` of `records` is set when `out[i]` was read from the frame record at
/// `rbp` of the frame below it, by that frame's own known rule (`CFA = rbp + 16`, or no
/// unwind information at all), exactly as the frame-record walk reads it.
#[derive(Clone, Copy, Debug)]
pub(super) struct RuleWalk {
    pub(super) walk: Walk,
    pub(super) records: u64,
    /// Some frame's rule was a guess (the frame record), its own not known yet: the miss
    /// lock was busy (see [`miss`]).
    pub(super) guessed: bool,
}

/// Goes on with the rule walk from where the frame-record walk stopped (`at`, with
/// `out[..at.len]` written by it, `at.len >= 1`), up to the end of `out`, under the rules
/// of `generation` (the current one). The frames and the hash are then those
/// [`walk_rules`] would have found, when the records walk's frames were each stepped by
/// a frame-record rule (what `super::prefix` checks). The walk on from the same frame as
/// last time, through the same stack words, is replayed from `tail` instead.
///
/// A safe `fn` whose callers ensure that `bounds` are the calling thread's stack bounds,
/// with `bounds.lo` at or below the stack pointer of a frame that is live for the whole
/// call (the caller's), and that `at` comes from [`walk_records`] on this thread's stack
/// within those bounds.
#[inline(always)]
pub(super) fn walk_rules_after(
    out: &mut [MaybeUninit<usize>],
    at: Records,
    bounds: StackBounds,
    memo: &mut RuleMemo,
    tail: &mut TailMemo,
    generation: u32,
) -> Walk {
    debug_assert!(at.len >= 1 && at.len <= out.len());
    let Some((frame, bounds)) = tail_start(out.len(), at, bounds) else {
        return Walk { len: at.len, hash: finish(at.hash, at.len) };
    };
    // SAFETY: `replay`'s bullet is `tail_start`'s promise.
    if let Some(walk) = unsafe { tail.replay(frame, at, out, bounds, generation) } {
        return walk;
    }
    walk_on_and_keep(out, at, frame, bounds, memo, tail, generation)
}

/// Where the rule walk goes on after a frame-record walk (`at`, in `out`, within
/// `bounds`): the frame that returns to `out[at.len - 1]`, and the bounds the walk on
/// reads within. `None` when there is nothing to go on with (`out` is full) or `at` is
/// not of a walk within `bounds`.
///
/// The walk on reads from 16 bytes below its first frame's stack pointer (the lowest a
/// frame record of that frame can lie), not from the caller's: so that its bounds, and
/// with them its result, depend on where it starts only (`tail`). `at.sp - 16` is the
/// frame record that gave `out[at.len - 1]`, which `walk_records` read within `bounds`
/// (checked again here). The rule walk from the bottom reads nothing lower in this part
/// of the stack but for a rule that saves `rbp` below its frame's stack pointer, which
/// no compiler emits.
///
/// Promise, when `bounds` are as [`walk_rules_after`] requires: `[lo, hi)` of the bounds
/// returned lies in them (readable while the caller's frame lives), and `lo` is the
/// frame's stack pointer minus 16, above 0.
#[inline(always)]
pub(super) fn tail_start(room: usize, at: Records, bounds: StackBounds) -> Option<(Frame, StackBounds)> {
    if at.len == 0 || at.len >= room || at.sp < bounds.lo + 16 || bounds.hi <= at.sp || bounds.lo == 0 {
        return None;
    }
    debug_assert_ne!(at.ret, 0);
    Some((Frame { addr: at.ret - 1, sp: at.sp, fp: at.fp }, StackBounds { lo: at.sp - 16, hi: bounds.hi }))
}

/// The rule walk on from `frame` (after `out[..at.len]`), traced and kept in `tail`.
///
/// A safe `fn` whose callers ensure that `bounds` lie in the live part of this thread's
/// stack from a frame that outlives the call, with `bounds.lo == frame.sp - 16 > 0`.
#[inline(never)]
fn walk_on_and_keep(
    out: &mut [MaybeUninit<usize>],
    at: Records,
    frame: Frame,
    bounds: StackBounds,
    memo: &mut RuleMemo,
    tail: &mut TailMemo,
    generation: u32,
) -> Walk {
    let Some(table) = rules::table() else { return Walk { len: at.len, hash: finish(at.hash, at.len) } };
    memo.sync();
    let mut trace = tail.start(frame, at, out.len(), bounds, generation);
    // SAFETY: `walk_rules_traced`'s bullet: `bounds.lo > 0` and `[lo, hi)` is readable
    // (callers).
    let walked = unsafe { walk_rules_traced(table, memo, frame, at, out, bounds, &mut trace) };
    tail.keep(trace, &walked, out);
    walked.walk
}

/// The validated rule walk from `frame`, recording the return address of every frame
/// into `out[start.len..]`, the hash going on from `start.hash`; `table` is the rule
/// cache, `memo` the thread's copy of the rules it used last.
///
/// Each step computes the caller's stack pointer (the CFA) from the rule of the frame's
/// address, then reads the return address at CFA - 8 and, if the rule says so, the
/// caller's `rbp`; a frame whose rule is a frame-pointer record (the common case in code
/// with frame pointers) reads `[rbp, rbp + 16)` directly, so that its loads do not wait
/// for the rule's. Every read is of an 8-byte aligned word inside `bounds`, and every CFA
/// is strictly above the frame's stack pointer (the walk moves toward the stack's top and
/// ends); the walk stops at the first failed check, a zero return address, or an
/// [`End`](rules::Step::End) rule.
///
/// # Safety
/// - Every byte of `[bounds.lo, bounds.hi)` is readable for the duration of the call, and
///   `bounds.lo > 0`.
#[inline(always)]
pub(super) unsafe fn walk_rules_from(
    table: rules::Table,
    memo: &mut RuleMemo,
    frame: Frame,
    start: Records,
    out: &mut [MaybeUninit<usize>],
    bounds: StackBounds,
) -> RuleWalk {
    // SAFETY: this function's bullet is `walk_rules_traced`'.
    unsafe { walk_rules_traced(table, memo, frame, start, out, bounds, &mut Untraced) }
}

/// [`walk_rules_from`], reporting every stack word it reads to `trace`.
///
/// # Safety
/// - As [`walk_rules_from`].
#[inline(always)]
pub(super) unsafe fn walk_rules_traced(
    table: rules::Table,
    memo: &mut RuleMemo,
    mut frame: Frame,
    start: Records,
    out: &mut [MaybeUninit<usize>],
    bounds: StackBounds,
    trace: &mut impl Reads,
) -> RuleWalk {
    let mut h = start.hash;
    let mut n = start.len;
    let mut records = 0u64;
    let mut may_parse = true;
    while n < out.len() {
        let (rule, known) = match memo.lookup(table, frame.addr, frame.sp) {
            Some(rule) => (rule, true),
            None => {
                let rule = miss(frame.addr, frame.sp, &mut may_parse, memo);
                (rule, may_parse)
            }
        };
        // SAFETY: this function's bullet, passed on.
        let Some((cfa, ret, fp)) = (unsafe { step_traced(rule, frame, bounds, trace) }) else { break };
        if ret == 0 {
            break;
        }
        let by_record = known && (rule == Rule::FRAME_RECORD || rule == Rule::FRAME_POINTER);
        records |= (by_record as u64) << n;
        out[n].write(ret);
        h = mix(h, ret);
        n += 1;
        frame = Frame { addr: ret - 1, sp: cfa, fp };
    }
    RuleWalk { walk: Walk { len: n, hash: finish(h, n) }, records, guessed: !may_parse }
}

/// The rule of `addr` when the cache has none: from `cfi`, unless an earlier miss of this
/// walk could not take the miss lock (then every later miss of the walk takes the
/// frame-pointer record without waiting again).
#[cold]
#[inline(never)]
fn miss(addr: usize, sp: usize, may_parse: &mut bool, memo: &mut RuleMemo) -> Rule {
    if *may_parse {
        if let Some(rule) = cfi::rule_for(addr) {
            memo.remember(addr, sp, rule);
            return rule;
        }
        *may_parse = false;
    }
    Rule::FRAME_POINTER
}

/// What a traced walk learns of the stack words it reads: [`step_traced`] reports each
/// (address, value) it loaded. The hot walks pass [`Untraced`], which compiles to nothing.
pub(super) trait Reads {
    fn read(&mut self, addr: usize, value: usize);
}

/// No trace.
pub(super) struct Untraced;

impl Reads for Untraced {
    #[inline(always)]
    fn read(&mut self, _: usize, _: usize) {}
}

/// One step of the rule walk: the caller's stack pointer (the CFA), the return address
/// and the caller's `rbp`; `None` at the end of the walk or on a failed check.
///
/// # Safety
/// - As [`walk_rules_from`]: `[bounds.lo, bounds.hi)` is readable, `bounds.lo > 0`.
#[inline(always)]
pub(super) unsafe fn step(rule: Rule, frame: Frame, bounds: StackBounds) -> Option<(usize, usize, usize)> {
    // SAFETY: this function's bullet is `step_traced`'s.
    unsafe { step_traced(rule, frame, bounds, &mut Untraced) }
}

/// [`step`], reporting every stack word it reads to `trace`.
///
/// # Safety
/// - As [`step`].
#[inline(always)]
pub(super) unsafe fn step_traced(
    rule: Rule,
    frame: Frame,
    bounds: StackBounds,
    trace: &mut impl Reads,
) -> Option<(usize, usize, usize)> {
    if rule == Rule::FRAME_RECORD || rule == Rule::FRAME_POINTER {
        // SAFETY: `frame_record`'s bullet is this function's.
        return unsafe { frame_record(frame, bounds, trace) };
    }
    let (cfa, rbp_slot) = match rule.decode() {
        Step::Cfa { base: Base::Rsp, offset, rbp_slot } => (frame.sp.checked_add(offset as usize)?, rbp_slot),
        Step::Cfa { base: Base::Rbp, offset, rbp_slot } => (frame.fp.checked_add(offset as usize)?, rbp_slot),
        Step::FramePointer | Step::End => return None,
    };
    if cfa <= frame.sp {
        return None;
    }
    // SAFETY: `read`'s bullet is this function's.
    let ret = unsafe { read(cfa - 8, bounds, trace) }?;
    let fp = match rbp_slot {
        0 => frame.fp,
        // SAFETY: as just above.
        k => unsafe { read(cfa.checked_sub(8 * k as usize)?, bounds, trace) }?,
    };
    Some((cfa, ret, fp))
}

/// The step through the frame record at `rbp`: CFA `rbp + 16`, the caller's `rbp` and the
/// return address the two words at `rbp`. Checked as the frame-pointer walk checks.
///
/// # Safety
/// - As [`walk_rules_from`]: `[bounds.lo, bounds.hi)` is readable.
#[inline(always)]
unsafe fn frame_record(frame: Frame, bounds: StackBounds, trace: &mut impl Reads) -> Option<(usize, usize, usize)> {
    let fp = frame.fp;
    if fp < bounds.lo || fp > bounds.hi.checked_sub(16)? || !fp.is_multiple_of(8) || fp + 16 <= frame.sp {
        return None;
    }
    // SAFETY: `[fp, fp + 16)` lies in `[lo, hi)` (checked: `lo <= fp <= hi - 16`),
    // readable (caller); `fp` is 8-byte aligned (checked). Plain loads of stack words.
    let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
    trace.read(fp, next);
    trace.read(fp + 8, ret);
    Some((fp + 16, ret, next))
}

/// The word at `addr`, when it lies in `bounds` and is 8-byte aligned.
///
/// # Safety
/// - Every byte of `[bounds.lo, bounds.hi)` is readable for the duration of the call.
#[inline(always)]
unsafe fn read(addr: usize, bounds: StackBounds, trace: &mut impl Reads) -> Option<usize> {
    if addr < bounds.lo || addr > bounds.hi.checked_sub(8)? || !addr.is_multiple_of(8) {
        return None;
    }
    // SAFETY: `[addr, addr + 8)` lies in `[lo, hi)` (checked: `lo <= addr <= hi - 8`),
    // readable (caller); `addr` is 8-byte aligned (checked). A plain load of a stack
    // word, on this thread.
    let value = unsafe { *(addr as *const usize) };
    trace.read(addr, value);
    Some(value)
}

/// Unwinds with DWARF tables, filling `out` with return addresses starting at the caller
/// of the function whose frame holds address `marker` (see the module notes).
#[inline(never)]
pub(super) fn walk_dwarf(out: &mut [MaybeUninit<usize>], marker: usize) -> Walk {
    let mut h = SEED;
    let mut n = 0;
    let mut record = |frame: &backtrace::Frame| {
        if n == 0 && (frame.sp() as usize) <= marker {
            return true; // the marker's frame, this function and the unwinder's frames
        }
        let ip = frame.ip() as usize;
        if ip == 0 || n == out.len() {
            return false;
        }
        out[n].write(ip);
        h = mix(h, ip);
        n += 1;
        n < out.len()
    };
    // SAFETY: `trace_unsynchronized` is `trace` without the crate's global lock:
    // - That lock serializes traces on platforms whose unwinder is not thread-safe; on
    //   x86-64 Linux (the only target, `platform` refuses others) it is libgcc's
    //   `_Unwind_Backtrace`, which is, so concurrent traces on other threads are sound.
    // - `record` does not panic (it indexes `out` only below `out.len()`, checked first),
    //   so no unwind crosses the unwinder's frames, and it does not allocate.
    unsafe { backtrace::trace_unsynchronized(&mut record) };
    Walk { len: n, hash: finish(h, n) }
}

/// Whether the cached unwinder finds the same first three frames as the DWARF walk from
/// here (fewer when the stack is shorter).
#[inline(never)]
pub(super) fn rules_agree_with_dwarf(bounds: StackBounds) -> bool {
    let mut ours = [MaybeUninit::uninit(); 3];
    let mut dw = [MaybeUninit::uninit(); 3];
    let a = walk_rules(&mut ours, bounds, &mut RuleMemo::new(), 0).walk;
    let b = walk_dwarf(&mut dw, ours.as_ptr() as usize);
    if a.len != b.len || a.len == 0 {
        return false;
    }
    // SAFETY: each walker wrote `out[n]` before counting it into `len`: `ours[..a.len]`
    // and `dw[..b.len]` are initialized.
    (0..a.len).all(|i| unsafe { ours[i].assume_init() == dw[i].assume_init() })
}
