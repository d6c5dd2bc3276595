//! Allocation basics under HeapSweep: every size class, alignments up to 1 GiB,
//! zero-size layouts, zeroed memory, realloc in place and by moving, out of memory.

use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn fill(p: *mut u8, len: usize, seed: u8) {
    for i in 0..len {
        // SAFETY: p points to at least len writable bytes (callers).
        unsafe { p.add(i).write(seed.wrapping_add(i as u8)) };
    }
}

fn check(p: *const u8, len: usize, seed: u8) {
    for i in 0..len {
        // SAFETY: p points to at least len readable bytes (callers).
        let byte = unsafe { p.add(i).read() };
        assert_eq!(byte, seed.wrapping_add(i as u8), "byte {i}");
    }
}

#[test]
fn every_size_up_to_medium_and_beyond_is_usable_and_distinct() {
    let sizes: Vec<usize> = (1..=2048).chain((2049..=200_000).step_by(997)).collect();
    let mut blocks = Vec::new();
    for (n, &size) in sizes.iter().enumerate() {
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { GLOBAL.alloc(layout) };
        assert!(!p.is_null());
        assert_eq!(p as usize % 8, 0);
        fill(p, size, n as u8);
        blocks.push((p, layout, n as u8));
    }
    for &(p, layout, seed) in &blocks {
        check(p, layout.size(), seed);
        assert!(alloc_core::usable_size(p).unwrap() >= layout.size());
    }
    for (p, layout, _) in blocks {
        // SAFETY: allocated above with this layout.
        unsafe { GLOBAL.dealloc(p, layout) };
    }
}

#[test]
fn alignments_from_8_bytes_to_1_gib_are_met() {
    let mut align = 8usize;
    while align <= 1 << 30 {
        for size in [1usize, 24, align, 3 * align / 2 + 1, 100_000] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-zero size.
            let p = unsafe { GLOBAL.alloc(layout) };
            assert!(!p.is_null(), "size {size} align {align}");
            assert_eq!(p as usize % align, 0, "size {size} align {align}");
            fill(p, size.min(4096), 3);
            check(p, size.min(4096), 3);
            // SAFETY: allocated above with this layout.
            unsafe { GLOBAL.dealloc(p, layout) };
        }
        align *= 2;
    }
}

#[test]
fn zero_size_layouts_get_distinct_usable_blocks() {
    let layout = Layout::from_size_align(0, 1).unwrap();
    // SAFETY: GlobalAlloc forbids zero sizes to callers, but HeapSweep serves them anyway
    // with a real (minimal) block, which this test relies on.
    let (a, b) = unsafe { (GLOBAL.alloc(layout), GLOBAL.alloc(layout)) };
    assert!(!a.is_null() && !b.is_null() && a != b);
    // SAFETY: as above.
    unsafe {
        GLOBAL.dealloc(a, layout);
        GLOBAL.dealloc(b, layout);
    }
}

#[test]
fn zeroed_blocks_are_zero_even_when_reused() {
    for size in [8usize, 100, 5000, 70_000, 3 << 20] {
        let layout = Layout::from_size_align(size, 16).unwrap();
        for round in 0..3 {
            // SAFETY: non-zero size.
            let p = unsafe { GLOBAL.alloc_zeroed(layout) };
            assert!(!p.is_null());
            // SAFETY: p holds size bytes.
            let bytes = unsafe { std::slice::from_raw_parts(p, size) };
            assert!(bytes.iter().all(|&b| b == 0), "size {size} round {round}");
            fill(p, size, 0xAB);
            // SAFETY: allocated above.
            unsafe { GLOBAL.dealloc(p, layout) };
        }
    }
}

#[test]
fn realloc_keeps_contents_through_every_regime() {
    let mut size = 1usize;
    let layout = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: non-zero size.
    let mut p = unsafe { GLOBAL.alloc(layout) };
    fill(p, size, 7);
    let mut align_layout = layout;
    // Grow through small, medium, large and huge blocks (mremap), then shrink back.
    let steps: Vec<usize> = (0..26).map(|i| 1usize << i).chain((0..26).rev().map(|i| (1usize << i) + 3)).collect();
    for new_size in steps {
        // SAFETY: p is live with align_layout; new_size is non-zero.
        p = unsafe { GLOBAL.realloc(p, align_layout, new_size) };
        assert!(!p.is_null());
        check(p, size.min(new_size), 7);
        fill(p, new_size, 7);
        size = new_size;
        align_layout = Layout::from_size_align(size, 8).unwrap();
        assert_eq!(alloc_core::block_info(p).unwrap().requested_size, size);
    }
    // SAFETY: live block with this layout.
    unsafe { GLOBAL.dealloc(p, align_layout) };
}

#[test]
fn realloc_in_place_when_the_block_has_room() {
    let layout = Layout::from_size_align(100, 8).unwrap();
    // SAFETY: non-zero size.
    let p = unsafe { GLOBAL.alloc(layout) };
    // 100 bytes are served from the 104-byte class: growing to 104 stays in place.
    // SAFETY: live block with this layout.
    let q = unsafe { GLOBAL.realloc(p, layout, 104) };
    assert_eq!(p, q);
    let big = Layout::from_size_align(1 << 20, 8).unwrap();
    // SAFETY: non-zero size.
    let b = unsafe { GLOBAL.alloc(big) };
    // A 1 MiB block sits in a 4 MiB segment: it grows in place to nearly 4 MiB.
    // SAFETY: live block with this layout.
    let c = unsafe { GLOBAL.realloc(b, big, 3 << 20) };
    assert_eq!(b, c);
    // SAFETY: live blocks with these layouts.
    unsafe {
        GLOBAL.dealloc(q, Layout::from_size_align(104, 8).unwrap());
        GLOBAL.dealloc(c, Layout::from_size_align(3 << 20, 8).unwrap());
    }
}

#[test]
fn out_of_memory_returns_null() {
    for size in [1usize << 46, (isize::MAX as usize) - 4096, 1 << 47] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: non-zero size; we only check for null.
        let p = unsafe { GLOBAL.alloc(layout) };
        assert!(p.is_null(), "size {size:#x} returned {p:?}");
    }
    // A huge request through std's fallible API reports an error instead of aborting.
    let mut v: Vec<u8> = Vec::new();
    assert!(v.try_reserve(1 << 46).is_err());
}

#[test]
fn std_collections_work() {
    let mut map = std::collections::HashMap::new();
    for i in 0..100_000u64 {
        map.insert(i, i.to_string());
    }
    assert_eq!(map.len(), 100_000);
    assert_eq!(map[&777], "777");
    let mut tree = std::collections::BTreeMap::new();
    for i in 0..50_000u64 {
        tree.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), vec![i; (i % 17) as usize]);
    }
    assert_eq!(tree.len(), 50_000);
}
