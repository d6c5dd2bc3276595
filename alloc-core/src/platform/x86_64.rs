//! x86-64: everything that depends on the CPU and its Linux ABI.
//!
//! # What it owns
//! The crate's only `asm!`: spilling the callee-saved registers and reading the stack
//! pointer, the thread pointer, the frame pointer; running a function on another part of
//! the stack ([`call_on_stack`]); and the layout of a signal's interrupted context
//! (`ucontext_t`'s general registers). Each register read is one or
//! two `mov` instructions in an `#[inline(always)]` function, so it reads the registers of
//! the function it is inlined into, exactly as the `asm!` written there did.
//!
//! # ABI facts used elsewhere
//! - [`RED_ZONE`]: the 128 bytes below the stack pointer that a leaf function may use
//!   without moving it; a stopped thread's stack is scanned from `sp - RED_ZONE`.
//! - [`REGISTER_COUNT`]: the general registers of a `ucontext_t` (`NGREG`), saved for each
//!   stopped thread, in `gregset_t` order; [`SP_REGISTER`] is the stack pointer's index.
//! - Frame records: with frame pointers, `rbp` points at the caller's `rbp` followed by
//!   the return address (`stack::unwind` walks them).
//! - [`DWARF_RBP`], [`DWARF_RSP`], [`DWARF_RETURN_ADDRESS`]: the register numbers unwind
//!   rules use (`stack::cfi` reads them).

use core::ffi::c_void;

/// Bytes below the stack pointer that the System V ABI lets a function use without
/// moving it: they can hold the only copy of a pointer.
pub(crate) const RED_ZONE: usize = 128;

/// General registers in a signal's interrupted context (`NGREG` of `gregset_t`).
pub(crate) const REGISTER_COUNT: usize = 23;

/// Index of the stack pointer (`REG_RSP`) among the [`REGISTER_COUNT`] registers.
pub(crate) const SP_REGISTER: usize = libc::REG_RSP as usize;

const _: () = assert!(SP_REGISTER < REGISTER_COUNT);

/// Callee-saved registers besides the stack pointer: `rbx`, `rbp`, `r12` to `r15`.
pub(crate) const CALLEE_SAVED_REGISTERS: usize = 6;

/// Stores the callee-saved registers into `spill` and returns the stack pointer, both as
/// they are in the function this is inlined into. Inlined there, always: a call would
/// return the callee's stack pointer.
#[inline(always)]
pub(crate) fn spill_callee_saved(spill: &mut [usize; CALLEE_SAVED_REGISTERS]) -> usize {
    let sp: usize;
    // SAFETY: stores six registers into the six words of `spill` (writable, exclusively
    // borrowed) and reads rsp; no other effect.
    unsafe {
        core::arch::asm!(
            "mov [{a}], rbx", "mov [{a} + 8], rbp", "mov [{a} + 16], r12",
            "mov [{a} + 24], r13", "mov [{a} + 32], r14", "mov [{a} + 40], r15",
            "mov {sp}, rsp",
            a = in(reg) spill.as_mut_ptr(), sp = out(reg) sp, options(nostack, preserves_flags)
        )
    };
    sp
}

/// The two words of a frame record (the next record's address, the return address), as
/// a replay keeps them: 16-byte aligned, so that [`records_hold`]'s compare takes them
/// straight from memory (SSE2's `pxor` with a memory operand needs the alignment: four
/// loads fewer for four records).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RecordWords(pub(crate) [usize; 2]);

