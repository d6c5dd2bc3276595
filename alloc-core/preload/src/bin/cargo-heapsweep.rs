//! `cargo heapsweep ARGS...`: runs `cargo ARGS...` with every binary cargo runs (test
//! binaries, `cargo run`'s program, benches) started through `heapsweep run`, cargo
//! itself and build scripts not. For example `cargo heapsweep test -p my-crate`.
//!
//! It sets `CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER` to `heapsweep run --lib LIB --`,
//! with `heapsweep` taken from this program's directory and the library found as
//! `heapsweep run` finds it.

// Shared with `heapsweep`, which uses all of it; this program only finds the library.
#[allow(dead_code)]
#[path = "../launch.rs"]
mod launch;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

/// The runner variable for the host target.
const RUNNER_VAR: &str = "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER";

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // Cargo calls `cargo-heapsweep heapsweep ARGS...`; run by hand, the word may be absent.
    if args.first().is_some_and(|a| a == "heapsweep") {
        args.remove(0);
    }
    if args.is_empty() || args[0] == "--help" || args[0] == "-h" {
        eprintln!("usage: cargo heapsweep CARGO-COMMAND [ARGS...]   e.g. cargo heapsweep test -p my-crate");
        return ExitCode::from(2);
    }
    match runner() {
        Ok(runner) => {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let err = Command::new(&cargo).args(&args).env(RUNNER_VAR, runner).exec();
            eprintln!("cargo-heapsweep: cannot run {}: {err}", cargo.to_string_lossy());
            ExitCode::from(127)
        }
        Err(e) => {
            eprintln!("cargo-heapsweep: {e}");
            ExitCode::from(127)
        }
    }
}

/// `heapsweep run --lib LIB --`, with absolute paths. Cargo splits the runner at spaces,
/// so a path holding one is refused with a message.
fn runner() -> Result<String, String> {
    let lib = launch::find_lib(None)?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the running executable: {e}"))?;
    let heapsweep = exe.with_file_name("heapsweep");
    if !heapsweep.is_file() {
        return Err(format!("cannot find heapsweep next to this program: {}", heapsweep.display()));
    }
    let runner = format!("{} run --lib {} --", heapsweep.display(), lib.display());
    if heapsweep.to_string_lossy().contains(' ') || lib.to_string_lossy().contains(' ') {
        return Err(format!("cargo splits a runner at spaces; these paths hold one: {runner}"));
    }
    Ok(runner)
}
