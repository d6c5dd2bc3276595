//! The stack depot: an append-only, lock-free table interning return-address arrays into
//! [`StackId`]s (LSan's `StackDepot`).
//!
//! # What it owns
//! One process-wide [`Depot`], made on first use. [`capture`](super::capture) interns
//! through [`intern`] on a per-thread cache miss; the leak check and the report read
//! stacks back with [`frames`] (any thread, any time, also while other threads are
//! stopped: reads take no lock).
//!
//! # Layout (one `MAP_NORESERVE` mapping, touched lazily, never scanned as a root)
//! ```text
//! header:  Depot (counters, each on its own cache line)
//! table:   [AtomicU32; 2^12 + 2^15 + 2^18 + 2^22]   slots holding ids, by hash; 0 = empty
//! records: [Record; 3 * 2^20]  id -> (hash, offset of its frames, frame count)
//! frames:  [usize; 2^25]       the return addresses, appended
//! ```
//! 340 MiB of address space; a process with 10,000 distinct stacks of 20 frames touches
//! about 2.5 MiB of it.
//!
//! # The table: small levels first
//! A stack's slot is the first empty one, or its own, along a probe sequence fixed by its
//! hash: one bucket of [`BUCKET`] slots (a cache line) in each of three front levels of
//! 2^12, 2^15 and 2^18 slots, then linear probing in the main level of 2^22 slots. The
//! first few thousand stacks all fit in the first level's 16 KiB: a program's start
//! touches a few pages of the table, not one page per stack (one 16 MiB table, probed
//! from a random place per stack, cost a test binary hundreds of page faults at start).
//! Each level takes its bucket from other bits of the hash.
//!
//! # Insertion
//! Walk the probe sequence. An occupied slot whose record matches (hash, then frames) is
//! the answer. At an empty slot: claim a record id and frame space with `fetch_add`,
//! write them, publish the record by storing its length (Release), then CAS the id into
//! the slot (Release; readers load slots with Acquire). A lost CAS re-reads the slot: the
//! same stack published by another thread wins (our record stays, unused: two threads
//! meeting one new stack at the same instant), anything else probes on. Slots only go
//! from empty to an id, so two threads interning one stack walk the same sequence and
//! meet at the same first empty slot: one id per stack.
//!
//! # Invariants
//! - A slot, once non-zero, never changes; a record, once its length is non-zero, never
//!   changes; so ids stay valid, and their frames stay put, for the life of the process.
//! - The table is at most 3/4 full (records are capped at 3/4 of the slots), so a probe
//!   always meets an empty slot or its stack.
//! - When records or frame space run out, [`intern`] returns [`StackId::NONE`] and counts
//!   the drop: allocations then carry no stack, nothing else breaks.

use super::StackId;
use crate::os;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// One interned stack. Zero-filled (the fresh mapping) means "not yet written".
#[repr(C)]
struct Record {
    hash: u64,
    offset: u32,
    /// Written last, with Release: non-zero means `hash` and the frames are in place.
    len: AtomicU32,
}

/// A counter alone on its cache line (they are bumped by different threads).
#[repr(align(64))]
struct Line<T>(T);

/// An interning table (see the module notes). Lives in the first page of its mapping.
///
/// Invariants (set by [`Depot::create`], plain fields never written again):
/// - `self` is at the start of a mapping of `mapped` bytes that holds, after the header
///   page, `table` (`table_slots` `AtomicU32`s: the front levels of `fronts`, then the
///   main level of `2^(64 - slot_shift)` slots from `main_start`), `records`
///   (`max_stacks = main slots / 4 * 3` `Record`s) and `frames` (`max_frames` `usize`s),
///   each aligned for its type, zero-filled when fresh;
/// - each front level `(start, bucket_shift)` of `fronts[..front_levels]` is
///   `2^(64 - bucket_shift)` buckets of [`BUCKET`] slots from slot `start`, inside
///   `[0, main_start)`;
/// - a record is written only by the one `append` that claimed its id, and read only
///   after an Acquire load of its `len` saw it non-zero; a frame range likewise;
/// - the process-wide depot, once published in `DEPOT`, is never unmapped.
pub(super) struct Depot {
    table: *const AtomicU32,
    records: *mut Record,
    frames: *mut usize,
    slot_shift: u32,
    fronts: [(usize, u32); FRONT_SHIFTS.len()],
    front_levels: usize,
    main_start: usize,
    table_slots: usize,
    max_stacks: usize,
    max_frames: usize,
    mapped: usize,
    next_id: Line<AtomicUsize>,
    next_frame: Line<AtomicUsize>,
    dropped: Line<AtomicU64>,
    lookups: Line<AtomicU64>,
}

