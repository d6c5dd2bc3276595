//! Helpers shared by the integration tests: the command, fixture paths, golden-file
//! comparison, and
//! [`scratch`], the one way a test of this crate gets a directory of its own.
#![allow(dead_code)]

use assert_cmd::Command;
use leak_report::Input;
use std::path::{Path, PathBuf};

/// The `leak-report` binary, with `NO_COLOR` unset (colours still only on a terminal).
pub fn cmd() -> Command {
    let mut c = Command::cargo_bin("leak-report").unwrap();
    c.env_remove("NO_COLOR");
    c
}

/// A path as a command-line argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `tests/fixtures/NAME`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Reads `tests/fixtures/NAME` (a report or profile).
pub fn input(name: &str) -> Input {
    leak_report::read_input(&fixture(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// Compares `actual` with `tests/golden/NAME`; with `UPDATE_GOLDEN=1` rewrites it instead.
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    if expected != actual {
        let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).map_or(
            format!("lengths differ ({} vs {} lines)", expected.lines().count(), actual.lines().count()),
            |i| {
                format!(
                    "first difference at line {}:\n  golden: {}\n  actual: {}",
                    i + 1,
                    expected.lines().nth(i).unwrap_or(""),
                    actual.lines().nth(i).unwrap_or("")
                )
            },
        );
        panic!(
            "{} differs from the output; {line}\n(UPDATE_GOLDEN=1 rewrites it after a deliberate change)",
            path.display()
        );
    }
}

/// A fresh scratch directory for one test, emptied if an earlier run left it behind. `test`
/// tells apart the tests of one binary; the process id, concurrent runs.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leak-report-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
