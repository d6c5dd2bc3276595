use super::super::{Pool, Segment, ALL_FREE, KIND_PAGES, SEGMENT_SIZE, SLICES};
use super::*;

/// A page segment of a pool of its own (not the process's: no other thread takes its
/// slices), every usable slice free.
struct Lone {
    pool: Pool,
    seg: *mut Segment,
}

/// A pool with no segment.
fn empty_pool() -> Pool {
    Pool {
        all: core::ptr::null_mut(),
        avail: core::ptr::null_mut(),
        large_cache: [core::ptr::null_mut(); super::super::LARGE_CACHE_SLOTS],
        large_cached_bytes: 0,
        next_purge: u64::MAX,
        empty_kept: 0,
        segments: 0,
        mapped_bytes: 0,
        page_segments: 0,
    }
}

impl Lone {
    fn new() -> Lone {
        let seg = os::map_aligned(SEGMENT_SIZE, SEGMENT_SIZE).unwrap().as_ptr().cast::<Segment>();
        // SAFETY: a fresh zeroed mapping of ours; an all-zero header is valid, and these
        // are the fields a page segment must have set.
        unsafe {
            (*seg).kind = KIND_PAGES;
            (*seg).len = SEGMENT_SIZE;
            (*seg).free_slices = ALL_FREE;
            (*seg).zero_slices = ALL_FREE;
        }
        let mut pool = empty_pool();
        pool.link_all(seg);
        Lone { pool, seg }
    }

    fn slice(&self, i: usize) -> *mut u8 {
        // SAFETY: slice `i < SLICES` lies inside the segment's mapping.
        unsafe { (self.seg as *mut u8).add(i * SLICE_SIZE) }
    }

    /// Writes to every page of slices `[first, first + n)` (they become resident).
    fn touch(&self, first: usize, n: usize) {
        for i in first..first + n {
            for page in (0..SLICE_SIZE).step_by(4096) {
                // SAFETY: inside slice `i`, writable.
                unsafe { self.slice(i).add(page).write(0xA5) };
            }
        }
    }

    fn resident(&self, first: usize, n: usize) -> usize {
        crate::platform::resident_pages(self.slice(first), n * SLICE_SIZE).unwrap()
    }

    fn mask(first: usize, n: usize) -> u64 {
        ((1u64 << n) - 1) << first
    }
}

impl Drop for Lone {
    fn drop(&mut self) {
        // SAFETY: the whole mapping `new` made; nothing uses it any more.
        unsafe { os::unmap(self.seg.cast(), SEGMENT_SIZE) };
    }
}

const PAGES_PER_SLICE: usize = SLICE_SIZE / 4096;

#[test]
fn a_freed_span_stays_committed_until_its_delay_has_passed() {
    let mut l = Lone::new();
    l.touch(1, 4);
    assert_eq!(l.resident(1, 4), 4 * PAGES_PER_SLICE);
    let t = 1_000_000_000;
    l.pool.schedule_purge(l.seg, Lone::mask(1, 4), t);
    l.pool.purge_due(t + PURGE_DELAY_NS - 1);
    assert_eq!(l.resident(1, 4), 4 * PAGES_PER_SLICE, "purged before its time");
    // SAFETY: slice 1 is mapped and readable.
    assert_eq!(unsafe { *l.slice(1) }, 0xA5, "contents kept until the purge");
    l.pool.purge_due(t + PURGE_DELAY_NS);
    assert_eq!(l.resident(1, 4), 0, "given back");
    // SAFETY: as above; the purged memory reads as zero.
    assert_eq!(unsafe { *l.slice(1) }, 0);
    // SAFETY: the lone segment's header, ours.
    assert_eq!(unsafe { (*l.seg).purge_slices }, 0);
    assert_eq!(l.pool.next_purge, u64::MAX, "nothing left to purge");
}

// The integration tests' reader of `/proc/self/smaps`, the one copy of it.
#[path = "../../../tests/common/smaps.rs"]
mod smaps;
use smaps::vm_flags_of;