// SAFETY: through `&Depot`, all mutation goes through atomics (slots, `len`, counters) or
// through `append`'s raw writes to an id and frame range claimed by one `fetch_add`, read
// by others only after the Release/Acquire publication of the module notes; the plain
// fields are written before the depot is published and never again.
unsafe impl Sync for Depot {}

const _: () = assert!(core::mem::size_of::<Depot>() <= os::OS_PAGE);

static DEPOT: AtomicPtr<Depot> = AtomicPtr::new(core::ptr::null_mut());

/// Slots of the process-wide table's main level.
const TABLE_SLOTS: usize = 1 << 22;
/// Slots of a front level's bucket: one cache line of ids.
const BUCKET: usize = 16;
/// The front levels' sizes: the main level's slots shifted right by each (a level is
/// left out when it would hold fewer than two buckets).
const FRONT_SHIFTS: [u32; 3] = [10, 7, 4];
/// Return addresses of the process-wide frame arena (1M stacks of 32 frames).
const MAX_FRAMES: usize = 1 << 25;

impl Depot {
    /// Maps and initializes a depot of `slots` main-level slots (a power of two, at
    /// least 4; front levels are added) and `max_frames` frames; registered as allocator
    /// memory. `None` if the kernel refuses the mapping.
    pub(super) fn create(slots: usize, max_frames: usize) -> Option<&'static Depot> {
        debug_assert!(slots.is_power_of_two() && slots >= 4 && max_frames <= u32::MAX as usize);
        let max_stacks = slots / 4 * 3;
        let (mut fronts, mut front_levels, mut main_start) = ([(0, 0); FRONT_SHIFTS.len()], 0, 0);
        for shift in FRONT_SHIFTS {
            let level_slots = slots >> shift;
            if level_slots >= 2 * BUCKET {
                let buckets = level_slots / BUCKET;
                fronts[front_levels] = (main_start, 64 - buckets.trailing_zeros());
                front_levels += 1;
                main_start += level_slots;
            }
        }
        let table_slots = main_start + slots;
        let header = os::OS_PAGE;
        let table_bytes = (table_slots * 4).next_multiple_of(8);
        let record_bytes = max_stacks * core::mem::size_of::<Record>();
        let mapped = (header + table_bytes + record_bytes + max_frames * 8).next_multiple_of(os::OS_PAGE);
        let base = os::map(mapped)?.as_ptr();
        os::register_own_mapping(base as usize, mapped);
        let depot = base.cast::<Depot>();
        // SAFETY:
        // - `base` is a fresh mapping of `mapped` bytes, page aligned, zero-filled, known
        //   only here: writing the `Depot` at its start is in bounds
        //   (`size_of::<Depot>() <= OS_PAGE`, asserted), aligned (a page), and aliases
        //   nothing.
        // - The three array offsets stay inside it: `header + table_bytes + record_bytes +
        //   max_frames * 8 <= mapped`; each is 8-aligned (`table_bytes` is rounded to 8,
        //   and `size_of::<Record>()` is 16), enough for `AtomicU32`, `Record` and `usize`.
        // - `&*depot` may be `'static`: the mapping is unmapped only by `destroy`, whose
        //   caller promises no further use.
        unsafe {
            depot.write(Depot {
                table: base.add(header).cast(),
                records: base.add(header + table_bytes).cast(),
                frames: base.add(header + table_bytes + record_bytes).cast(),
                slot_shift: 64 - slots.trailing_zeros(),
                fronts,
                front_levels,
                main_start,
                table_slots,
                max_stacks,
                max_frames,
                mapped,
                next_id: Line(AtomicUsize::new(1)),
                next_frame: Line(AtomicUsize::new(0)),
                dropped: Line(AtomicU64::new(0)),
                lookups: Line(AtomicU64::new(0)),
            });
            Some(&*depot)
        }
    }

    /// Unmaps a depot that was never shared.
    ///
    /// # Safety
    /// - `self` came from [`Depot::create`] and was never published in `DEPOT`.
    /// - No reference to it (or to its stacks' frames) is used after this call.
    unsafe fn destroy(&self) {
        let (base, len) = (self as *const Depot as *mut u8, self.mapped);
        os::unregister_own_mapping(base as usize);
        // SAFETY:
        // - `os::unmap`, first bullet: `[base, base + mapped)` is the whole mapping
        //   `create` made with `os::map` (the depot sits at its first byte; type
        //   invariant), page aligned.
        // - Second bullet: nothing uses it afterwards (caller, second bullet), and no other
        //   thread can reach it: it was never published (caller, first bullet). `self` is
        //   not used after this line, though the reference is still in scope until the
        //   function returns.
        unsafe { os::unmap(base, len) };
    }

    /// Slot `i` of the table (front levels and main level together). A safe `fn`
    /// private to the depot whose callers ensure `i < table_slots` (checked in debug
    /// builds): they index a level inside its bounds.
    fn slot(&self, i: usize) -> &AtomicU32 {
        debug_assert!(i < self.table_slots);
        // SAFETY: `table` holds `table_slots` `AtomicU32`s (type invariant) and
        // `i < table_slots` (callers), so the slot is in bounds and aligned; slots are only
        // accessed atomically, so a shared reference is sound, for as long as `&self`.
        unsafe { &*self.table.add(i) }
    }

    /// The record of `id`, or `None` if `id` was never published.
    fn record(&self, id: u32) -> Option<(&Record, usize)> {
        if id == 0 || id as usize >= self.max_stacks {
            return None;
        }
        // SAFETY: `0 < id < max_stacks` (checked just above): the record is inside the
        // array (type invariant), aligned, and valid as a `Record` whether written or still
        // zero-filled. Only `len` (atomic) is read before the Acquire load says the record
        // is published; `hash` and `offset` are read by callers only after it. (For an id
        // claimed and not yet published, only reachable through an arbitrary `StackId`,
        // this reference covers `hash` and `offset` while `append` writes them.)
        let r = unsafe { &*self.records.add(id as usize) };
        let len = r.len.load(Ordering::Acquire) as usize;
        (len != 0).then_some((r, len))
    }

    /// The frames of `id`; empty if `id` was never published.
    pub(super) fn frames(&self, id: StackId) -> &[usize] {
        match self.record(id.as_u32()) {
            // SAFETY:
            // - `record` saw `len != 0` with an Acquire load, which synchronizes with the
            //   Release store in `append`: `offset` and the frames written before it are
            //   visible.
            // - `append` published only after checking `offset + len <= max_frames`, so
            //   the slice is inside the frame array (type invariant).
            // - The range was claimed by one `append` (its `fetch_add`) and is never
            //   written again: no writer while the slice lives, which is as long as
            //   `&self`.
            Some((r, len)) => unsafe { core::slice::from_raw_parts(self.frames.add(r.offset as usize), len) },
            None => &[],
        }
    }

    fn matches(&self, id: u32, frames: &[usize], hash: u64) -> bool {
        // `hash` is read only once `len` said the record is written (in `record`).
        self.record(id).is_some_and(|(r, _)| r.hash == hash && self.frames(StackId::from_u32(id)) == frames)
    }

    /// Writes a new record; returns its id, or `None` when records or frames run out.
    fn append(&self, frames: &[usize], hash: u64) -> Option<u32> {
        if self.next_id.0.load(Ordering::Relaxed) >= self.max_stacks {
            return None; // full: do not burn ids (or frame space) any further
        }
        let id = self.next_id.0.fetch_add(1, Ordering::Relaxed);
        let offset = self.next_frame.0.fetch_add(frames.len(), Ordering::Relaxed);
        if id >= self.max_stacks || offset + frames.len() > self.max_frames {
            return None;
        }
        // SAFETY:
        // - In bounds: `id < max_stacks` and `offset + frames.len() <= max_frames` (checked
        //   just above), within the arrays (type invariant); the source, the caller's
        //   slice, does not overlap the depot's mapping.
        // - Exclusive: the `fetch_add`s gave this id and this frame range to this call
        //   alone, and readers touch `hash`, `offset` and the frames only after an Acquire
        //   load sees `len` non-zero, which the Release store below makes happen after
        //   these writes.
        // - The writes go through raw places (`addr_of_mut!`), making no reference to a
        //   record other threads may be looking at.
        unsafe {
            let r = self.records.add(id);
            core::ptr::copy_nonoverlapping(frames.as_ptr(), self.frames.add(offset), frames.len());
            core::ptr::addr_of_mut!((*r).hash).write(hash);
            core::ptr::addr_of_mut!((*r).offset).write(offset as u32);
            (*r).len.store(frames.len() as u32, Ordering::Release);
        }
        Some(id as u32)
    }

    /// Interns `frames` (non-empty, hashed with `hash`), returning its id, or
    /// [`StackId::NONE`] when full.
    pub(super) fn intern(&self, frames: &[usize], hash: u64) -> StackId {
        debug_assert!(!frames.is_empty() && frames.len() <= u32::MAX as usize);
        self.lookups.0.fetch_add(1, Ordering::Relaxed);
        let mut mine: Option<u32> = None;
        for (level, &(start, bucket_shift)) in self.fronts[..self.front_levels].iter().enumerate() {
            // Each level's bucket from other bits of the hash.
            let bucket = (hash.rotate_left(21 * (level as u32 + 1)) >> bucket_shift) as usize;
            for k in 0..BUCKET {
                // `start + bucket * BUCKET + k` lies in the level (type invariant).
                if let Some(found) = self.try_slot(start + bucket * BUCKET + k, frames, hash, &mut mine) {
                    return found;
                }
            }
        }
        let mask = (1usize << (64 - self.slot_shift)) - 1;
        let mut i = (hash >> self.slot_shift) as usize;
        loop {
            // `main_start + i` lies in the main level: `i <= mask`.
            if let Some(found) = self.try_slot(self.main_start + i, frames, hash, &mut mine) {
                return found;
            }
            i = (i + 1) & mask;
        }
    }

    /// One step of the probe sequence, at slot `i` (`< table_slots`): the stack's id if
    /// the slot holds it or this call puts it there, [`StackId::NONE`] if it is empty
    /// and the depot is full, `None` if it holds another stack. `mine` is the record this
    /// intern appended at an earlier step, if any (appended at most once).
    fn try_slot(&self, i: usize, frames: &[usize], hash: u64, mine: &mut Option<u32>) -> Option<StackId> {
        let cur = self.slot(i).load(Ordering::Acquire);
        if cur == 0 {
            let Some(id) = mine.or_else(|| self.append(frames, hash)) else {
                self.dropped.0.fetch_add(1, Ordering::Relaxed);
                return Some(StackId::NONE);
            };
            *mine = Some(id);
            match self.slot(i).compare_exchange(0, id, Ordering::Release, Ordering::Acquire) {
                Ok(_) => return Some(StackId::from_u32(id)),
                Err(other) if self.matches(other, frames, hash) => return Some(StackId::from_u32(other)),
                Err(_) => {}
            }
        } else if self.matches(cur, frames, hash) {
            return Some(StackId::from_u32(cur));
        }
        None
    }

    fn stats(&self) -> DepotStats {
        let stacks = self.next_id.0.load(Ordering::Relaxed).min(self.max_stacks) - 1;
        let frame_bytes = (self.next_frame.0.load(Ordering::Relaxed).min(self.max_frames) * 8) as u64;
        DepotStats {
            stacks: stacks as u64,
            frame_bytes,
            dropped: self.dropped.0.load(Ordering::Relaxed),
            lookups: self.lookups.0.load(Ordering::Relaxed),
            mapped_bytes: self.mapped as u64,
            used_bytes: (stacks * core::mem::size_of::<Record>()) as u64 + frame_bytes,
        }
    }
}

