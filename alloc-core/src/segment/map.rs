//! The segment map: "is this address inside one of our segments, and which" in O(1),
//! without reading the address itself.
//!
//! # Layout
//! One `u32` per 4 MiB slot of the 47-bit user address space (2^25 entries, a 128 MiB
//! `MAP_NORESERVE` mapping of which only the touched pages cost memory):
//!
//! ```text
//! entry[addr >> 22] = 0                          not ours
//!                   = d + 1  (d >= 0)            slot d of a page segment (d is 0: one slot)
//!                   = LARGE | (d + 1)  (d >= 0)  slot d slots after the start of a large segment
//! ```
//!
//! A large segment of `n` slots sets `n` entries `1, 2, ..., n` (with [`LARGE`]), so an
//! interior pointer into a huge block finds its segment's start by subtracting `d` slots.
//! The flag tells the free fast path a page segment from a large one of one slot without
//! reading the segment's header (two instructions on every free).
//!
//! # Invariants
//! - `entry[s] = d + 1 ≠ 0` ⇔ slot `s` is slot `d` of a live segment (one on the pool's
//!   `all` list) starting at slot `s - d`: mapped, its header written.
//! - Entries are written only under the segment pool's lock: [`insert`] after the
//!   segment's header is written, [`remove`] before the segment is unmapped, moved or
//!   cached.
//! - The table itself, once published in `MAP`, is never unmapped.
//!
//! A reader without the pool lock (`free`, `block::containing`) can trust what an entry
//! says only while something keeps that segment live for the whole lookup: a live block
//! of it that the caller holds, or every other thread stopped. An entry read for an
//! address nobody holds may be removed, and its segment unmapped, right after the read.
//!
//! # Who calls it
//! `free` (to reject pointers we never handed out), the leak check's `block_containing`
//! (for every scanned word), and segment creation and release, which write entries while
//! holding the segment pool's lock.

use crate::os;
use crate::sync::Isolated;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// log2 of the segment size and alignment.
pub(crate) const SEGMENT_SHIFT: usize = 22;
/// Segment size and alignment: 4 MiB.
pub(crate) const SEGMENT_SIZE: usize = 1 << SEGMENT_SHIFT;
/// The flag of a large segment's entries.
const LARGE: u32 = 1 << 31;
/// Addresses at or above this are never ours (x86-64 user space is 47 bits).
const ADDRESS_LIMIT: usize = 1 << 47;
const ENTRIES: usize = ADDRESS_LIMIT >> SEGMENT_SHIFT;

/// The table, and how many of its entries a lookup may read: 0 until `init` published
/// the table, [`ENTRIES`] after (stored after the table, with `Release`). A lookup tests
/// the slot against `entries` alone, one compare for "mapped yet" and "an address below
/// 47 bits" (six instructions fewer on every free than a null test and a range test).
struct Map {
    table: AtomicPtr<AtomicU32>,
    entries: AtomicUsize,
}

#[used]
static MAP: Isolated<Map> =
    Isolated(Map { table: AtomicPtr::new(core::ptr::null_mut()), entries: AtomicUsize::new(0) });

/// Maps the table on first use. Called from the allocator's one-time initialization;
/// returns false if the kernel refuses the mapping.
pub(crate) fn init() -> bool {
    if MAP.entries.load(Ordering::Acquire) != 0 {
        return true;
    }
    let bytes = ENTRIES * core::mem::size_of::<u32>();
    let Some(p) = os::map(bytes) else {
        return false;
    };
    os::register_own_mapping(p.as_ptr() as usize, bytes);
    let won = MAP.table.compare_exchange(core::ptr::null_mut(), p.as_ptr().cast(), Ordering::AcqRel, Ordering::Acquire);
    if won.is_err() {
        os::unregister_own_mapping(p.as_ptr() as usize);
        // SAFETY:
        // - `[p, p + bytes)` is the whole mapping `os::map` made just above, page aligned.
        // - Nothing uses it afterwards: the CAS failed, so `MAP` never held it and no
        //   other thread has seen it; its registry entry was removed just above.
        unsafe { os::unmap(p.as_ptr(), bytes) };
    }
    // The table is published (by us or by the thread whose exchange won): lookups may
    // read it.
    MAP.entries.store(ENTRIES, Ordering::Release);
    true
}

#[inline]
fn entry(slot: usize) -> Option<&'static AtomicU32> {
    if slot >= MAP.entries.load(Ordering::Acquire) {
        return None;
    }
    let map = MAP.table.load(Ordering::Relaxed);
    debug_assert!(!map.is_null());
    // SAFETY: as below, `map` is the published table, not null (said to the compiler, which
    // would test it again for the `Option`'s sake: two instructions).
    unsafe { core::hint::assert_unchecked(!map.is_null()) };
    // SAFETY:
    // - `entries` is non-zero only once `init` stored it, after the table was published
    //   (its `Release` store, and our `Acquire` load, order the two): `map` is the
    //   table, ENTRIES `AtomicU32`s in one page-aligned mapping, never unmapped (module
    //   invariant), so the reference may be `'static`.
    // - `slot < entries == ENTRIES` (checked just above): the entry is in bounds.
    // - Its contents need no synchronization to be read: zero from the kernel, and only
    //   ever written through atomics. (The Relaxed load of `map` suffices for the same
    //   reason: `init` writes nothing into the table before publishing it.)
    Some(unsafe { &*map.add(slot) })
}

