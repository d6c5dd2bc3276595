//! Helpers shared by the integration tests: fixture paths and golden-file comparison.
#![allow(dead_code)]

use leak_report::Input;
use std::path::{Path, PathBuf};

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

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leak-report-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
