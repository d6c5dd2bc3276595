//! The stack depot: an append-only, lock-free table interning return-address arrays.
//!
//! # Layout (all in `MAP_NORESERVE` mappings, touched lazily)
//! ```text
//! table:   [AtomicU32; 2^22]   open addressing by hash; 0 = empty, else a stack id
//! records: [Record; 2^22]      id -> (hash, offset of frames, frame count)
//! frames:  [usize; 2^25]       the return addresses, appended
//! ```
//! Insert: claim a record id and frame space with `fetch_add`, write them, then publish the
//! id in an empty table slot with a CAS (Release; readers load with Acquire). A lost CAS
//! re-reads the slot: the same stack published by another thread wins, and our record is
//! wasted (rare: two threads meeting a new stack at the same instant). Nothing is ever
//! removed, so ids stay valid for the life of the process. When full, `intern` returns
//! `StackId::NONE` and counts the drop.

use super::StackId;
use crate::os;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

const TABLE_SLOTS: usize = 1 << 22;
const MAX_STACKS: usize = TABLE_SLOTS * 3 / 4;
const MAX_FRAMES: usize = 1 << 25;

#[derive(Clone, Copy)]
#[repr(C)]
struct Record {
    hash: u64,
    offset: u32,
    len: u32,
}

struct Depot {
    table: *const AtomicU32,
    records: *mut Record,
    frames: *mut usize,
}

static DEPOT: AtomicPtr<Depot> = AtomicPtr::new(core::ptr::null_mut());
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
static NEXT_FRAME: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn map_registered(bytes: usize) -> Option<*mut u8> {
    let p = os::map(bytes)?.as_ptr();
    os::register_own_mapping(p as usize, bytes);
    Some(p)
}

#[cold]
fn init() -> *mut Depot {
    let table_bytes = TABLE_SLOTS * 4;
    let record_bytes = MAX_STACKS * core::mem::size_of::<Record>();
    let frame_bytes = MAX_FRAMES * 8;
    let header = os::OS_PAGE;
    let Some(base) = map_registered(header + table_bytes + record_bytes + frame_bytes) else {
        return core::ptr::null_mut();
    };
    let depot = base.cast::<Depot>();
    // SAFETY: the mapping holds the header page and the three arrays after it.
    unsafe {
        depot.write(Depot {
            table: base.add(header).cast(),
            records: base.add(header + table_bytes).cast(),
            frames: base.add(header + table_bytes + record_bytes).cast(),
        });
    }
    match DEPOT.compare_exchange(core::ptr::null_mut(), depot, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => depot,
        // Lost the race: another thread's depot is the one (ours stays mapped, unused:
        // this happens at most once per racing thread, at start-up).
        Err(winner) => winner,
    }
}

#[inline]
fn depot() -> Option<&'static Depot> {
    let mut d = DEPOT.load(Ordering::Acquire);
    if d.is_null() {
        d = init();
    }
    // SAFETY: a published depot is never unmapped.
    unsafe { d.as_ref() }
}

impl Depot {
    fn slot(&self, i: usize) -> &AtomicU32 {
        // SAFETY: i < TABLE_SLOTS (callers mask).
        unsafe { &*self.table.add(i) }
    }

    fn record(&self, id: u32) -> Record {
        // SAFETY: published ids index written records (Acquire on the slot or on the id).
        unsafe { self.records.add(id as usize).read() }
    }

    fn frames_of(&self, r: Record) -> &'static [usize] {
        // SAFETY: a record's frames were written before its id was published.
        unsafe { core::slice::from_raw_parts(self.frames.add(r.offset as usize), r.len as usize) }
    }

    fn matches(&self, id: u32, frames: &[usize], hash: u64) -> bool {
        let r = self.record(id);
        r.hash == hash && self.frames_of(r) == frames
    }

    /// Writes a new record; returns its id, or `None` when full.
    fn append(&self, frames: &[usize], hash: u64) -> Option<u32> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let offset = NEXT_FRAME.fetch_add(frames.len(), Ordering::Relaxed);
        if id >= MAX_STACKS || offset + frames.len() > MAX_FRAMES {
            return None;
        }
        // SAFETY: id and the frame range were claimed by the fetch_adds above: ours alone.
        unsafe {
            core::ptr::copy_nonoverlapping(frames.as_ptr(), self.frames.add(offset), frames.len());
            self.records.add(id).write(Record { hash, offset: offset as u32, len: frames.len() as u32 });
        }
        Some(id as u32)
    }
}