/// Whether 16-byte records still hold what was read from them, in groups of four: the
/// record at `addrs[g][i]` holds `kept[g][i]`, for every `g` and `i`. Every record is
/// loaded and compared, a group a step, with no early exit: no load waits for another,
/// and the differences are or-ed into one SSE2 register tested once at the end (a compare
/// and a branch on every record took twice the instructions). SSE2 is part of x86-64: no
/// feature to detect.
///
/// # Safety
/// - `addrs` and `kept` have the same length (groups past the shorter are not compared).
/// - Each `addrs[g][i]` is 8-byte aligned and its 16 bytes are readable for the duration
///   of the call.
#[inline(always)]
pub(crate) unsafe fn records_hold(addrs: &[[usize; 4]], kept: &[[RecordWords; 4]]) -> bool {
    use core::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_load_si128, _mm_loadu_si128, _mm_movemask_epi8};
    use core::arch::x86_64::{_mm_or_si128, _mm_setzero_si128, _mm_xor_si128};
    debug_assert_eq!(addrs.len(), kept.len());
    // SAFETY: SSE2, the only feature these intrinsics need, is part of x86-64 itself
    // (this module compiles for no other target).
    let mut diff = unsafe { _mm_setzero_si128() };
    for (at, want) in addrs.iter().zip(kept) {
        for i in 0..4 {
            // SAFETY: SSE2 as above. `at[i]` is a record's address, readable for 16 bytes
            // (caller), loaded unaligned (`loadu`: a record is 8-byte aligned); `want[i]`
            // is a `RecordWords` of `kept`, a live slice, 16-byte aligned (its type's
            // alignment): an aligned load, which the compiler folds into the `pxor`.
            unsafe {
                let found = _mm_loadu_si128(at[i] as *const __m128i);
                let want = _mm_load_si128(want[i].0.as_ptr().cast::<__m128i>());
                diff = _mm_or_si128(diff, _mm_xor_si128(found, want));
            }
        }
    }
    // SAFETY: SSE2 as above.
    unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(diff, _mm_setzero_si128())) == 0xffff }
}

/// Whether the process runs under Valgrind: its `RUNNING_ON_VALGRIND` client request
/// (valgrind.h's magic sequence for amd64). Run natively, the sequence rotates `rdi` by
/// 128 bits in all and exchanges `rbx` with itself, which changes nothing, so `rdx` keeps
/// the default answer, 0; Valgrind recognizes the sequence and answers the request with
/// the number of Valgrinds the process runs under.
pub(crate) fn under_valgrind() -> bool {
    /// `VG_USERREQ__RUNNING_ON_VALGRIND`.
    const RUNNING_ON_VALGRIND: u64 = 0x1001;
    let request: [u64; 6] = [RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0];
    let answer: u64;
    // SAFETY: natively the instructions leave every register but the flags as they were
    // (`rdi` is declared clobbered all the same, and the flags are not preserved); under
    // Valgrind they read the six words of `request`, which live across the block, and
    // write `rdx` alone.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") request.as_ptr(),
            inout("rdx") 0u64 => answer,
            inout("rdi") 0u64 => _,
            options(nostack, readonly),
        );
    }
    answer != 0
}

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

/// The frame pointer (`rbp`) and the stack pointer (`rsp`) of the function this is
/// inlined into: where a frame-pointer walk starts, and the lowest live stack address.
/// Inlined always (the allocation path's stack capture reads them: no call, no frame).
#[inline(always)]
pub(crate) fn frame_pointer_and_sp() -> (usize, usize) {
    let (fp, sp): (usize, usize);
    // SAFETY: reads two registers; no memory access, no side effects.
    unsafe {
        core::arch::asm!("mov {}, rbp", "mov {}, rsp", out(reg) fp, out(reg) sp,
            options(nomem, nostack, preserves_flags))
    };
    (fp, sp)
}

/// The address of the instruction after this read, the stack pointer (`rsp`) and the
/// frame pointer (`rbp`) of the function this is inlined into: where an unwind by the
/// rules of `.eh_frame` starts (the rules of that address describe that frame). Inlined
/// always, for the same reason as [`frame_pointer_and_sp`].
#[inline(always)]
pub(crate) fn pc_sp_fp() -> (usize, usize, usize) {
    let (pc, sp, fp): (usize, usize, usize);
    // SAFETY: computes an address (`lea`, no memory access) and reads two registers; no
    // side effects.
    unsafe {
        core::arch::asm!("lea {}, [rip]", "mov {}, rsp", "mov {}, rbp", out(reg) pc, out(reg) sp, out(reg) fp,
            options(nomem, nostack, preserves_flags))
    };
    (pc, sp, fp)
}

/// DWARF register numbers of the x86-64 psABI (its figure "DWARF Register Number
/// Mapping"), as `.eh_frame` rules name them: `rbp`, `rsp`, and the return address
/// column.
pub(crate) const DWARF_RBP: u16 = 6;
pub(crate) const DWARF_RSP: u16 = 7;
pub(crate) const DWARF_RETURN_ADDRESS: u16 = 16;

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

