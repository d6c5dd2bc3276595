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

#[test]
fn ranges_that_share_a_page_are_all_read_from_its_record() {
    let Ok(mut pages) = WrittenPages::open() else { return };
    let h = FakeHeap::new();
    let region = crate::os::map_aligned(2 * OS_PAGE, OS_PAGE).expect("two pages").as_ptr() as usize;
    // Two pieces of one object's data in one page (split round a static of the allocator's
    // own, say), and one in the next page.
    let piece = |s: usize, e: usize| RootRange { start: region + s, end: region + e, kind: RootKind::Globals };
    let roots = [piece(0x200, 0x300), piece(0, 0x100), piece(OS_PAGE + 0x40, OS_PAGE + 0x80)];
    let ranges = |out: &MmapVec<RootRange>| {
        let mut v: Vec<(usize, usize)> = out.iter().map(|r| (r.start - region, r.end - region)).collect();
        v.sort_unstable();
        v
    };
    let mut out = MmapVec::new();
    pages.young_roots(&h, &roots, 0, &mut out).unwrap();
    assert_eq!(ranges(&out), [(0, 0x100), (0x200, 0x300), (OS_PAGE + 0x40, OS_PAGE + 0x80)], "new: all whole");
    out.clear();
    pages.young_roots(&h, &roots, 0, &mut out).unwrap();
    assert_eq!(ranges(&out), [], "nothing written since");
    // SAFETY: inside the first page of the mapping made above, which nothing else uses.
    unsafe { ((region + 0x10) as *mut usize).write_volatile(1) };
    out.clear();
    pages.young_roots(&h, &roots, 0, &mut out).unwrap();
    assert_eq!(ranges(&out), [(0, 0x100), (0x200, 0x300)], "both pieces of the written page, not the clean one");
    // SAFETY: the whole mapping made above, unused from here on.
    unsafe { crate::os::unmap(region as *mut u8, 2 * OS_PAGE) };
}
