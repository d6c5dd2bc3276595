//! `/proc/self/maps`, read without allocating: the process's mappings, for the roots phase.
//!
//! # What it owns
//! [`Mapping`] (one line of the file), [`read_maps`] (the whole file into an `MmapVec`),
//! [`mapping_containing`] (the one mapping that holds an address: a thread's stack at
//! its start under the preload library), and the line splitter under it, which reads through a fixed stack buffer and copes with
//! lines split across `read` calls (the kernel fills each read with whole lines today,
//! but nothing promises it).
//!
//! # Who calls it
//! `roots`, with every other thread stopped: no std I/O, no `Vec`, only `open`/`read`
//! (`platform::open_proc_self_maps`). The caller reserves room in the output before
//! reading: growing an `MmapVec` maps new memory, which would change the very list being
//! read.

use super::failure::Failure;
use crate::os::MmapVec;
use crate::platform::{self, Errno, QueriedMapping};

/// What backs a mapping, from the path column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MapKind {
    /// No path, or `[anon:NAME]`: anonymous memory (thread stacks, other allocators' heaps).
    Anon,
    /// A file (the data segments of loaded objects, file mappings, memfds).
    File,
    /// `[stack]`: the main thread's stack.
    Stack,
    /// `[heap]`: the program break, where libc's malloc keeps its main arena.
    Heap,
    /// A pseudo-mapping of the kernel (`[vvar]`, `[vdso]`, `[vsyscall]`, `[uprobes]`):
    /// never scanned, some of it cannot even be read.
    Special,
}

/// One mapping: `start-end perms offset dev inode path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// `s` in the permissions: shared with other processes or files, not private.
    pub(crate) shared: bool,
    pub(crate) kind: MapKind,
}

/// Reads every mapping into `out` (cleared first). Fails when the file cannot be opened
/// or read, or memory for the list runs out (what was read stays in `out`).
pub(crate) fn read_maps(out: &mut MmapVec<Mapping>) -> Result<(), Failure> {
    out.clear();
    #[cfg(test)]
    if let Some(errno) = tests::injected_failure() {
        return Err(Failure::RootsUnreadable { errno });
    }
    let mut file = platform::open_proc_self_maps().map_err(|e| Failure::RootsUnreadable { errno: e.0 })?;
    let mut ok = true;
    let mut lines = LineSplitter::<8192>::new();
    let read = lines.run(
        |dst| file.read(dst),
        |line| {
            if let Some(m) = parse_line(line) {
                ok &= out.push(m);
            }
        },
    );
    read.map_err(|e| Failure::RootsUnreadable { errno: e.0 })?;
    if ok {
        Ok(())
    } else {
        Err(Failure::OutOfMemory { what: "the mapping list" })
    }
}

/// Most mappings [`mapping_containing`] reads from the file (a process with more gets no
/// answer: a mapping line takes 40 bytes here, and untouched room costs nothing).
const MAX_MAPPINGS: usize = 1 << 16;

/// The mapping that holds `addr` (its range and permissions), without allocating: asked
/// of the kernel (`PROCMAP_QUERY`, one system call), or where the kernel cannot answer,
/// found in the whole file. `None` when no mapping holds it or neither way works.
pub(crate) fn mapping_containing(addr: usize) -> Option<QueriedMapping> {
    if let Ok(answer) = platform::query_mapping(addr) {
        return answer;
    }
    let mut list = MmapVec::default();
    if !list.reserve(MAX_MAPPINGS) || read_maps(&mut list).is_err() {
        return None;
    }
    list.iter().find(|m| m.start <= addr && addr < m.end).map(Mapping::range_and_permissions)
}

impl Mapping {
    /// What [`platform::query_mapping`] tells of a mapping.
    fn range_and_permissions(&self) -> QueriedMapping {
        QueriedMapping { start: self.start, end: self.end, readable: self.readable, writable: self.writable }
    }
}

/// Splits a byte stream into `\n`-terminated lines through a buffer of `N` bytes.
/// A line longer than the buffer is skipped whole (no mapping line is: a path is at most
/// `PATH_MAX`, 4096 bytes, and the kernel escapes newlines in paths as `\012`).
struct LineSplitter<const N: usize> {
    buf: [u8; N],
    /// Bytes `buf[..have]` hold the start of a line not finished yet.
    have: usize,
    /// The current line overflowed the buffer: drop bytes up to the next newline.
    skipping: bool,
}

impl<const N: usize> LineSplitter<N> {
    fn new() -> Self {
        Self { buf: [0; N], have: 0, skipping: false }
    }

