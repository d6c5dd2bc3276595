//! The real heap as the leak check sees it: [`HeapSnapshot`] implements
//! [`HeapView`](crate::leak::view::HeapView) over every segment.
//!
//! # Numbering
//! [`HeapSnapshot::take`] walks the segment list and gives each page in use a base id
//! (`block_id_base`) and each large segment one id, so that block `i` of a page is
//! `block_id_base + i`: `block_containing` is then the O(1) lookup of [`crate::block`] plus an
//! addition. Internal pages and blocks are skipped: they are the allocator's own.
//!
//! # When
//! Only with the segment pool's lock held and the other threads stopped (or, in tests, no
//! other thread allocating): ids and descriptors must not change during the check.

use crate::block::{self, BlockRef};
use crate::leak::view::{BlockDesc, HeapView};
use crate::os::MmapVec;
use crate::page::{GEN_MASK, GEN_SHIFT, IGNORED, INTERNAL, LIVE};
use crate::segment::{self, Pool, Segment, KIND_LARGE, KIND_PAGES};

/// The heap, numbered for one check.
pub(crate) struct HeapSnapshot<'a> {
    pool: &'a Pool,
    slots: usize,
    /// Bit per block id: freed by another thread, not yet collected by the owner.
    freed: MmapVec<u64>,
}

impl<'a> HeapSnapshot<'a> {
    /// Numbers every block of the heap.
    ///
    /// # Safety
    /// - The caller holds the pool lock (it lends `pool` from the guard) and no other thread
    ///   runs allocator code that could change page descriptors meanwhile (they are stopped).
    pub(crate) unsafe fn take(pool: &'a Pool) -> Self {
        let mut next: usize = 0;
        pool.for_each_segment(|seg| {
            // SAFETY: listed segments are live; the contract makes us their only user.
            unsafe {
                match (*seg).kind {
                    KIND_PAGES => segment::for_each_page(seg, |p| {
                        if !(*p).is_internal() {
                            (*p).block_id_base = next as u32;
                            next += (*p).capacity as usize;
                        }
                    }),
                    KIND_LARGE if (*seg).large.flags & INTERNAL == 0 => {
                        (*seg).large.block_id_base = next as u32;
                        next += 1;
                    }
                    _ => {}
                }
            }
        });
        let mut snapshot = Self { pool, slots: next, freed: MmapVec::new() };
        // SAFETY: per the contract.
        unsafe { snapshot.note_thread_freed() };
        snapshot
    }

    /// Marks the blocks other threads freed and their owners have not collected yet: they
    /// still carry LIVE (only owners clear it) but are free.
    ///
    /// # Safety
    /// - As [`HeapSnapshot::take`].
    unsafe fn note_thread_freed(&mut self) {
        if !self.freed.resize(self.slots.div_ceil(64), 0) {
            return;
        }
        let freed = &mut self.freed;
        self.pool.for_each_segment(|seg| {
            // SAFETY: as in `take`.
            unsafe {
                if (*seg).kind == KIND_PAGES {
                    segment::for_each_page(seg, |p| {
                        if !(*p).is_internal() {
                            let base = (*p).block_id_base as usize;
                            (*p).for_each_thread_freed(|i| freed[(base + i) / 64] |= 1 << ((base + i) % 64));
                        }
                    });
                }
            }
        });
    }

    #[inline]
    fn is_freed(&self, id: u32) -> bool {
        self.freed.get(id as usize / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// Bytes of a block that are scanned and that interior pointers may point into.
#[inline]
pub(crate) fn scan_len(size: usize) -> usize {
    (size.max(1) + 7) & !7
}

fn describe(b: BlockRef) -> (u32, BlockDesc) {
    let id = match b {
        // SAFETY: a BlockRef names a live page; `block_id_base` was set by the snapshot.
        BlockRef::Small(p, i) => (unsafe { (*p).block_id_base }) + i as u32,
        // SAFETY: a live large segment.
        BlockRef::Large(s) => unsafe { (*s).large.block_id_base },
    };
    let size = b.size();
    let desc = BlockDesc {
        start: b.start(),
        size,
        usable: scan_len(size),
        stack: b.stack(),
        ignored: b.flags() & IGNORED != 0,
    };
    (id, desc)
}

impl HeapView for HeapSnapshot<'_> {
    fn block_slots(&self) -> usize {
        self.slots
    }

    #[inline]
    fn block_containing(&self, addr: usize) -> Option<(u32, BlockDesc)> {
        let b = block::containing(addr)?;
        if b.flags() & LIVE == 0 || addr - b.start() >= scan_len(b.size()) {
            return None;
        }
        let (id, desc) = describe(b);
        (!self.is_freed(id)).then_some((id, desc))
    }

    fn for_each_block(&self, f: &mut dyn FnMut(u32, BlockDesc)) {
        self.pool.for_each_segment(|seg| {
            // SAFETY: as in `take`.
            unsafe {
                match (*seg).kind {
                    KIND_PAGES => segment::for_each_page(seg, |p| {
                        if (*p).is_internal() {
                            return;
                        }
                        for i in 0..(*p).capacity as usize {
                            if (*p).flags_of(i) & LIVE != 0 {
                                let (id, d) = describe(BlockRef::Small(p, i));
                                if !self.is_freed(id) {
                                    f(id, d);
                                }
                            }
                        }
                    }),
                    KIND_LARGE if (*seg).large.flags & (INTERNAL | LIVE) == LIVE => {
                        let (id, d) = describe(BlockRef::Large(seg));
                        f(id, d);
                    }
                    _ => {}
                }
            }
        });
    }

    fn survived(&self, start: usize) {
        if let Some(b) = block::containing(start) {
            let flags = b.flags();
            let generation = ((flags & GEN_MASK) >> GEN_SHIFT).saturating_add(1).min(2);
            b.set_flags((flags & !GEN_MASK) | (generation << GEN_SHIFT));
        }
    }

    fn owned_region_end(&self, addr: usize) -> Option<usize> {
        let start = segment::map::segment_start(addr)?;
        // SAFETY: the map names live segments only.
        Some(start + unsafe { (*(start as *const Segment)).len })
    }
}