#[test]
fn the_first_purge_of_a_huge_segment_advises_it_back_to_small_pages() {
    let mut l = Lone::new();
    // SAFETY: the lone segment's mapping, ours, SEGMENT_SIZE long and aligned.
    if !unsafe { os::advise_huge_pages(l.seg.cast(), SEGMENT_SIZE, true) } {
        // No transparent huge pages in this kernel: nothing to advise back.
        return;
    }
    // SAFETY: the lone segment's header, ours.
    unsafe { (*l.seg).huge = true };
    let flags = |l: &Lone| vm_flags_of(l.seg as usize);
    assert!(flags(&l).iter().any(|f| f == "hg"), "{:?}", flags(&l));
    l.touch(1, 40);
    let t = 7_000_000_000;
    l.pool.schedule_purge(l.seg, Lone::mask(33, 8), t);
    l.pool.purge_due(t + PURGE_DELAY_NS - 1);
    // SAFETY: as above.
    assert!(unsafe { (*l.seg).huge }, "nothing purged yet: still huge");
    l.pool.purge_due(t + PURGE_DELAY_NS);
    // SAFETY: as above.
    assert!(!unsafe { (*l.seg).huge });
    assert!(flags(&l).iter().any(|f| f == "nh"), "advised back: {:?}", flags(&l));
    assert!(!flags(&l).iter().any(|f| f == "hg"));
    assert_eq!(l.resident(33, 8), 0, "the purged span given back");
    assert_eq!(l.resident(1, 32), 32 * PAGES_PER_SLICE, "the rest kept");
}

#[test]
fn slices_never_scheduled_are_left_alone() {
    let mut l = Lone::new();
    l.touch(1, 8);
    let t = 5_000_000_000;
    l.pool.schedule_purge(l.seg, Lone::mask(3, 2), t);
    l.pool.purge_due(t + PURGE_DELAY_NS);
    assert_eq!(l.resident(1, 2), 2 * PAGES_PER_SLICE);
    assert_eq!(l.resident(3, 2), 0);
    assert_eq!(l.resident(5, 4), 4 * PAGES_PER_SLICE);
}

#[test]
fn a_purge_gives_back_at_most_a_batch_and_the_next_one_goes_on() {
    let mut segs: Vec<Lone> = (0..6).map(|_| Lone::new()).collect();
    // One pool over all six segments: move the other five into the first's lists.
    let (first, rest) = segs.split_at_mut(1);
    for l in rest.iter_mut() {
        l.pool.unlink_all(l.seg);
        first[0].pool.link_all(l.seg);
    }
    let t = 9_000_000_000;
    for l in segs.iter() {
        l.touch(1, SLICES - 1);
    }
    let ptrs: Vec<*mut Segment> = segs.iter().map(|l| l.seg).collect();
    let pool = &mut segs[0].pool;
    for seg in ptrs {
        pool.schedule_purge(seg, ALL_FREE, t);
    }
    let due = t + PURGE_DELAY_NS;
    pool.purge_due(due);
    let resident: usize = segs.iter().map(|l| l.resident(1, SLICES - 1)).sum();
    let total = 6 * (SLICES - 1) * PAGES_PER_SLICE;
    assert_eq!(total - resident, PURGE_BATCH_SLICES as usize * PAGES_PER_SLICE, "one batch");
    assert!(segs[0].pool.next_purge <= due, "the rest stays due");
    segs[0].pool.purge_due(due);
    let resident: usize = segs.iter().map(|l| l.resident(1, SLICES - 1)).sum();
    assert_eq!(resident, 0, "the second call purged the rest");
    assert_eq!(segs[0].pool.next_purge, u64::MAX);
}

