//! [`FixedPath`]: a path option held inline, and [`Lossy`], bytes shown as text; both
//! without allocating, as [`parse`](super::parse) must be.

use core::ffi::CStr;
use core::fmt::{self, Write as _};

/// A path held inline (options are parsed without allocating): up to
/// [`FixedPath::CAPACITY`] bytes, always followed by a NUL byte. Empty means "not set".
#[derive(Clone, Copy)]
pub struct FixedPath {
    len: u16,
    /// Invariant: `bytes[len] == 0` (and every byte past `len` is 0).
    bytes: [u8; FixedPath::CAPACITY + 1],
}

impl FixedPath {
    /// Longest path held (`PATH_MAX` less its NUL).
    pub const CAPACITY: usize = 4095;

    /// The empty path: "not set".
    pub const fn empty() -> Self {
        Self { len: 0, bytes: [0; Self::CAPACITY + 1] }
    }

    /// A path from bytes, or `None` if longer than [`FixedPath::CAPACITY`].
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() > Self::CAPACITY {
            return None;
        }
        let mut p = Self::empty();
        p.bytes[..b.len()].copy_from_slice(b);
        p.len = b.len() as u16;
        Some(p)
    }

    /// The path's bytes (without the NUL).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Whether no path is set.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `Some(self)` when set.
    pub fn as_option(&self) -> Option<&FixedPath> {
        (!self.is_empty()).then_some(self)
    }

    /// The path as a C string for `open(2)` and friends, without copying; `None` if the
    /// path holds a NUL byte.
    pub fn as_c_str(&self) -> Option<&CStr> {
        let c = CStr::from_bytes_until_nul(&self.bytes[..=self.len as usize]).ok()?;
        (c.to_bytes().len() == self.len as usize).then_some(c)
    }

    /// The path as a [`std::path::Path`] (any bytes: Unix paths need not be UTF-8).
    pub fn as_path(&self) -> &std::path::Path {
        use std::os::unix::ffi::OsStrExt;
        std::path::Path::new(std::ffi::OsStr::from_bytes(self.as_bytes()))
    }

    /// Displays the path, invalid UTF-8 shown as U+FFFD, without allocating.
    pub fn display(&self) -> impl fmt::Display + '_ {
        Lossy { bytes: self.as_bytes(), max_chars: usize::MAX, escape: false }
    }

    /// The path as a `String`, invalid UTF-8 replaced by U+FFFD. Allocates: for the report
    /// layer, never the allocation path.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }

    /// The path with every `%p` replaced by `pid` (cut at [`FixedPath::CAPACITY`]); other
    /// `%` signs stay as they are.
    ///
    /// ```
    /// use alloc_core::config::FixedPath;
    /// let p = FixedPath::from_bytes(b"/tmp/leaks-%p.json").unwrap();
    /// assert_eq!(p.expand(1234).as_bytes(), b"/tmp/leaks-1234.json");
    /// ```
    pub fn expand(&self, pid: u32) -> FixedPath {
        let mut out = FixedPath::empty();
        let mut n = 0;
        let mut push = |s: &[u8]| {
            let k = s.len().min(Self::CAPACITY - n);
            out.bytes[n..n + k].copy_from_slice(&s[..k]);
            n += k;
        };
        let mut digits = [0u8; 10];
        let mut k = digits.len();
        let mut v = pid;
        loop {
            k -= 1;
            digits[k] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let mut rest = self.as_bytes();
        while let Some(at) = rest.windows(2).position(|w| w == b"%p") {
            push(&rest[..at]);
            push(&digits[k..]);
            rest = &rest[at + 2..];
        }
        push(rest);
        out.len = n as u16;
        out
    }
}

impl PartialEq for FixedPath {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for FixedPath {}

impl Default for FixedPath {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for FixedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", Lossy { bytes: self.as_bytes(), max_chars: usize::MAX, escape: true })
    }
}

/// Bytes shown as text without allocating: invalid UTF-8 as U+FFFD, at most `max_chars`
/// characters (then `...`), control characters, quotes and backslashes escaped when
/// `escape` (so that a warning stays one line whatever the input holds).
pub(super) struct Lossy<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) max_chars: usize,
    pub(super) escape: bool,
}

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = 0;
        for chunk in self.bytes.utf8_chunks() {
            let bad = (!chunk.invalid().is_empty()).then_some(char::REPLACEMENT_CHARACTER);
            for c in chunk.valid().chars().chain(bad) {
                if shown == self.max_chars {
                    return f.write_str("...");
                }
                shown += 1;
                if self.escape && (c.is_control() || c == '\'' || c == '"' || c == '\\') {
                    write!(f, "{}", c.escape_default())?;
                } else {
                    f.write_char(c)?;
                }
            }
        }
        Ok(())
    }
}
