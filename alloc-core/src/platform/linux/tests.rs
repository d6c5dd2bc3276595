//! Tests of the Linux wrappers, against the running process.

use super::*;
use std::io::Read;
use std::os::fd::AsRawFd;

const PAGE: usize = 4096;

#[test]
fn anonymous_memory_is_zeroed_discarded_and_unmapped() {
    for reserve in [Reserve::Lazily, Reserve::Committed] {
        let p = mmap_anonymous(2 * PAGE, reserve).unwrap().as_ptr();
        assert_eq!(p as usize % PAGE, 0);
        // SAFETY: `p` maps two writable pages, ours alone.
        unsafe {
            assert_eq!(*p.add(PAGE), 0);
            p.add(PAGE).write(7);
            madvise_dontneed(p.add(PAGE), PAGE).unwrap();
            assert_eq!(*p.add(PAGE), 0, "discarded pages read as zero");
            munmap(p, 2 * PAGE).unwrap();
        }
    }
    assert_eq!(mmap_anonymous(0, Reserve::Lazily), Err(Errno(libc::EINVAL)));
}

#[test]
fn remapping_keeps_contents_and_can_target_an_address() {
    let p = mmap_anonymous(PAGE, Reserve::Lazily).unwrap().as_ptr();
    // SAFETY: `p` maps one page; after each move only the new address is used.
    unsafe {
        p.write(42);
        let q = mremap_maymove(p, PAGE, 64 * PAGE).unwrap().as_ptr();
        assert_eq!(*q, 42);
        q.add(63 * PAGE).write(1);
        let target = mmap_anonymous(128 * PAGE, Reserve::Lazily).unwrap().as_ptr();
        let r = mremap_fixed(q, 64 * PAGE, 128 * PAGE, target).unwrap().as_ptr();
        assert_eq!(r, target);
        assert_eq!((*r, *r.add(63 * PAGE), *r.add(127 * PAGE)), (42, 1, 0));
        munmap(r, 128 * PAGE).unwrap();
    }
}

#[test]
fn writes_reach_a_pipe_and_bad_descriptors_fail() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    assert_eq!(write(writer.as_raw_fd(), b"hello"), Ok(5));
    drop(writer);
    let mut got = String::new();
    reader.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello");
    assert_eq!(write(-1, b"x"), Err(Errno(libc::EBADF)));
}
