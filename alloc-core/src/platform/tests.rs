//! The platform rule, checked on the crate's own sources: no module outside `platform`
//! calls a `libc` function or writes `asm!`.

use std::path::{Path, PathBuf};

/// What only `platform` may write.
const FORBIDDEN: &[&str] = &["libc::", "asm!"];

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Whether `relative` (a path under `src/`, with `/` separators) is exempt from the rule.
fn exempt(relative: &str) -> bool {
    relative.starts_with("platform/")
}

/// The forbidden uses in `text`, as `(line number, line)`. Comment lines (`//`, `///`,
/// `//!`, where doc examples are user code and may call libc) do not count.
fn violations(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| FORBIDDEN.iter().any(|f| line.contains(f)))
        .map(|(i, line)| (i + 1, line.trim()))
        .collect()
}

#[test]
fn only_the_platform_calls_libc_or_asm() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found only {} source files under {}", files.len(), src.display());
    let mut found = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if exempt(&relative) {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        for (line, code) in violations(&text) {
            found.push(format!("src/{relative}:{line}: {code}"));
        }
    }
    assert!(
        found.is_empty(),
        "only the platform module may call libc or use asm! (add a function to src/platform/ and call it):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_rule_sees_code_but_not_comments() {
    let text = "//! `libc::mmap` in a doc\n/// libc::munmap(p, n);\nfn f() {\n    // asm! here is prose\n    unsafe { libc::getpid() };\n    core::arch::asm!(\"nop\");\n}\n";
    let lines: Vec<usize> = violations(text).iter().map(|&(n, _)| n).collect();
    assert_eq!(lines, [5, 6]);
    assert!(exempt("platform/linux.rs") && exempt("platform/x86_64.rs"));
    assert!(!exempt("os.rs") && !exempt("leak/stop.rs") && !exempt("heap/mod.rs") && !exempt("runtime/exit.rs"));
}

#[test]
fn an_errno_reads_as_words_and_number() {
    let text = super::Errno(libc::ENOENT).to_string();
    assert!(text.contains("No such file") && text.ends_with("(errno 2)"), "{text}");
    assert!(super::Errno(-12345).to_string().contains("-12345"));
}
