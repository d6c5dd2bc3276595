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
///
/// Invariants, upheld by every constructor ([`containing`], the leak check's walk) and
/// relied on by the accessors below, which are safe `fn`s:
/// - `Small(p, i)`: `p` is an in-use page descriptor of a live page segment, and
///   `i < p.capacity`.
/// - `Large(s)`: `s` is a live large segment (`kind == KIND_LARGE`).
///
/// The type does not keep them true: a `BlockRef` is good only while its page or segment
/// cannot be released or set up anew, that is while the user holds a live pointer into
/// the block (and frees or reallocates it on no other thread meanwhile), or holds the
/// pool lock with every other thread stopped (the leak check). Metadata writes
/// ([`BlockRef::set_flags`]) need the same.
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
///
/// A safe `fn` whose callers ensure that the segment holding `addr`, if any, stays live
/// and its page descriptors unchanged for the lookup and for as long as the result is
/// used (see [`BlockRef`]): they hold a live pointer into the block, or hold the pool lock
/// with every other thread stopped. Not every caller can: the public `usable_size`,
/// `block_info` and `ignore` take any address, and a misuse report looks up an address
/// that is no live block of the caller's. For an address nobody holds, another thread may
/// release the page, or unmap the segment, between the map lookup and the reads below.
#[inline]
pub(crate) fn containing(addr: usize) -> Option<BlockRef> {
    let seg = segment::map::segment_start(addr)? as *mut Segment;
    // SAFETY:
    // - The map named `seg` as the start of a live segment holding `addr`, and the
    //   callers keep it live (see above): its header is mapped and readable.
    // - `kind`, `free_slices`/`slice_first`, the page descriptors' geometry and a large
    //   block's `start`/`capacity`/`flags` change only under the pool lock or by the
    //   block's holder, which the callers are (or which is stopped).
    // - `page_of_mut`: `seg` is a live page segment (kind checked) and
    //   `seg + SLICE_SIZE <= addr < seg + SEGMENT_SIZE` (a page segment is one slot, and
    //   the header slice is ruled out first).
    // - `&*page` reads the in-use flag, `start`, `recip` and `capacity`, set at page
    //   initialization; the index is checked against `capacity` before a `BlockRef` is
    //   made, which gives the `Small` invariant.
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
            // SAFETY: `p` is an in-use page descriptor of a live segment (type invariant),
            // so readable; `start` and `block_size` are set at page initialization.
            BlockRef::Small(p, i) => unsafe { (*p).block_start(i) },
            // SAFETY: `s` is a live large segment (type invariant): its header is mapped,
            // and `large.start` changes only when the pool moves the block for its holder.
            BlockRef::Large(s) => unsafe { (*s).large.start },
        }
    }

    /// The flags byte (LIVE, IGNORED, generation, REPORTED).
    #[inline]
    pub(crate) fn flags(self) -> u8 {
        match self {
            // SAFETY: `flags_of`'s bullet: `p` is an in-use page (its `meta` array is mapped)
            // and `i < capacity` (type invariant).
            BlockRef::Small(p, i) => unsafe { (*p).flags_of(i) },
            // SAFETY: `s` is a live large segment (type invariant): its header is mapped.
            BlockRef::Large(s) => unsafe { (*s).large.flags },
        }
    }

    /// The flags byte, the requested size and the allocation stack id, read once each
    /// (see [`Page::meta_of`]).
    #[inline]
    pub(crate) fn meta(self) -> (u8, usize, u32) {
        match self {
            BlockRef::Small(p, i) => {
                // SAFETY: `meta_of`'s bullet: `p` is in use and `i < capacity` (type
                // invariant).
                let (flags, size, stack) = unsafe { (*p).meta_of(i) };
                (flags, size as usize, stack)
            }
            // SAFETY: `s` is a live large segment (type invariant): its header is mapped.
            BlockRef::Large(s) => unsafe { ((*s).large.flags, (*s).large.size, (*s).large.stack) },
        }
    }

    /// [`BlockRef::meta`] without the live bit for a page's block (`Page::word_of`): a
    /// freed block's flags may still say LIVE. For callers that ruled free slots out
    /// otherwise (the mark's bits).
    #[inline]
    pub(crate) fn meta_unless_freed(self) -> (u8, usize, u32) {
        match self {
            BlockRef::Small(p, i) => {
                // SAFETY: `word_of`'s bullet: `p` is in use and `i < capacity` (type
                // invariant).
                let (flags, size, stack) = unsafe { (*p).word_of(i) };
                (flags, size as usize, stack)
            }
            BlockRef::Large(_) => self.meta(),
        }
    }

    /// Sets the flags byte.
    ///
    /// A safe `fn` whose callers ensure they may write the block's metadata: they hold a
    /// live pointer to the block and nobody else writes its metadata meanwhile (its owner
    /// frees or reallocates it on no other thread), or every other thread is stopped (the
    /// leak check).
    pub(crate) fn set_flags(self, flags: u8) {
        match self {
            // SAFETY: `Page::set_flags`, first bullet: `p` is in use and `i < capacity`
            // (type invariant). Second bullet: the caller may write the block's metadata
            // (see above).
            BlockRef::Small(p, i) => unsafe { (*p).set_flags(i, flags) },
            // SAFETY: `s` is a live large segment (type invariant), its header mapped; the
            // caller may write the block's metadata (see above), so this write races with
            // no other writer of `large.flags`.
            BlockRef::Large(s) => unsafe { (*s).large.flags = flags },
        }
    }

    /// The size the program asked for.
    #[inline]
    pub(crate) fn size(self) -> usize {
        match self {
            // SAFETY: `size_and_stack`'s bullet: `p` is in use and `i < capacity` (type
            // invariant).
            BlockRef::Small(p, i) => unsafe { (*p).size_and_stack(i).0 as usize },
            // SAFETY: `s` is a live large segment (type invariant): its header is mapped.
            BlockRef::Large(s) => unsafe { (*s).large.size },
        }
    }

    /// Bytes usable from `start` (the size class, or the large segment's room).
    pub(crate) fn usable(self) -> usize {
        match self {
            // SAFETY: `p` is an in-use page descriptor (type invariant), readable;
            // `block_size` is set at page initialization.
            BlockRef::Small(p, _) => unsafe { (*p).block_size as usize },
            // SAFETY: `s` is a live large segment (type invariant): its header is mapped.
            BlockRef::Large(s) => unsafe { (*s).large.capacity },
        }
    }

    /// The allocation stack id (0: none).
    #[inline]
    pub(crate) fn stack(self) -> u32 {
        match self {
            // SAFETY: `size_and_stack`'s bullet: `p` is in use and `i < capacity` (type
            // invariant).
            BlockRef::Small(p, i) => unsafe { (*p).size_and_stack(i).1 },
            // SAFETY: `s` is a live large segment (type invariant): its header is mapped.
            BlockRef::Large(s) => unsafe { (*s).large.stack },
        }
    }

    /// The size class index, for blocks in pages.
    pub(crate) fn class(self) -> Option<usize> {
        match self {
            // SAFETY: `p` is an in-use page descriptor (type invariant), readable; `class`
            // is set at page initialization.
            BlockRef::Small(p, _) => Some(unsafe { (*p).class as usize }),
            BlockRef::Large(_) => None,
        }
    }
}