    /// Calls `read` until it returns 0 (end) or an error (which it returns), and
    /// `on_line` for each complete line, without its newline. A last line without a
    /// newline is passed too.
    fn run(
        &mut self,
        mut read: impl FnMut(&mut [u8]) -> Result<usize, Errno>,
        mut on_line: impl FnMut(&[u8]),
    ) -> Result<(), Errno> {
        loop {
            match read(&mut self.buf[self.have..]) {
                Ok(n) if n > 0 => self.take(self.have + n, &mut on_line),
                end => {
                    if self.have > 0 && !self.skipping {
                        on_line(&self.buf[..self.have]);
                    }
                    return end.map(|_| ());
                }
            }
        }
    }

    /// Hands out the complete lines of `buf[..filled]` and keeps the unfinished tail.
    fn take(&mut self, filled: usize, on_line: &mut impl FnMut(&[u8])) {
        let mut consumed = 0;
        while let Some(nl) = self.buf[consumed..filled].iter().position(|&c| c == b'\n') {
            if !self.skipping {
                on_line(&self.buf[consumed..consumed + nl]);
            }
            self.skipping = false;
            consumed += nl + 1;
        }
        self.buf.copy_within(consumed..filled, 0);
        self.have = filled - consumed;
        if self.have == N {
            self.skipping = true;
            self.have = 0;
        }
    }
}

fn hex(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0usize, |acc, &c| Some(acc * 16 + (c as char).to_digit(16)? as usize))
}

fn kind_of(path: &[u8], inode: &[u8]) -> MapKind {
    match path {
        b"[stack]" => MapKind::Stack,
        b"[heap]" => MapKind::Heap,
        b"[vvar]" | b"[vdso]" | b"[vsyscall]" | b"[vvar_vclock]" | b"[uprobes]" => MapKind::Special,
        // Old kernels named thread stacks `[stack:TID]`: anonymous memory like any other.
        _ if path.is_empty() || path.starts_with(b"[") => MapKind::Anon,
        _ if inode == b"0" && !path.starts_with(b"/") => MapKind::Anon,
        _ => MapKind::File,
    }
}

/// Parses `start-end perms offset dev inode [path]`. The path may hold spaces.
pub(crate) fn parse_line(line: &[u8]) -> Option<Mapping> {
    let mut rest = line;
    let mut field = || {
        let start = rest.iter().position(|&c| c != b' ')?;
        let len = rest[start..].iter().position(|&c| c == b' ').unwrap_or(rest.len() - start);
        let f = &rest[start..start + len];
        rest = &rest[start + len..];
        Some(f)
    };
    let (range, perms, _offset, _dev, inode) = (field()?, field()?, field()?, field()?, field()?);
    let path = trim_start(rest);
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
        shared: perms[3] == b's',
        kind: kind_of(path, inode),
    })
}

