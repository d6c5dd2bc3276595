//! x86-64: everything that depends on the CPU and its Linux ABI.
//!
//! # What it owns
//! Reading the thread pointer, and the layout of a signal's interrupted context
//! (`ucontext_t`'s general registers). A register read is one `mov` instruction in an
//! `#[inline(always)]` function, so it reads the registers of the function it is inlined
//! into, exactly as the `asm!` written there did.
//!
//! # ABI facts used elsewhere
//! - [`REGISTER_COUNT`]: the general registers of a `ucontext_t` (`NGREG`), saved for each
//!   stopped thread, in `gregset_t` order; [`SP_REGISTER`] is the stack pointer's index.

use core::ffi::c_void;

/// General registers in a signal's interrupted context (`NGREG` of `gregset_t`).
pub(crate) const REGISTER_COUNT: usize = 23;

/// Index of the stack pointer (`REG_RSP`) among the [`REGISTER_COUNT`] registers.
pub(crate) const SP_REGISTER: usize = libc::REG_RSP as usize;

const _: () = assert!(SP_REGISTER < REGISTER_COUNT);

/// The calling thread's thread pointer (the `fs` base: glibc's thread control block,
/// with the static TLS right below it). glibc's `tcbhead_t` starts with a pointer to
/// itself, so `fs:[0]` is the `fs` base. Async-signal-safe.
#[inline(always)]
pub(crate) fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: on x86-64 Linux with glibc, `fs` always points at the thread's TCB, whose
    // first word is readable.
    unsafe { core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags)) };
    tp
}

/// The general registers of a signal's interrupted context, in `gregset_t` order
/// ([`SP_REGISTER`] is the stack pointer). Async-signal-safe.
///
/// # Safety
/// - `ctx` is the third argument of an `SA_SIGINFO` handler (a `ucontext_t`), and the
///   handler has not returned yet.
#[inline]
pub(crate) unsafe fn signal_context_registers(ctx: *mut c_void) -> [usize; REGISTER_COUNT] {
    // SAFETY: per the caller, `ctx` is the interrupted context, a valid ucontext_t for the
    // duration of the handler.
    let gregs = unsafe { &(*ctx.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
    gregs.map(|r| r as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_register_count_matches_the_context_layout() {
        // SAFETY: ucontext_t is plain old data; all-zero is a valid value.
        let ctx: libc::ucontext_t = unsafe { core::mem::zeroed() };
        assert_eq!(ctx.uc_mcontext.gregs.len(), REGISTER_COUNT);
    }

    #[test]
    fn the_thread_pointer_differs_between_threads_and_points_at_itself() {
        let here = thread_pointer();
        let there = std::thread::spawn(thread_pointer).join().unwrap();
        assert_ne!(here, there);
        // SAFETY: the TCB's first word is a pointer to itself (see `thread_pointer`).
        assert_eq!(unsafe { *(here as *const usize) }, here);
    }
}