/// The process-wide depot, made on first use; `None` only if the kernel refused it.
#[inline]
fn depot() -> Option<&'static Depot> {
    let d = DEPOT.load(Ordering::Acquire);
    if d.is_null() {
        return init();
    }
    // SAFETY: `d` is non-null, so `init` published it with an AcqRel CAS after `create`
    // wrote it, and our Acquire load synchronizes with that: the header is initialized.
    // A published depot is never unmapped (type invariant), so `'static` holds.
    Some(unsafe { &*d })
}

#[cold]
fn init() -> Option<&'static Depot> {
    let mine = Depot::create(TABLE_SLOTS, MAX_FRAMES)?;
    let p = mine as *const Depot as *mut Depot;
    match DEPOT.compare_exchange(core::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(mine),
        Err(winner) => {
            // SAFETY: `mine` came from `create` and was never published: the CAS failed
            // (first bullet); it is not used after this call, and no other thread has
            // seen it (second bullet).
            unsafe { mine.destroy() };
            // SAFETY: `winner` is non-null, published by another thread's CAS after its
            // `create`, which our Acquire failure ordering synchronizes with; a published
            // depot is never unmapped (type invariant).
            Some(unsafe { &*winner })
        }
    }
}

/// Interns `frames` (with their [`hash_frames`](super::unwind::hash_frames) `hash`) in
/// the process-wide depot.
pub(super) fn intern(frames: &[usize], hash: u64) -> StackId {
    depot().map_or(StackId::NONE, |d| d.intern(frames, hash))
}