/// Interns `frames` (with their precomputed `hash`), returning its id.
pub(super) fn intern(frames: &[usize], hash: u64) -> StackId {
    let Some(d) = depot() else {
        return StackId::NONE;
    };
    let mut i = hash as usize & (TABLE_SLOTS - 1);
    let mut mine: Option<u32> = None;
    for _ in 0..TABLE_SLOTS {
        let cur = d.slot(i).load(Ordering::Acquire);
        if cur == 0 {
            let id = match mine {
                Some(id) => id,
                None => match d.append(frames, hash) {
                    Some(id) => *mine.insert(id),
                    None => {
                        DROPPED.fetch_add(1, Ordering::Relaxed);
                        return StackId::NONE;
                    }
                },
            };
            match d.slot(i).compare_exchange(0, id, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return StackId(id),
                Err(other) if d.matches(other, frames, hash) => return StackId(other),
                Err(_) => {}
            }
        } else if d.matches(cur, frames, hash) {
            return StackId(cur);
        }
        i = (i + 1) & (TABLE_SLOTS - 1);
    }
    StackId::NONE
}

/// The frames of a stack, innermost first; empty for `StackId::NONE` or an unknown id.
pub(crate) fn frames(id: StackId) -> &'static [usize] {
    let Some(d) = depot() else { return &[] };
    let id = id.as_u32();
    if id == 0 || id as usize >= NEXT_ID.load(Ordering::Acquire).min(MAX_STACKS) {
        return &[];
    }
    d.frames_of(d.record(id))
}

/// Depot statistics.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DepotStats {
    /// Stacks interned.
    pub(crate) stacks: u64,
    /// Bytes of return addresses stored.
    pub(crate) frame_bytes: u64,
    /// Stacks not recorded because the depot was full.
    pub(crate) dropped: u64,
}

pub(crate) fn depot_stats() -> DepotStats {
    DepotStats {
        stacks: (NEXT_ID.load(Ordering::Relaxed).min(MAX_STACKS) - 1) as u64,
        frame_bytes: (NEXT_FRAME.load(Ordering::Relaxed).min(MAX_FRAMES) * 8) as u64,
        dropped: DROPPED.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_idempotent_and_distinguishes_stacks() {
        let a = [0x1000usize, 0x2000, 0x3000];
        let b = [0x1000usize, 0x2000, 0x3001];
        let (ia, ib) = (intern(&a, 42), intern(&b, 43));
        assert_ne!(ia, StackId::NONE);
        assert_ne!(ia, ib);
        assert_eq!(intern(&a, 42), ia);
        assert_eq!(frames(ia), &a);
        assert_eq!(frames(ib), &b);
        // Same hash, different frames: still distinct.
        let c = [0x9usize];
        let ic = intern(&c, 42);
        assert_ne!(ic, ia);
        assert_eq!(frames(ic), &c);
        assert!(frames(StackId::NONE).is_empty());
        assert!(frames(StackId::from_u32(u32::MAX)).is_empty());
    }

    #[test]
    fn concurrent_interning_agrees() {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..2000usize)
                        .map(|i| intern(&[0xdead_0000 + i, 7, 8], (i as u64).wrapping_mul(0x9E37_79B9)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results: Vec<Vec<StackId>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for r in &results[1..] {
            assert_eq!(r, &results[0]);
        }
        for (i, id) in results[0].iter().enumerate() {
            assert_eq!(frames(*id), &[0xdead_0000 + i, 7, 8]);
        }
    }
}
