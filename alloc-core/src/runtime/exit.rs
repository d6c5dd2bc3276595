//! What runs when the process ends: the heap profile (with `profile=PATH`), then the leak
//! check, its report and the exit status.
//!
//! Registered with `atexit` during the allocator's one-time initialization (the first
//! allocation, before `main` in practice), so it runs after every exit handler registered
//! later, that is after nearly all of them: return from `main` and `std::process::exit`
//! both run it. `_exit` and death by signal do not.

use crate::platform;
use crate::thread_state::ReentrancyGuard;

/// Registers the at-exit hook.
pub(crate) fn register() {
    if let Err(e) = platform::atexit(at_exit) {
        warning!("cannot register the at-exit leak check ({}); no check will run at exit", e);
    }
}

extern "C" fn at_exit() {
    // A panic must not unwind into libc.
    // No leak sweep runs from here on (one running now ends first).
    super::sweep::shutdown();
    // The profile first: it shows the program's heap, before the check's own work.
    let _ = std::panic::catch_unwind(crate::profile::run_at_exit);
    let _ = std::panic::catch_unwind(leak_check_at_exit);
}

/// The at-exit leak check: report to stderr and to `report=PATH`, and set the exit status.
fn leak_check_at_exit() {
    let opts = crate::config::current();
    if !crate::config::check_at_exit() {
        return;
    }
    let _guard = ReentrancyGuard::enter();
    // The loaded objects are listed for the JSON report only.
    let report = crate::check::check_for_exit(opts.report.as_option().is_some());
    if let Some(path) = opts.report.as_option() {
        if let Err(e) = crate::report::json::write_report(path.as_bytes(), std::process::id(), &report) {
            warning!("{}", e);
        }
    }
    if report.is_clean() && !report.check_failed() {
        return;
    }
    let text = crate::report::text::render(&report, &crate::report::text_options(opts));
    // Flush what the program wrote to stdout first, so the report follows it.
    let _ = platform::flush_c_stdio();
    crate::fatal::write_all_fd(2, text.as_bytes());
    let status = exit_status(&report, opts);
    if status != 0 {
        // Rust's own stdout was flushed by the runtime before exit handlers run, C stdio
        // just above.
        platform::exit_now(status as i32);
    }
}

/// The exit status the at-exit check sets: `failure_exitcode` when the check could not
/// run to the end (whatever it found meanwhile), else `exitcode` when it found leaks not
/// in the baseline (`baseline=PATH`); 0 keeps the program's own.
fn exit_status(report: &crate::LeakReport, opts: &crate::config::Options) -> u32 {
    if report.check_failed() {
        opts.failure_exitcode
    } else if !report.has_new_leaks() {
        // No leak, or only the baseline's known ones.
        0
    } else {
        opts.exitcode
    }
}