/// The frames of a stack, innermost first; empty for [`StackId::NONE`] or an id never
/// handed out.
pub(crate) fn frames(id: StackId) -> &'static [usize] {
    depot().map_or(&[], |d| d.frames(id))
}

/// Depot statistics (counters are relaxed: a snapshot, not a consistent cut).
#[derive(Clone, Copy, Debug, Default)]
#[allow(dead_code, reason = "introspection reports only some fields so far; tests read all")]
pub(crate) struct DepotStats {
    /// Stacks interned.
    pub(crate) stacks: u64,
    /// Bytes of return addresses stored.
    pub(crate) frame_bytes: u64,
    /// Stacks not recorded because the depot was full.
    pub(crate) dropped: u64,
    /// Depot lookups: per-thread cache misses.
    pub(crate) lookups: u64,
    /// Address space reserved.
    pub(crate) mapped_bytes: u64,
    /// Bytes of records and frames written (the table's touched pages not counted).
    pub(crate) used_bytes: u64,
}

/// Statistics of the process-wide depot.
pub(crate) fn depot_stats() -> DepotStats {
    depot().map_or(DepotStats::default(), Depot::stats)
}

#[cfg(test)]
mod tests {
    use super::super::unwind::hash_frames;
    use super::*;

    fn put(d: &Depot, frames: &[usize]) -> StackId {
        d.intern(frames, hash_frames(frames))
    }