#[test]
fn empty_segments_are_kept_until_their_purge_and_then_only_a_few() {
    let n = EMPTY_KEEP + 3;
    let mut segs: Vec<Lone> = (0..n).map(|_| Lone::new()).collect();
    let (first, rest) = segs.split_at_mut(1);
    for l in rest.iter_mut() {
        l.pool.unlink_all(l.seg);
        first[0].pool.link_all(l.seg);
    }
    let ptrs: Vec<*mut Segment> = segs.iter().map(|l| l.seg).collect();
    let t = 13_000_000_000;
    let pool = &mut segs[0].pool;
    for &seg in &ptrs {
        // An empty page segment as `release_page` keeps it: free, on `avail`, counted.
        pool.link_avail(seg);
        // SAFETY: the lone segments' headers, ours; the pool is this test's.
        unsafe { (*seg).kept_empty = true };
        pool.empty_kept += 1;
        pool.schedule_purge(seg, ALL_FREE, t);
    }
    pool.purge_due(t + PURGE_DELAY_NS - 1);
    assert_eq!((pool.segments, pool.empty_kept), (n, n), "all kept before their purge");
    pool.purge_due(t + PURGE_DELAY_NS);
    assert_eq!((pool.segments, pool.empty_kept), (EMPTY_KEEP, EMPTY_KEEP), "then only a few");
    // The kept ones' spans are purged, a batch at a time.
    while pool.next_purge != u64::MAX {
        pool.purge_due(t + PURGE_DELAY_NS);
    }
    let mut left = Vec::new();
    let mut seg = pool.all;
    while !seg.is_null() {
        left.push(seg);
        // SAFETY: a segment on the pool's list: mapped.
        seg = unsafe { (*seg).next_all };
    }
    for l in segs {
        if left.contains(&l.seg) {
            // SAFETY: a kept segment, still mapped; its spans were purged.
            assert_eq!(unsafe { (*l.seg).purge_slices }, 0);
            drop(l);
        } else {
            // Unmapped by the purge: not to be unmapped again.
            core::mem::forget(l);
        }
    }
}

/// Claims slice 1 of `l`'s segment for 16-byte blocks (a page that keeps its metadata
/// array in its span), writes every block's metadata word, checks they all read zero
/// first, and gives the slice back by hand as `release_page` does. Returns how many of
/// the slice's pages were resident just after the claim.
fn claim_use_and_release(l: &mut Lone) -> usize {
    let class = crate::size_class::class_of(16);
    let pool_lock = crate::sync::SpinLock::new(core::mem::replace(&mut l.pool, empty_pool()));
    let mut pool = pool_lock.lock();
    pool.link_avail(l.seg);
    // SAFETY: `claim`'s bullets: the lone segment is a live page segment on this pool's
    // `avail` list, slice 1 is free and a valid run of 1.
    let page = unsafe { super::super::claim(&mut pool, l.seg, 1, 1, class, false) };
    let resident_after_claim = l.resident(1, 1);
    // SAFETY: the page just claimed: in use, ours alone.
    unsafe {
        assert!(!crate::page::geometry(16, 1).meta_in_header);
        let capacity = (*page).capacity as usize;
        for i in 0..capacity {
            assert_eq!((*page).meta.add(i).read(), 0, "metadata word {i} of {capacity} not clear");
            (*page).set_meta(i, 16, 7, crate::page::LIVE);
        }
        // Given back (`release_page`, without the process's pool).
        (*page).flags = 0;
        (*page).limit = 0;
        (*page).slices = 0;
        (*l.seg).free_slices |= Lone::mask(1, 1);
    }
    pool.unlink_avail(l.seg);
    drop(pool);
    l.pool = pool_lock.into_inner();
    resident_after_claim
}

#[test]
fn a_page_on_zeroed_slices_clears_no_metadata_and_a_reused_one_does() {
    let mut l = Lone::new();
    assert_eq!(claim_use_and_release(&mut l), 0, "a fresh slice: nothing committed by the claim");
    // SAFETY: the lone segment's header, ours.
    assert_eq!(unsafe { (*l.seg).zero_slices } & Lone::mask(1, 1), 0, "used: no longer zero");
    // Taken again before any purge: its metadata holds the last page's words, cleared.
    assert!(claim_use_and_release(&mut l) > 0);
    let t = 20_000_000_000;
    l.pool.schedule_purge(l.seg, Lone::mask(1, 1), t);
    l.pool.purge_due(t + PURGE_DELAY_NS);
    // SAFETY: as above.
    assert_ne!(unsafe { (*l.seg).zero_slices } & Lone::mask(1, 1), 0, "purged: zero again");
    assert_eq!(claim_use_and_release(&mut l), 0, "a purged slice: nothing committed by the claim");
}
