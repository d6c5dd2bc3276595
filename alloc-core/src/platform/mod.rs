//! The platform layer: every system call, libc function and CPU instruction HeapSweep
//! uses, each behind one small function, as mimalloc's `prim.h`.
//!
//! # What it owns
//! The boundary between the allocator and the machine. **No other module of the crate
//! calls a `libc` function or writes `asm!`**: they call the functions here
//! (`tests::only_the_platform_calls_libc_or_asm` reads the crate's sources and fails on a
//! `libc::` or an `asm!` anywhere else).
//! Functions are safe where the operation is safe to call, and `unsafe fn`s with
//! `# Safety` preconditions where it is not (unmapping, discarding or moving memory,
//! installing a signal handler, fork handlers). Where the OS can fail they return
//! [`Errno`]. Nothing here allocates through the global allocator, prints or panics.
//!
//! - `linux` (`linux.rs`): what depends on the kernel and glibc.
//! - `x86_64` (`x86_64.rs`): what depends on the CPU and its Linux ABI.
//!
//! Everything is re-exported here: callers write `platform::munmap(...)`.
//!
//! # What it provides
//! - errors: [`Errno`]; the thread's `errno`: [`errno`], [`set_errno`];
//! - memory: [`mmap_anonymous`] (lazily [`Reserve`]d or committed), [`munmap`],
//!   [`madvise_dontneed`], [`madvise_populate_write`], [`mremap_maymove`], [`mremap_fixed`];
//! - descriptors and the environment: [`write()`] to a descriptor, [`isatty`], [`getenv`];
//! - processes and threads: [`gettid`], [`getpid`], [`tgkill`], [`futex_wait`],
//!   [`futex_wake_all`], [`sched_yield`], [`spawn_detached`] (a detached `pthread_create`),
//!   [`WriteTracker`] (the pages written since they were last protected: userfaultfd
//!   and `PAGEMAP_SCAN`, as [`PageRegion`]s), [`monotonic_ns`], `thread_cpu_ns` (tests),
//!   [`current_thread_stack`]
//!   (`pthread_getattr_np`);
//! - `/proc`: [`for_each_task`] (the thread lister, `/proc/self/task`),
//!   [`open_proc_self_maps`] (a [`ReadOnlyFd`] on `/proc/self/maps`; `leak::maps` parses
//!   it);
//! - signals: [`set_signal_handler`] (a [`SignalHandler`], what to block while it runs:
//!   [`BlockWhileHandling`]) and [`restore_signal_action`] (with the
//!   [`SavedSignalAction`]); [`SIGPWR`], [`SigInfo`], and [`SIGNAL_NAMES`], the names a
//!   user may give in an option; borrowing a signal (`linux/signal.rs`):
//!   [`STANDARD_SIGNALS`], [`rt_signal_min`], [`queue_marked_signal`] and
//!   [`marked_value`], forwarding to a saved action ([`Forward`], [`forward_to_handler`],
//!   [`resend_with_default_action`]), [`current_handler`], [`thread_has_pending`];
//! - the dynamic loader: [`for_each_loaded_object`] and [`find_loaded_object`] (each
//!   [`LoadedObject`]: name, load bias, [`ProgramHeader`]s, TLS block, load and unload
//!   counts; with [`PT_LOAD`], [`PT_TLS`], [`PT_NOTE`], [`PT_GNU_EH_FRAME`], [`PF_R`],
//!   [`PF_W`]) and [`dladdr_file_name`];
//! - process lifecycle: [`thread_exit_key_create`] and [`thread_exit_key_set`] (a
//!   destructor run at thread exit), [`atfork`], [`atexit`], [`flush_c_stdio`]
//!   (`fflush(NULL)`), [`exit_now`] (`_exit`);
//! - the CPU: [`spill_callee_saved`] (callee-saved registers and the stack pointer),
//!   [`thread_pointer`] (`fs:[0]`), [`frame_pointer_and_sp`] (for the frame-pointer walk),
//!   [`pc_sp_fp`] (where an unwind by `.eh_frame` rules starts, with the register numbers
//!   [`DWARF_RBP`], [`DWARF_RSP`], [`DWARF_RETURN_ADDRESS`]),
//!   [`signal_context_registers`] (the general registers of a signal's interrupted
//!   context), and the constants [`RED_ZONE`] (128), [`REGISTER_COUNT`] (23),
//!   [`SP_REGISTER`] and [`CALLEE_SAVED_REGISTERS`].
//!
//! # Targets
//! Only x86-64 Linux with glibc: any other target stops the build with one
//! `compile_error!` naming why. A port would add a file beside `linux.rs` and one beside
//! `x86_64.rs`, and select them here.

#[cfg(not(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")))]
compile_error!(
    "HeapSweep supports only x86-64 Linux with glibc: it stops threads with Linux signals, reads /proc, and reads registers with x86-64 instructions"
);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod linux;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86_64;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) use linux::*;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) use x86_64::*;

#[cfg(test)]
mod tests;