/// The start of the segment holding `addr`, if `addr` lies in one of ours.
#[inline]
pub(crate) fn segment_start(addr: usize) -> Option<usize> {
    let slot = addr >> SEGMENT_SHIFT;
    let d = entry(slot)?.load(Ordering::Acquire) & !LARGE;
    if d == 0 {
        None
    } else {
        Some((slot - (d as usize - 1)) << SEGMENT_SHIFT)
    }
}

/// Whether `addr` lies in one of our page segments (of one slot each, whose header is
/// then at `addr` rounded down to [`SEGMENT_SIZE`]): the free fast path's check.
#[inline]
pub(crate) fn in_page_segment(addr: usize) -> bool {
    entry(addr >> SEGMENT_SHIFT).is_some_and(|e| e.load(Ordering::Relaxed) == 1)
}

/// Records `[start, start + len)` as one segment, a large one when `large` (else a page
/// segment: one slot).
///
/// # Safety
/// - `start` is segment aligned and `len` a positive multiple of [`SEGMENT_SIZE`]
///   (checked in debug builds).
/// - `[start, start + len)` is a mapping of ours, and the segment header at `start` is
///   written (lock-free readers read it as soon as the entries name it).
/// - The caller holds the segment pool's lock.
pub(crate) unsafe fn insert(start: usize, len: usize, large: bool) {
    debug_assert!(start.is_multiple_of(SEGMENT_SIZE) && len.is_multiple_of(SEGMENT_SIZE) && len > 0);
    debug_assert!(large || len == SEGMENT_SIZE);
    let first = start >> SEGMENT_SHIFT;
    let flag = if large { LARGE } else { 0 };
    for (d, slot) in (first..first + len / SEGMENT_SIZE).enumerate() {
        if let Some(e) = entry(slot) {
            e.store(flag | (d as u32 + 1), Ordering::Release);
        }
    }
}

/// Forgets the segment `[start, start + len)`.
///
/// # Safety
/// - `[start, start + len)` was recorded with [`insert`], with this length, and not
///   removed since (so `start` is segment aligned and `len` a positive multiple of
///   [`SEGMENT_SIZE`]: checked in debug builds).
/// - The caller holds the segment pool's lock.
///
/// The caller removes the entries before it unmaps, moves or caches the segment.
pub(crate) unsafe fn remove(start: usize, len: usize) {
    debug_assert!(start.is_multiple_of(SEGMENT_SIZE) && len.is_multiple_of(SEGMENT_SIZE) && len > 0);
    let first = start >> SEGMENT_SHIFT;
    for slot in first..first + len / SEGMENT_SIZE {
        if let Some(e) = entry(slot) {
            e.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_segment_starts_from_any_slot() {
        assert!(init());
        // A fake 3-slot segment at an address no real mapping uses in this test.
        let start = 0x7000_0000_0000usize & !(SEGMENT_SIZE - 1);
        // SAFETY: the test only touches the map's entries; nothing is ever mapped there.
        unsafe { insert(start, 3 * SEGMENT_SIZE, true) };
        assert_eq!(segment_start(start), Some(start));
        assert_eq!(segment_start(start + SEGMENT_SIZE + 17), Some(start));
        assert_eq!(segment_start(start + 3 * SEGMENT_SIZE - 1), Some(start));
        assert_eq!(segment_start(start + 3 * SEGMENT_SIZE), None);
        assert!(!in_page_segment(start + 5) && !in_page_segment(start + SEGMENT_SIZE));
        // SAFETY: removes exactly what was inserted above.
        unsafe { remove(start, 3 * SEGMENT_SIZE) };
        assert_eq!(segment_start(start), None);
        assert_eq!(segment_start(usize::MAX), None);
        // A large segment of one slot, then a page segment in its place: only the latter
        // is a page segment's.
        // SAFETY: as above, each removed before the next is inserted.
        unsafe { insert(start, SEGMENT_SIZE, true) };
        assert!(!in_page_segment(start + 5) && segment_start(start + 5) == Some(start));
        // SAFETY: as above.
        unsafe { remove(start, SEGMENT_SIZE) };
        // SAFETY: as above.
        unsafe { insert(start, SEGMENT_SIZE, false) };
        assert!(in_page_segment(start + 5) && segment_start(start + 5) == Some(start));
        assert!(!in_page_segment(start + SEGMENT_SIZE));
        // SAFETY: as above.
        unsafe { remove(start, SEGMENT_SIZE) };
        assert!(!in_page_segment(start + 5));
    }
}
