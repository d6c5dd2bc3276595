//! Stack walking: a validated frame-pointer walk, and the DWARF unwinder as fallback.
//!
//! # The frame-pointer walk
//! With frame pointers, `rbp` points at a saved `rbp` with the return address above it.
//! Each step is checked: the next frame pointer must be above the current one (stacks grow
//! down), below the thread's stack top, inside the stack, and 8-byte aligned, and the
//! return address non-zero. The walk stops at the first failed check, so code without
//! frame pointers (whose `rbp` holds arbitrary data) can shorten a stack but never make
//! the walk read outside the thread's stack.

use super::StackBounds;

/// Mixes one return address into a running hash (64-bit multiply-xorshift).
#[inline(always)]
fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

/// Walks frame pointers from the caller of `capture` upward, filling `out`. Returns the
/// number of frames and their hash.
#[inline(always)]
#[cfg(target_arch = "x86_64")]
pub(super) fn walk_frame_pointers(out: &mut [usize], bounds: StackBounds) -> (usize, u64) {
    let mut fp: usize;
    // SAFETY: reading a register has no side effects.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags)) };
    let mut n = 0;
    let mut hash = out.len() as u64;
    // `rbp` is `capture`'s frame (this function is inlined into it): its return address
    // is the first frame recorded, inside `capture`'s caller.
    while n < out.len() {
        if fp < bounds.lo || fp > bounds.hi.saturating_sub(16) || !fp.is_multiple_of(8) {
            break;
        }
        // SAFETY: fp lies in [lo, hi - 16] and is aligned: both words are in the stack.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret == 0 {
            break;
        }
        out[n] = ret;
        hash = mix(hash, ret as u64);
        n += 1;
        if next <= fp {
            break;
        }
        fp = next;
    }
    (n, hash)
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn walk_frame_pointers(_out: &mut [usize], _bounds: StackBounds) -> (usize, u64) {
    (0, 0)
}

/// Unwinds with the DWARF unwinder (`backtrace::trace_unsynchronized`): complete without
/// frame pointers, about 100 times slower. Skips the frames of the stack module itself.
#[inline(never)]
pub(super) fn walk_dwarf(out: &mut [usize]) -> (usize, u64) {
    let mut n = 0;
    let mut hash = out.len() as u64;
    let mut skip = 2; // walk_dwarf, capture
                      // SAFETY: trace_unsynchronized must not run concurrently with another unsynchronized
                      // trace on platforms whose unwinder is not thread-safe; on Linux the unwinder
                      // (libgcc's _Unwind_Backtrace) is thread-safe. Our callback never unwinds.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            if skip > 0 {
                skip -= 1;
                return true;
            }
            let ip = frame.ip() as usize;
            if ip == 0 || n >= out.len() {
                return false;
            }
            out[n] = ip;
            hash = mix(hash, ip as u64);
            n += 1;
            true
        })
    };
    (n, hash)
}
