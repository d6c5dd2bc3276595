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
#[inline(always)]
pub(super) fn walk_frame_pointers(out: &mut [MaybeUninit<usize>], bounds: StackBounds) -> Walk {
    // Inlined too: the registers are those of the function this walk is inlined into.
    let (fp, sp) = crate::platform::frame_pointer_and_sp();
    let live = StackBounds { lo: bounds.lo.max(sp), hi: bounds.hi };
    // SAFETY: `[sp, bounds.hi)` is the live part of this thread's stack: mapped and
    // readable (bounds come from `current_thread_stack_bounds` of this thread; a thread
    // on another stack, a signal stack say, has its `rbp` outside them and walks nothing).
    unsafe { walk_from(fp, out, live) }
}

/// The validated walk of a frame-record chain starting at `fp` (see the module notes).
///
/// # Safety
/// - Every byte of `[bounds.lo, bounds.hi)` is readable for the duration of the call.
#[inline(always)]
pub(super) unsafe fn walk_from(mut fp: usize, out: &mut [MaybeUninit<usize>], bounds: StackBounds) -> Walk {
    let last = bounds.hi.saturating_sub(16);
    let mut h = SEED;
    let mut n = 0;
    while n < out.len() {
        if fp < bounds.lo || fp > last || !fp.is_multiple_of(8) {
            break;
        }
        // SAFETY: fp is aligned and lo <= fp <= hi - 16: both words lie in the readable
        // range (the caller's contract).
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
    // SAFETY: `trace_unsynchronized` requires that no other unsynchronized trace runs at
    // the same time on platforms whose unwinder is not thread-safe; on Linux it is
    // libgcc's `_Unwind_Backtrace`, which is. The callback never unwinds or allocates.
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
    // SAFETY: both walks wrote their first `len` (here 2) entries.
    unsafe { fp[0].assume_init() == dw[0].assume_init() && fp[1].assume_init() == dw[1].assume_init() }
}
