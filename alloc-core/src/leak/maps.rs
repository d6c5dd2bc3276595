//! `/proc/self/maps`, read without allocating: the process's mappings, for the roots phase.

use crate::os::MmapVec;

/// One mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    pub(crate) private: bool,
    /// A pseudo-file the kernel provides (`[vvar]`, `[vdso]`, `[vsyscall]`): never scanned.
    pub(crate) special: bool,
    /// Backed by a file (the data segments of loaded objects).
    pub(crate) file: bool,
}

/// Reads every mapping into `out` (cleared first). Returns false if the file could not
/// be read or memory ran out.
pub(crate) fn read_maps(out: &mut MmapVec<Mapping>) -> bool {
    out.clear();
    // SAFETY: open/read/close with a NUL-terminated path and a stack buffer.
    let fd = unsafe { libc::open(c"/proc/self/maps".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    let mut buf = [0u8; 8192];
    let mut have = 0usize;
    let mut ok = true;
    loop {
        // SAFETY: reading into the free tail of our buffer.
        let n = unsafe { libc::read(fd, buf[have..].as_mut_ptr().cast(), buf.len() - have) };
        if n <= 0 {
            break;
        }
        have += n as usize;
        let mut consumed = 0;
        while let Some(nl) = buf[consumed..have].iter().position(|&c| c == b'\n') {
            if let Some(m) = parse_line(&buf[consumed..consumed + nl]) {
                ok &= out.push(m);
            }
            consumed += nl + 1;
        }
        buf.copy_within(consumed..have, 0);
        have -= consumed;
        if have == buf.len() {
            // A line longer than the buffer (a very long path): drop it.
            have = 0;
        }
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    ok
}

fn hex(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0usize, |acc, &c| Some(acc * 16 + (c as char).to_digit(16)? as usize))
}

/// Parses `start-end perms offset dev inode [path]`.
pub(crate) fn parse_line(line: &[u8]) -> Option<Mapping> {
    let mut fields = line.split(|&c| c == b' ').filter(|f| !f.is_empty());
    let range = fields.next()?;
    let perms = fields.next()?;
    let _offset = fields.next()?;
    let _dev = fields.next()?;
    let inode = fields.next()?;
    let path = fields.next().unwrap_or(b"");
    let dash = range.iter().position(|&c| c == b'-')?;
    let (start, end) = (hex(&range[..dash])?, hex(&range[dash + 1..])?);
    if perms.len() < 4 || end <= start {
        return None;
    }
    Some(Mapping {
        start,
        end,
        readable: perms[0] == b'r',
        writable: perms[1] == b'w',
        private: perms[3] == b'p',
        special: matches!(path, b"[vvar]" | b"[vdso]" | b"[vsyscall]" | b"[vvar_vclock]"),
        file: inode != b"0",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_kinds_of_line() {
        let m = parse_line(b"7f00aa000000-7f00aa021000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!((m.start, m.end), (0x7f00_aa00_0000, 0x7f00_aa02_1000));
        assert!(m.readable && m.writable && m.private && !m.file && !m.special);
        let f = parse_line(b"55d0c0000000-55d0c0001000 rw-p 00002000 fd:01 1234   /usr/bin/x").unwrap();
        assert!(f.file);
        let v = parse_line(b"7ffd1000-7ffd3000 r--p 00000000 00:00 0                          [vvar]").unwrap();
        assert!(v.special && !v.writable);
        assert!(parse_line(b"garbage").is_none());
        assert!(parse_line(b"").is_none());
    }

    #[test]
    fn reads_this_process_maps_including_the_stack() {
        let mut v = MmapVec::new();
        assert!(read_maps(&mut v));
        let local = 0u64;
        let sp = &local as *const u64 as usize;
        assert!(v.iter().any(|m| m.start <= sp && sp < m.end && m.writable));
    }
}
