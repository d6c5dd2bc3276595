//! The at-exit hook: the heap profile (with `profile=PATH`) and a leak check when the
//! process ends.
//!
//! Registered with `atexit` during the allocator's one-time initialization (the first
//! allocation, before `main` in practice), so it runs after every exit handler registered
//! later, that is after nearly all of them: return from `main` and `std::process::exit`
//! both run it. `_exit` and death by signal do not.

/// Registers the at-exit check.
pub(crate) fn register() {
    // SAFETY: `at_exit` is a plain `extern "C" fn()` that never unwinds.
    unsafe { libc::atexit(at_exit) };
}

extern "C" fn at_exit() {
    // A panic must not unwind into libc.
    // The profile first: it shows the program's heap, before the check's own work.
    let _ = std::panic::catch_unwind(crate::profile::run_at_exit);
    let _ = std::panic::catch_unwind(crate::check::run_at_exit);
}
