//! The scope map: which leak-check scope allocated the block at an address.
//!
//! # What it owns
//! [`SHARDS`]: 16 hash tables keyed by block address (sharded by address, so parallel
//! tests that allocate in scopes rarely meet on a lock), each an open-addressing table in
//! a mapping of its own ([`MmapVec`]): recording never allocates through the global
//! allocator, and is safe on the allocation path.
//!
//! # Why a map and a flag
//! A block allocated in a scope gets the `SCOPED` flag and an entry `address → scope`
//! here. Entries are not removed when blocks are freed (the free path stays as it is): an
//! entry is overwritten when a scope allocates at the address again, and a block
//! allocated outside any scope has no `SCOPED` flag, so a stale entry never attributes it.
//! A scope's entries go when the scope ends ([`forget`]), handed to the enclosing scope
//! when there is one.
//!
//! # Locks
//! A scope's check takes every shard's lock (in index order) before it stops the world,
//! and reads the tables through the guards while other threads are stopped: a stopped
//! thread never holds a shard lock then. `fork` takes them all too (`runtime::fork`).
//! Held, a shard lock waits for nothing.

use crate::os::MmapVec;
use crate::sync::{SpinGuard, SpinLock};

/// Number of shards; a power of two.
const SHARD_COUNT: usize = 16;

/// One entry: a block address (0: empty slot) and the scope id that allocated there last
/// (0: the scope ended; the entry is dead).
#[derive(Clone, Copy, Default)]
struct Entry {
    addr: usize,
    scope: u32,
}

/// An open-addressing table with linear probing.
///
/// Invariants: `slots.len()` is 0 or a power of two; `used` counts slots with `addr != 0`
/// and stays below 7/10 of the length (the table is rebuilt before); an address is in at
/// most one slot.
pub(crate) struct Table {
    slots: MmapVec<Entry>,
    used: usize,
}

// SAFETY: the table owns its mapping; the shard lock serializes every use.
unsafe impl Send for Table {}

/// The shards, each under its lock.
pub(crate) static SHARDS: [SpinLock<Table>; SHARD_COUNT] =
    [const { SpinLock::new(Table { slots: MmapVec::new(), used: 0 }) }; SHARD_COUNT];

/// The slot index where probing for `addr` starts, in a table of `len` (a power of two).
fn home(addr: usize, len: usize) -> usize {
    (addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) & (len - 1)
}

/// The shard of `addr`: blocks are at least 16 bytes apart, so the bits above 4 spread.
fn shard_of(addr: usize) -> usize {
    ((addr >> 4) ^ (addr >> 12) ^ (addr >> 20)) & (SHARD_COUNT - 1)
}

impl Table {
    /// The scope that allocated at `addr` last, or 0.
    pub(crate) fn get(&self, addr: usize) -> u32 {
        let len = self.slots.len();
        if len == 0 {
            return 0;
        }
        let mut i = home(addr, len);
        loop {
            let e = self.slots[i];
            if e.addr == addr {
                return e.scope;
            }
            if e.addr == 0 {
                return 0;
            }
            i = (i + 1) & (len - 1);
        }
    }

    /// Records that `scope` allocated at `addr`. False when out of memory (the block is
    /// then not attributed to the scope: a scoped check may miss it, never invent it).
    fn insert(&mut self, addr: usize, scope: u32) -> bool {
        if (self.used + 1) * 10 >= self.slots.len() * 7 && !self.rebuild((self.live() + 1) * 2) {
            return false;
        }
        let len = self.slots.len();
        let mut i = home(addr, len);
        loop {
            let e = &mut self.slots[i];
            if e.addr == addr || e.addr == 0 {
                self.used += usize::from(e.addr == 0);
                *e = Entry { addr, scope };
                return true;
            }
            i = (i + 1) & (len - 1);
        }
    }

    /// Entries of live scopes.
    fn live(&self) -> usize {
        self.slots.iter().filter(|e| e.addr != 0 && e.scope != 0).count()
    }

    /// Moves the live entries into a new table of at least `want` slots (at least 1024),
    /// dropping dead ones. False when out of memory (the table is unchanged).
    fn rebuild(&mut self, want: usize) -> bool {
        let len = want.next_power_of_two().max(1024) * 2;
        let mut fresh = Table { slots: MmapVec::new(), used: 0 };
        if !fresh.slots.resize(len, Entry::default()) {
            return false;
        }
        for e in self.slots.iter().filter(|e| e.addr != 0 && e.scope != 0) {
            let mut i = home(e.addr, len);
            while fresh.slots[i].addr != 0 {
                i = (i + 1) & (len - 1);
            }
            fresh.slots[i] = *e;
            fresh.used += 1;
        }
        *self = fresh;
        true
    }

    /// Gives the entries of `scope` to `heir` (0: they die).
    fn hand_over(&mut self, scope: u32, heir: u32) {
        for e in self.slots.iter_mut().filter(|e| e.scope == scope) {
            e.scope = heir;
        }
    }
}

/// Records that `scope` allocated the block at `addr`.
pub(crate) fn record(addr: usize, scope: u32) -> bool {
    SHARDS[shard_of(addr)].lock().insert(addr, scope)
}

/// Every shard, locked: what a scope's check reads while the world is stopped.
pub(crate) struct Locked {
    guards: [SpinGuard<'static, Table>; SHARD_COUNT],
}

impl Locked {
    /// The scope that allocated at `addr` last, or 0.
    pub(crate) fn get(&self, addr: usize) -> u32 {
        self.guards[shard_of(addr)].get(addr)
    }
}

/// Takes every shard's lock, in index order (the one order every taker follows).
pub(crate) fn lock_all() -> Locked {
    Locked { guards: core::array::from_fn(|i| SHARDS[i].lock()) }
}

/// Ends `scope`'s entries: they go to `heir` (the enclosing scope), or die when it is 0.
pub(crate) fn forget(locked: &mut Locked, scope: u32, heir: u32) {
    for g in locked.guards.iter_mut() {
        g.hand_over(scope, heir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_overwritten_handed_over_and_survive_rebuilds() {
        let mut t = Table { slots: MmapVec::new(), used: 0 };
        assert_eq!(t.get(0x1000), 0);
        for i in 1..5000usize {
            assert!(t.insert(i * 16, (i % 3) as u32 + 1));
        }
        assert!(t.slots.len().is_power_of_two() && t.used * 10 < t.slots.len() * 7);
        assert_eq!(t.get(16 * 7), 2);
        assert!(t.insert(16 * 7, 9));
        assert_eq!(t.get(16 * 7), 9, "a new allocation at the address overwrites");
        t.hand_over(1, 0);
        assert_eq!(t.get(16 * 3), 0, "entries of an ended scope are dead");
        t.hand_over(2, 5);
        assert_eq!(t.get(16 * 4), 5, "entries go to the heir");
        // Rebuilding drops dead entries and keeps the others.
        let live = t.live();
        assert!(t.rebuild(live * 2));
        assert_eq!(t.live(), live);
        assert_eq!((t.get(16 * 3), t.get(16 * 4), t.get(16 * 7)), (0, 5, 9));
        assert_eq!(t.get(16 * 100_000), 0);
    }
}