    #[test]
    fn interning_is_idempotent_and_distinguishes_stacks() {
        let d = Depot::create(1 << 10, 1 << 12).unwrap();
        let (a, b) = ([0x1000usize, 0x2000, 0x3000], [0x1000usize, 0x2000, 0x3001]);
        let (ia, ib) = (put(d, &a), put(d, &b));
        assert_eq!(ia.as_u32(), 1, "ids start at 1");
        assert_ne!(ia, ib);
        assert_eq!(put(d, &a), ia);
        assert_eq!((d.frames(ia), d.frames(ib)), (&a[..], &b[..]));
        // Same hash, different frames: still distinct (frames are compared).
        let c = [0x9usize];
        let ic = d.intern(&c, hash_frames(&a));
        assert_ne!(ic, ia);
        assert_eq!(d.frames(ic), &c);
        assert_eq!(d.intern(&a, hash_frames(&a)), ia);
        assert!(d.frames(StackId::NONE).is_empty());
        assert!(d.frames(StackId::from_u32(500)).is_empty(), "claimed by no one");
        assert!(d.frames(StackId::from_u32(u32::MAX)).is_empty());
        let s = d.stats();
        assert_eq!((s.stacks, s.frame_bytes, s.dropped, s.lookups), (3, 7 * 8, 0, 5));
        // SAFETY: `d` was never shared and is not used again.
        unsafe { d.destroy() };
    }

