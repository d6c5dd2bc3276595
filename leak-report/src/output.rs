//! Writing results: to a file named with `-o`, or to stdout.
//!
//! # What it owns
//! [`write_file`], whose error names the path and the reason in one line (an unwritable
//! `-o` path is a clear error, never a panic).

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path`, replacing it.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes)
        .map_err(|e| format!("cannot write {}: {}", path.display(), crate::input::io_message(&e)))
}

/// Writes `bytes` to stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write to stdout: {}", crate::input::io_message(&e)))
        }
        _ => Ok(()),
    }
}
