//! Which parts of a written range are a young sweep's roots.

use super::*;
use crate::leak::fake::FakeHeap;

#[test]
fn only_the_scanned_bytes_of_old_blocks_inside_the_range_are_roots() {
    let mut h = FakeHeap::new();
    let ids: Vec<u32> = (0..3).map(|_| h.add(4)).collect();
    h.generation[ids[0] as usize].set(2);
    h.generation[ids[2] as usize].set(1);
    // One range from the middle of the lowest block to past the end of the highest.
    let lo = ids.iter().map(|&i| h.addr(i)).min().unwrap();
    let hi = ids.iter().map(|&i| h.addr(i)).max().unwrap();
    let (a, b) = (lo + 8, hi + 64);
    let mut out = MmapVec::new();
    assert!(old_parts(&h, a, b, 0, &mut out));
    let got: Vec<(usize, usize)> = out.iter().map(|r| (r.start, r.end)).collect();
    let mut want: Vec<(usize, usize)> =
        [ids[0], ids[2]].iter().map(|&id| (h.addr(id).max(a), h.addr(id) + 32)).collect();
    want.sort_unstable();
    assert_eq!(got, want, "the young block, the bytes outside blocks and before the range are left out");
    out.clear();
    assert!(old_parts(&h, h.addr(ids[2]), h.addr(ids[2]) + 32, 1, &mut out));
    assert_eq!(out.len(), 0, "a sweep of generation 1 takes generation 1 as young");
}

#[test]
fn the_kernel_record_opens_here_or_says_why_not() {
    match WrittenPages::open() {
        Ok(mut p) => {
            assert!(!p.is_registered(0x10000, 0x11000));
            p.invalidate();
            assert_eq!(p.registered.len(), 0);
        }
        Err(e) => assert_ne!(e.0, 0),
    }
}
