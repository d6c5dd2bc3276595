//! Stack walking: a validated frame-pointer walk, and the DWARF unwinder as fallback.
//!
//! # What it owns
//! The two walkers [`capture`](super::capture) chooses between, and the stack hash both
//! compute as they go ([`mix`], [`finish`]), so that the same frames hash the same
//! whichever walker found them.
//!
//! # The frame-pointer walk (x86-64 Linux)
//! With frame pointers, `rbp` points at a frame record: the caller's `rbp`, then the
//! return address. Each step is checked before it reads: the frame pointer must lie in
//! `[max(rsp, bounds.lo), bounds.hi - 16]` and be 8-byte aligned, the return address must
//! be non-zero, and the next frame pointer must be strictly above the current one (stacks
//! grow down, so the walk always moves toward the stack's top and ends). The walk stops at
//! the first failed check. Code built without frame pointers uses `rbp` as an ordinary
//! register: its value can shorten a stack or add a bogus frame, but never make the walk
//! read outside the live part of the thread's stack. About 1 ns a frame (see the figures
//! in [`super`]).
//!
//! # The DWARF walk
//! `backtrace::trace_unsynchronized` (libgcc's `_Unwind_Backtrace`): complete without
//! frame pointers, about 100 times slower. It reports the unwinder's own frames first. The
//! stack pointer it gives for a frame (libgcc's `_Unwind_GetCFA` there is the CFA of the
//! callee, that is the frame's own `rsp` at the call) lies at or below a marker, the
//! address of a local in `capture`'s frame, for `capture` and every frame it called; we
//! skip those. So both walkers start at the return address into `capture`'s caller,
//! whatever the unwinder's crate inlined.

use super::StackBounds;
use core::mem::MaybeUninit;

/// The frames a walker wrote (`out[..len]`) and their hash ([`finish`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Walk {
    pub(super) len: usize,
    pub(super) hash: u64,
}

const SEED: u64 = 0x243F_6A88_85A3_08D3;
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

/// Walks frame pointers from the frame of the function this is inlined into (`capture`),
/// filling `out` with return addresses: the first is the return address into that
/// function's caller.
///
/// A safe `fn` whose callers ensure that `bounds` are the calling thread's stack bounds
/// (from `current_thread_stack_bounds` on this thread) or unknown (`lo == hi`).
#[inline(always)]
pub(super) fn walk_frame_pointers(out: &mut [MaybeUninit<usize>], bounds: StackBounds) -> Walk {
    // Inlined too: the registers are those of the function this walk is inlined into.
    let (fp, sp) = crate::platform::frame_pointer_and_sp();
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
pub(super) unsafe fn walk_from(mut fp: usize, out: &mut [MaybeUninit<usize>], bounds: StackBounds) -> Walk {
    let last = bounds.hi.saturating_sub(16);
    let mut h = SEED;
    let mut n = 0;
    while n < out.len() {
        if fp < bounds.lo || fp > last || !fp.is_multiple_of(8) {
            break;
        }
        // SAFETY:
        // - `lo <= fp` and `fp <= hi - 16` (checked just above; `hi - 16` did not saturate,
        //   caller's bullet), so `[fp, fp + 16)` lies in `[lo, hi)`, readable (caller).
        // - `fp` is 8-byte aligned (checked), so both `usize` reads are aligned.
        // - Stack memory is only read, on this thread: a plain load of whatever word is
        //   there (a frame record, or with frames lacking frame pointers another stack
        //   word, which ends the walk or adds a bogus frame).
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret == 0 {
            break;
        }
        out[n].write(ret);
        h = mix(h, ret);
        n += 1;
        if next <= fp {
            break;
        }
        fp = next;
    }
    Walk { len: n, hash: finish(h, n) }
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

/// Whether the frame-pointer walk finds the same first two frames as the DWARF walk from
/// here: false when this crate was built without frame pointers (then `capture`'s walk
/// would start from a stale `rbp`).
#[inline(never)]
pub(super) fn frame_pointers_agree_with_dwarf(bounds: StackBounds) -> bool {
    let mut fp = [MaybeUninit::uninit(); 2];
    let mut dw = [MaybeUninit::uninit(); 2];
    let a = walk_frame_pointers(&mut fp, bounds);
    let b = walk_dwarf(&mut dw, fp.as_ptr() as usize);
    if a.len < 2 || b.len < 2 {
        return false;
    }
    // SAFETY: both `len`s are at least 2 (checked just above), and each walker wrote
    // `out[n]` before counting it into `len`: `fp[0..2]` and `dw[0..2]` are initialized.
    unsafe { fp[0].assume_init() == dw[0].assume_init() && fp[1].assume_init() == dw[1].assume_init() }
}
