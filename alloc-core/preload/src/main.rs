//! `heapsweep`: runs a program under HeapSweep without changing it.
//!
//! ```text
//! heapsweep run [--lib PATH] [--] PROGRAM [ARGS...]
//! heapsweep lib-path [--lib PATH]
//! ```
//!
//! `run` replaces itself with PROGRAM (`exec`), with `libheapsweep_preload.so` in
//! `LD_PRELOAD` for it alone: the program's allocations are tracked, checked when it
//! exits and reported as under `#[global_allocator]` (the same `HEAPSWEEP` keys, the same
//! exit status rule). Programs it starts in turn inherit the variable and are checked
//! too. As a cargo runner, every test binary runs this way and cargo itself does not:
//!
//! ```sh
//! CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="heapsweep run --" cargo test
//! ```

mod launch;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: heapsweep run [--lib PATH] [--] PROGRAM [ARGS...]
       heapsweep lib-path [--lib PATH]

run       runs PROGRAM with libheapsweep_preload.so in LD_PRELOAD (for it alone): its
          leaks are checked at exit and reported as under #[global_allocator]
          (configure with HEAPSWEEP=..., e.g. HEAPSWEEP=report=leaks-%p.json)
lib-path  prints the path of the preload library that `run` would use

--lib PATH  the preload library (else $HEAPSWEEP_PRELOAD_LIB, else next to this program)

As a cargo runner (test binaries run under it, cargo itself does not):
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=\"heapsweep run --\" cargo test
";

/// Exit status for a usage error or a program that could not be started (as `env`).
const CANNOT_RUN: u8 = 127;

/// The command line, parsed.
#[derive(Debug, PartialEq)]
enum Cli {
    Run { lib: Option<PathBuf>, program: OsString, args: Vec<OsString> },
    LibPath { lib: Option<PathBuf> },
    Help,
}

fn parse(mut args: impl Iterator<Item = OsString>) -> Result<Cli, String> {
    let cmd = args.next().ok_or("no command given")?;
    let mut lib = None;
    let mut rest = Vec::new();
    let mut dashdash = false;
    while let Some(a) = args.next() {
        if dashdash || !rest.is_empty() {
            rest.push(a);
        } else if a == "--" {
            dashdash = true;
        } else if a == "--lib" {
            lib = Some(PathBuf::from(args.next().ok_or("--lib needs a path")?));
        } else if a == "-h" || a == "--help" {
            return Ok(Cli::Help);
        } else if a.to_string_lossy().starts_with('-') {
            return Err(format!("unknown option {}", a.to_string_lossy()));
        } else {
            rest.push(a);
        }
    }
    match cmd.to_str() {
        Some("run") => {
            let mut rest = rest.into_iter();
            let program = rest.next().ok_or("run needs a program")?;
            Ok(Cli::Run { lib, program, args: rest.collect() })
        }
        Some("lib-path") if rest.is_empty() => Ok(Cli::LibPath { lib }),
        Some("-h" | "--help" | "help") => Ok(Cli::Help),
        _ => Err(format!("unknown command {}", cmd.to_string_lossy())),
    }
}

fn main() -> ExitCode {
    let cli = match parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprint!("heapsweep: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match cli {
        Cli::Help => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Cli::LibPath { lib } => match launch::find_lib(lib.as_deref()) {
            Ok(p) => {
                println!("{}", p.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Cli::Run { lib, program, args } => match launch::find_lib(lib.as_deref()) {
            Ok(lib) => fail(&launch::exec_under(&lib, &program, &args)),
            Err(e) => fail(&e),
        },
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("heapsweep: {msg}");
    ExitCode::from(CANNOT_RUN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> impl Iterator<Item = OsString> {
        a.iter().map(OsString::from).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn run_takes_everything_after_the_program_as_its_arguments() {
        let want = Cli::Run { lib: None, program: "prog".into(), args: vec!["--lib".into(), "-x".into()] };
        assert_eq!(parse(args(&["run", "--", "prog", "--lib", "-x"])), Ok(want));
        let want = Cli::Run { lib: Some("l.so".into()), program: "p".into(), args: vec!["a".into()] };
        assert_eq!(parse(args(&["run", "--lib", "l.so", "p", "a"])), Ok(want));
    }

    #[test]
    fn bad_command_lines_are_errors() {
        assert!(parse(args(&["run"])).is_err());
        assert!(parse(args(&["run", "--bogus", "p"])).is_err());
        assert!(parse(args(&["frobnicate"])).is_err());
        assert!(parse(args(&["run", "--lib"])).is_err());
        assert_eq!(parse(args(&["--help"])), Ok(Cli::Help));
    }

    #[test]
    fn ld_preload_keeps_what_was_there() {
        let lib = std::path::Path::new("/x/libheapsweep_preload.so");
        assert_eq!(launch::ld_preload_value(lib, None), "/x/libheapsweep_preload.so");
        assert_eq!(launch::ld_preload_value(lib, Some("".as_ref())), "/x/libheapsweep_preload.so");
        assert_eq!(launch::ld_preload_value(lib, Some("/y.so".as_ref())), "/x/libheapsweep_preload.so:/y.so");
    }
}
