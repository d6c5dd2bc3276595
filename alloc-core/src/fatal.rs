//! Messages to stderr that never allocate: warnings, and fatal errors that abort.
//!
//! # What it owns
//! [`StackWriter`], a `core::fmt::Write` into a fixed buffer on the stack, and the macro
//! `warning!` built on it. Everything below the reporting layer prints through
//! these: the allocator cannot use `eprintln!` (it may allocate, and it takes stderr's
//! lock, which a thread stopped by a leak check might hold).
//!
//! Lines are prefixed with `heapsweep: ` so that a user can tell them from the program's
//! own output. [`abort`] ends the process with `SIGABRT`: the allocator never unwinds.

use crate::platform::{self, Errno};
use core::fmt;

/// A formatter into a fixed buffer; text beyond its capacity is cut, never allocated.
pub(crate) struct StackWriter<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackWriter<N> {
    pub(crate) const fn new() -> Self {
        Self { buf: [0; N], len: 0 }
    }

    /// The bytes written so far.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Writes the buffer to file descriptor 2 with `write(2)`, retrying short writes.
    pub(crate) fn flush_to_stderr(&self) {
        write_all_fd(2, self.as_bytes());
    }
}

impl<const N: usize> fmt::Write for StackWriter<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes all of `bytes` to `fd`, retrying on `EINTR` and short writes; gives up silently
/// on any other error (there is nowhere left to report it).
pub(crate) fn write_all_fd(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match platform::write(fd, bytes) {
            Ok(n) if n > 0 => bytes = &bytes[n..],
            Err(Errno::INTERRUPTED) => continue,
            _ => return,
        }
    }
}

/// Prints one `heapsweep: warning: ...` line to stderr without allocating.
macro_rules! warning {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut w = $crate::fatal::StackWriter::<512>::new();
        let _ = w.write_str("heapsweep: warning: ");
        let _ = write!(w, $($arg)*);
        let _ = w.write_str("\n");
        w.flush_to_stderr();
    }};
}

/// Aborts the process with `SIGABRT`, without unwinding and without running destructors.
#[cold]
pub(crate) fn abort() -> ! {
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn stack_writer_truncates_instead_of_growing() {
        let mut w = StackWriter::<8>::new();
        write!(w, "{}-{}", 12345, 67890).unwrap();
        assert_eq!(w.as_bytes(), b"12345-67");
    }
}
