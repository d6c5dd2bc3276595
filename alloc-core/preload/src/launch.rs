//! Finding the preload library and running a program under it; shared by `heapsweep`
//! and `cargo-heapsweep`.
//!
//! # Where the library is
//! In order: the `--lib PATH` flag, the `HEAPSWEEP_PRELOAD_LIB` environment variable,
//! then `libheapsweep_preload.so` next to the running executable (where an install puts
//! both, and where `cargo build` does), in its `deps/` directory (where cargo leaves the
//! library when it builds it only for another target, as `cargo test` does) or in its
//! parent directory (an executable of `target/*/deps`). Of those, the newest file wins:
//! in a cargo target directory an older copy may be left next to the executable.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The library's file name.
pub const LIB_NAME: &str = "libheapsweep_preload.so";

/// The environment variable naming the library.
pub const LIB_ENV: &str = "HEAPSWEEP_PRELOAD_LIB";

/// Finds the library: `flag`, else [`LIB_ENV`], else next to the executable. The error
/// says where it looked.
pub fn find_lib(flag: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = flag {
        return existing(p.to_path_buf(), "--lib");
    }
    if let Some(p) = std::env::var_os(LIB_ENV).filter(|v| !v.is_empty()) {
        return existing(PathBuf::from(p), LIB_ENV);
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the running executable: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let candidates = [dir.join(LIB_NAME), dir.join("deps").join(LIB_NAME), dir.parent().unwrap_or(dir).join(LIB_NAME)];
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let newest = candidates.iter().filter(|p| p.is_file()).max_by_key(|p| modified(p));
    newest.map(|p| absolute(p)).ok_or_else(|| {
        format!(
            "cannot find {LIB_NAME} (looked in {}, {} and {}); build it with \
             `cargo build --release -p heapsweep-preload`, or name it with --lib PATH or {LIB_ENV}",
            candidates[0].display(),
            candidates[1].display(),
            candidates[2].display()
        )
    })
}

fn existing(p: PathBuf, from: &str) -> Result<PathBuf, String> {
    if p.is_file() {
        Ok(absolute(&p))
    } else {
        Err(format!("the preload library given by {from} does not exist: {}", p.display()))
    }
}

/// `p` made absolute (the program may change directory before it execs another).
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `LD_PRELOAD` for the program: the library first, then what was there already.
pub fn ld_preload_value(lib: &Path, existing: Option<&OsStr>) -> OsString {
    let mut v = lib.as_os_str().to_os_string();
    if let Some(old) = existing.filter(|o| !o.is_empty()) {
        v.push(":");
        v.push(old);
    }
    v
}

/// Replaces this process with `program args` under the library: `LD_PRELOAD` is set in
/// the program's environment only, stdio and the process id stay, and the program's exit
/// status (or the signal that ends it) is the caller's. Returns only on failure.
pub fn exec_under(lib: &Path, program: &OsStr, args: &[OsString]) -> String {
    let value = ld_preload_value(lib, std::env::var_os("LD_PRELOAD").as_deref());
    let err = Command::new(program).args(args).env("LD_PRELOAD", value).exec();
    format!("cannot run {}: {err}", Path::new(program).display())
}