/// Asks the CPU to start loading the cache line at `addr` (any address: a prefetch never
/// faults). The mark prefetches the blocks it is about to scan, which sit scattered over
/// the heap: without it each block's first line costs a full trip to memory.
#[inline(always)]
pub(crate) fn prefetch(addr: usize) {
    // SAFETY: `prefetcht0` reads nothing architecturally and cannot fault, whatever the
    // address; SSE is part of the x86-64 baseline.
    unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8) };
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
    fn the_stack_pointer_is_near_a_local_and_below_it() {
        let local = 0u64;
        let at = core::hint::black_box(&local) as *const u64 as usize;
        let mut spill = [0usize; CALLEE_SAVED_REGISTERS];
        let sp = spill_callee_saved(&mut spill);
        let (fp, sp2) = frame_pointer_and_sp();
        assert!(sp <= at && at - sp < 1 << 16, "sp {sp:#x}, local {at:#x}");
        assert!(sp2 <= at && at - sp2 < 1 << 16, "sp {sp2:#x}, local {at:#x}");
        // Built with frame pointers: rbp holds this frame's record, above sp.
        assert!(fp >= sp && fp - sp < 1 << 16, "fp {fp:#x}, sp {sp:#x}");
        assert_eq!(spill[1], fp, "rbp was spilled");
    }

    #[test]
    fn the_valgrind_request_answers_no_natively_and_changes_nothing() {
        // The test binary is not run under Valgrind (CI and `cargo test` run it natively);
        // whoever does run it so would see this fail, and should.
        if std::env::var_os("HEAPSWEEP_TESTS_UNDER_VALGRIND").is_some() {
            assert!(under_valgrind());
            return;
        }
        let values = (core::hint::black_box(0x1234u64), core::hint::black_box(usize::MAX));
        assert!(!under_valgrind());
        assert!(!under_valgrind(), "asked twice");
        assert_eq!(values, (0x1234, usize::MAX));
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

// `heapsweep_call_on_stack(arg, new_top, f)`: saves `rbp`, sets the stack pointer to
// `new_top`, calls `f(arg, sp)` with `sp` the stack pointer it left (the lowest address of
// the caller's live frames, where the saved `rbp` is), and returns on the old stack. The
// frame is described to unwinders through `rbp`, so a backtrace taken in `f` walks back
// into the caller.
core::arch::global_asm!(
    ".pushsection .text.heapsweep_call_on_stack,\"ax\",@progbits",
    ".globl heapsweep_call_on_stack",
    ".hidden heapsweep_call_on_stack",
    ".type heapsweep_call_on_stack,@function",
    "heapsweep_call_on_stack:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "mov rax, rsi",
    "mov rsi, rsp",
    "mov rsp, rax",
    "call rdx",
    "mov rsp, rbp",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    "ret",
    ".cfi_endproc",
    ".size heapsweep_call_on_stack, .-heapsweep_call_on_stack",
    ".popsection",
);

extern "C" {
    fn heapsweep_call_on_stack(arg: usize, new_top: usize, f: extern "C" fn(usize, usize));
}

/// Runs `f(arg, sp)` with the stack pointer at `new_top`, then returns here; `sp` is the
/// lowest address of the caller's live frames (everything below it on the caller's stack
/// is dead while `f` runs).
///
/// # Safety
/// - `new_top` is 16-byte aligned, and the memory below it is writable stack space that
///   nothing else uses while `f` runs, enough for `f` and everything it calls (signal
///   handlers included).
/// - `f` does not unwind (a panic must be caught inside it).
pub(crate) unsafe fn call_on_stack(arg: usize, new_top: usize, f: extern "C" fn(usize, usize)) {
    debug_assert!(new_top.is_multiple_of(16));
    // SAFETY: the caller's two bullets are the trampoline's whole contract: it saves and
    // restores `rbp` and `rsp` (callee-saved), keeps `new_top`'s 16-byte alignment at the
    // call, and follows the C calling convention otherwise.
    unsafe { heapsweep_call_on_stack(arg, new_top, f) }
}
