//! Blocks by address: the one lookup from any address to the live block containing it.
//!
//! # What it owns
//! [`BlockRef`], a handle on one block (in a page, or a large segment's block) with its
//! metadata accessors, and [`containing`], the O(1) lookup used by introspection
//! (`block_info`, `usable_size`, `ignore`), misuse reports and the leak check's
//! `block_containing`. The lookup never reads the address itself: segment map, then the
//! page's descriptor, then the block's flags.

use crate::page::{Page, INTERNAL, LIVE};
use crate::segment::{self, Segment, KIND_LARGE, KIND_PAGES};

/// One block of ours.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BlockRef {
    /// Block `index` of a page.
    Small(*mut Page, usize),
    /// The block of a large segment.
    Large(*mut Segment),
}

/// The block (live or free, never internal) whose slot contains `addr`, if any.
/// Interior pointers count: anywhere in `[start, start + block size)` for pages,
/// `[start, start + capacity)` for large blocks (callers narrow it with [`BlockRef::size`]).
#[inline]
pub(crate) fn containing(addr: usize) -> Option<BlockRef> {
    let seg = segment::map::segment_start(addr)? as *mut Segment;
    // SAFETY: the map names live segments only, and their headers are readable. The
    // segment map, kinds and page descriptors change only under the pool lock; callers
    // either hold a live pointer into the block (so it cannot go away) or run with the
    // world stopped and the pool lock held.
    unsafe {
        match (*seg).kind {
            KIND_PAGES => {
                if addr - (seg as usize) < crate::page::SLICE_SIZE {
                    return None;
                }
                let page = Segment::page_of_mut(seg, addr);
                let p = &*page;
                if !p.in_use() || p.is_internal() || addr < p.start as usize {
                    return None;
                }
                let index = p.index_of(addr);
                (index < p.capacity as usize).then_some(BlockRef::Small(page, index))
            }
            KIND_LARGE => {
                let large = &(*seg).large;
                let inside = addr >= large.start && addr - large.start < large.capacity;
                (inside && large.flags & INTERNAL == 0).then_some(BlockRef::Large(seg))
            }
            _ => None,
        }
    }
}

/// The live block containing `addr` in `[start, start + max(size, 1))`, if any.
#[inline]
pub(crate) fn live_containing(addr: usize) -> Option<BlockRef> {
    let b = containing(addr)?;
    (b.flags() & LIVE != 0 && addr - b.start() < b.size().max(1)).then_some(b)
}

impl BlockRef {
    /// Address of the block's first byte.
    #[inline]
    pub(crate) fn start(self) -> usize {
        match self {
            // SAFETY: a BlockRef names a block of a live page (see `containing`).
            BlockRef::Small(p, i) => unsafe { (*p).block_start(i) },
            // SAFETY: a live large segment.
            BlockRef::Large(s) => unsafe { (*s).large.start },
        }
    }

    /// The flags byte (LIVE, IGNORED, generation, REPORTED).
    #[inline]
    pub(crate) fn flags(self) -> u8 {
        match self {
            // SAFETY: index < capacity (see `containing`).
            BlockRef::Small(p, i) => unsafe { (*p).flags_of(i) },
            // SAFETY: a live large segment.
            BlockRef::Large(s) => unsafe { (*s).large.flags },
        }
    }

    /// Sets the flags byte. The caller must have the right to (a live pointer to the
    /// block, or the world stopped).
    pub(crate) fn set_flags(self, flags: u8) {
        match self {
            // SAFETY: index < capacity; the right to write is the caller's.
            BlockRef::Small(p, i) => unsafe { (*p).set_flags(i, flags) },
            // SAFETY: as above.
            BlockRef::Large(s) => unsafe { (*s).large.flags = flags },
        }
    }

    /// The size the program asked for.
    #[inline]
    pub(crate) fn size(self) -> usize {
        match self {
            // SAFETY: index < capacity.
            BlockRef::Small(p, i) => unsafe { (*p).size_and_stack(i).0 as usize },
            // SAFETY: a live large segment.
            BlockRef::Large(s) => unsafe { (*s).large.size },
        }
    }

    /// Bytes usable from `start` (the size class, or the large segment's room).
    pub(crate) fn usable(self) -> usize {
        match self {
            // SAFETY: a live page.
            BlockRef::Small(p, _) => unsafe { (*p).block_size as usize },
            // SAFETY: a live large segment.
            BlockRef::Large(s) => unsafe { (*s).large.capacity },
        }
    }

    /// The allocation stack id (0: none).
    #[inline]
    pub(crate) fn stack(self) -> u32 {
        match self {
            // SAFETY: index < capacity.
            BlockRef::Small(p, i) => unsafe { (*p).size_and_stack(i).1 },
            // SAFETY: a live large segment.
            BlockRef::Large(s) => unsafe { (*s).large.stack },
        }
    }

    /// The size class index, for blocks in pages.
    pub(crate) fn class(self) -> Option<usize> {
        match self {
            // SAFETY: a live page.
            BlockRef::Small(p, _) => Some(unsafe { (*p).class as usize }),
            BlockRef::Large(_) => None,
        }
    }
}
