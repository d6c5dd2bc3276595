//! Huge pages: a heap of pages past 256 MiB gets its new page segments advised for
//! transparent huge pages (`MADV_HUGEPAGE`), a smaller one never, however many large
//! blocks (each in a segment of its own) it has beside (see the segment module's notes).
//!
//! What the kernel was told is read back from `/proc/self/smaps` (`VmFlags`: `hg` for
//! `MADV_HUGEPAGE`). A kernel without transparent huge pages refuses the advice; the test
//! then checks only that nothing was advised.

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

mod common;

use common::smaps::vm_flags_of;

/// Whether this kernel gives transparent huge pages to ranges that ask (`always` or
/// `madvise` mode).
fn huge_pages_available() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|mode| mode.contains("[always]") || mode.contains("[madvise]"))
}

#[test]
fn a_heap_past_256_mib_has_its_new_segments_advised_for_huge_pages() {
    let advised = |addr| vm_flags_of(addr).iter().any(|f| f == "hg");
    // Large blocks, each in a segment of its own, do not count: 80 of them (8 MiB in
    // all), then 16 MiB of pages, none advised.
    let large: Vec<Vec<u8>> = (0..80).map(|i| vec![i as u8; 100 << 10]).collect();
    let pages: Vec<Vec<u8>> = (0..(16 << 20) / 65536).map(|i| vec![i as u8; 65536]).collect();
    assert!(!advised(pages.last().unwrap().as_ptr() as usize), "80 large blocks made huge pages");
    drop((large, pages));
    // 64 KiB blocks (medium: pages of 8 slices, seven to a segment), 320 MiB of them, all
    // live: the pool passes its 64th segment about four fifths of the way.
    let blocks: Vec<Vec<u8>> = (0..(320 << 20) / 65536).map(|i| vec![i as u8; 65536]).collect();
    let first = blocks.first().unwrap().as_ptr() as usize;
    let last = blocks.last().unwrap().as_ptr() as usize;
    assert!(!advised(first), "the heap's first segments stay on small pages");
    if huge_pages_available() {
        assert!(advised(last), "a segment mapped past 256 MiB of heap is advised: {:?}", vm_flags_of(last));
    } else {
        assert!(!advised(last));
    }
    // The blocks still hold what was written (the advice changes no byte).
    for (i, b) in blocks.iter().enumerate().step_by(97) {
        assert!(b.iter().all(|&x| x == i as u8));
    }
}