fn trim_start(s: &[u8]) -> &[u8] {
    &s[s.iter().position(|&c| c != b' ').unwrap_or(s.len())..]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static INJECTED: Cell<Option<i32>> = const { Cell::new(None) };
    }

    /// Makes this thread's reads of the mapping list fail with `errno` while the returned
    /// guard lives: the roots phase's failure, on demand, for tests of the phases above.
    pub(crate) fn fail_reads_with(errno: i32) -> impl Drop {
        struct Restore;
        impl Drop for Restore {
            fn drop(&mut self) {
                INJECTED.with(|c| c.set(None));
            }
        }
        INJECTED.with(|c| c.set(Some(errno)));
        Restore
    }

    /// The failure injected on this thread, if any.
    pub(super) fn injected_failure() -> Option<i32> {
        INJECTED.with(|c| c.get())
    }

    #[test]
    fn an_injected_failure_is_an_unreadable_root_list_until_the_guard_goes() {
        let mut v = MmapVec::new();
        assert!(v.reserve(1 << 12));
        {
            let _fail = fail_reads_with(13);
            assert_eq!(read_maps(&mut v), Err(Failure::RootsUnreadable { errno: 13 }));
        }
        assert_eq!(read_maps(&mut v), Ok(()));
    }

    #[test]
    fn parses_the_usual_kinds_of_line() {
        let m = parse_line(b"7f00aa000000-7f00aa021000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!((m.start, m.end), (0x7f00_aa00_0000, 0x7f00_aa02_1000));
        assert!(m.readable && m.writable && !m.shared);
        assert_eq!(m.kind, MapKind::Anon);
        let f = parse_line(b"55d0c0000000-55d0c0001000 rw-p 00002000 fd:01 1234   /usr/bin/my prog").unwrap();
        assert_eq!(f.kind, MapKind::File);
        let v = parse_line(b"7ffd1000-7ffd3000 r--p 00000000 00:00 0                          [vvar]").unwrap();
        assert!(v.kind == MapKind::Special && !v.writable);
        let s = parse_line(b"7ffd0000-7ffd1000 rw-p 00000000 00:00 0                          [stack]").unwrap();
        assert_eq!(s.kind, MapKind::Stack);
        let h = parse_line(b"5000-6000 rw-p 00000000 00:00 0      [heap]").unwrap();
        assert_eq!(h.kind, MapKind::Heap);
        let n = parse_line(b"5000-6000 rw-p 00000000 00:00 0      [anon:my arena]").unwrap();
        assert_eq!(n.kind, MapKind::Anon);
        let sh = parse_line(b"5000-6000 rw-s 00000000 00:01 77     /memfd:ring (deleted)").unwrap();
        assert!(sh.shared && sh.kind == MapKind::File);
        assert!(parse_line(b"garbage").is_none());
        assert!(parse_line(b"6000-5000 rw-p 0 0 0").is_none());
        assert!(parse_line(b"").is_none());
    }

    /// Feeds `text` to a splitter of `N` bytes in chunks of `chunk` bytes.
    fn split<const N: usize>(text: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut pos = 0;
        let end = LineSplitter::<N>::new().run(
            |dst| {
                let n = dst.len().min(chunk).min(text.len() - pos);
                dst[..n].copy_from_slice(&text[pos..pos + n]);
                pos += n;
                Ok(n)
            },
            |l| lines.push(l.to_vec()),
        );
        assert_eq!(end, Ok(()));
        lines
    }

    #[test]
    fn a_read_error_ends_the_split_and_is_returned() {
        let mut calls = 0;
        let mut lines = Vec::new();
        let end = LineSplitter::<64>::new().run(
            |dst| {
                calls += 1;
                if calls > 1 {
                    return Err(Errno(5));
                }
                dst[..7].copy_from_slice(b"a\nb-cut");
                Ok(7)
            },
            |l| lines.push(l.to_vec()),
        );
        assert_eq!(end, Err(Errno(5)));
        assert_eq!(lines, vec![b"a".to_vec(), b"b-cut".to_vec()], "the partial line is still passed");
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let text = b"first line\nsecond\n\nthird one without newline";
        let want: Vec<Vec<u8>> =
            vec![b"first line".to_vec(), b"second".to_vec(), vec![], b"third one without newline".to_vec()];
        for chunk in 1..text.len() + 1 {
            assert_eq!(split::<64>(text, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_skipped_whole() {
        let text = b"short\nthis line is much too long for the buffer\nafter\n";
        for chunk in 1..8 {
            assert_eq!(split::<16>(text, chunk), vec![b"short".to_vec(), b"after".to_vec()], "chunk {chunk}");
        }
    }

    #[test]
    fn reads_this_process_maps_including_the_stack() {
        let mut v = MmapVec::new();
        assert!(v.reserve(4096));
        assert_eq!(read_maps(&mut v), Ok(()));
        let local = 0u64;
        let sp = &local as *const u64 as usize;
        assert!(v.iter().any(|m| m.start <= sp && sp < m.end && m.writable && m.readable));
        assert!(v.windows(2).all(|w| w[0].end <= w[1].start), "sorted, disjoint");
        let code = reads_this_process_maps_including_the_stack as *const () as usize;
        assert!(v.iter().any(|m| m.start <= code && code < m.end && m.kind == MapKind::File));
    }

    #[test]
    fn the_kernels_answer_for_an_address_is_the_files_mapping() {
        let mut v = MmapVec::new();
        assert!(v.reserve(4096));
        let local = 0u64;
        static DATA: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);
        let heap = Box::new(7u64);
        let probes = [
            &local as *const u64 as usize,
            &DATA as *const _ as usize,
            &*heap as *const u64 as usize,
            the_kernels_answer_for_an_address_is_the_files_mapping as *const () as usize,
            0x1000,
        ];
        for addr in probes {
            let asked = match crate::platform::query_mapping(addr) {
                Ok(m) => m,
                // A kernel before 6.11 has no such request: the caller reads the file.
                Err(e) => return assert_eq!(e, crate::platform::Errno::NO_SUCH_REQUEST, "{addr:#x}"),
            };
            assert_eq!(read_maps(&mut v), Ok(()));
            let read = v.iter().find(|m| m.start <= addr && addr < m.end).map(Mapping::range_and_permissions);
            assert_eq!(asked, read, "{addr:#x}");
            assert_eq!(mapping_containing(addr), read, "{addr:#x}");
        }
        assert!(crate::platform::query_mapping(0x1000).unwrap().is_none());
        assert!(crate::platform::query_mapping(&local as *const u64 as usize).unwrap().is_some_and(|m| m.writable));
    }
}