    #[test]
    fn a_full_depot_returns_none_and_counts_the_drops() {
        let d = Depot::create(16, 1 << 10).unwrap(); // 12 records, ids 1..=11
        let ids: Vec<StackId> = (0..20usize).map(|i| put(d, &[i + 1, 7])).collect();
        assert!(ids[..11].iter().all(|&i| i != StackId::NONE));
        assert!(ids[11..].iter().all(|&i| i == StackId::NONE));
        for (i, id) in ids[..11].iter().enumerate() {
            assert_eq!(d.frames(*id), &[i + 1, 7]);
            assert_eq!(put(d, &[i + 1, 7]), *id, "known stacks still found when full");
        }
        assert_eq!((d.stats().stacks, d.stats().dropped), (11, 9));
        // Out of frame space rather than records.
        let small = Depot::create(1 << 8, 10).unwrap();
        assert_ne!(put(small, &[1; 6]), StackId::NONE);
        assert_eq!(put(small, &[2; 6]), StackId::NONE);
        assert_eq!(put(small, &[3; 4]), StackId::NONE, "space claimed by a failed append stays claimed");
        assert_eq!(small.frames(StackId::from_u32(1)), &[1; 6]);
        assert_eq!(small.stats().dropped, 2);
        // SAFETY: neither depot was shared, and neither is used again.
        unsafe { (d.destroy(), small.destroy()) };
    }

    #[test]
    fn the_first_stacks_fill_the_small_levels_first() {
        let d = Depot::create(1 << 16, 1 << 16).unwrap(); // front levels of 64, 512, 4096
        assert_eq!((d.front_levels, d.main_start), (3, 64 + 512 + 4096));
        let occupied = |from: usize, to: usize| (from..to).filter(|&i| d.slot(i).load(Ordering::Relaxed) != 0).count();
        let ids: Vec<StackId> = (0..400usize).map(|i| put(d, &[0x7000_0000 + 64 * i, i])).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(put(d, &[0x7000_0000 + 64 * i, i]), *id, "found again");
            assert_eq!(d.frames(*id), &[0x7000_0000 + 64 * i, i]);
        }
        let levels = [occupied(0, 64), occupied(64, 576), occupied(576, 4672), occupied(4672, d.table_slots)];
        assert_eq!(levels.iter().sum::<usize>(), 400, "one slot per stack: {levels:?}");
        assert!(levels[0] >= 48, "the first level fills up before stacks move on: {levels:?}");
        assert!(levels[3] == 0, "400 stacks stay out of the main level: {levels:?}");
        // SAFETY: `d` was never shared and is not used again.
        unsafe { d.destroy() };
    }

    #[test]
    fn concurrent_interning_agrees() {
        let d = Depot::create(1 << 16, 1 << 18).unwrap();
        let barrier = std::sync::Barrier::new(8);
        let results: Vec<Vec<StackId>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        (0..5000usize).map(|i| put(d, &[0xdead_0000 + i, 7, 8])).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &results[1..] {
            assert_eq!(r, &results[0]);
        }
        for (i, id) in results[0].iter().enumerate() {
            assert_eq!(d.frames(*id), &[0xdead_0000 + i, 7, 8]);
        }
        let mut distinct = results[0].clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 5000);
        // SAFETY: the threads have ended; `d` is not used again.
        unsafe { d.destroy() };
    }

    #[test]
    fn the_process_depot_is_shared_and_registered() {
        let f = [0x5eed_0001usize, 0x5eed_0002];
        let id = intern(&f, hash_frames(&f));
        assert_eq!(frames(id), &f);
        let s = depot_stats();
        assert!(s.stacks >= 1 && s.mapped_bytes > (1 << 28) && s.used_bytes >= 16, "{s:?}");
    }
}
