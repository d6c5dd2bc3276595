//! The rule cache: one compact unwind rule per code address, in a lock-free table.
//!
//! # What it owns
//! [`Rule`] (how to find a frame's caller from its registers, in 32 bits) and the
//! process-wide table that maps a code address to its rule: [`lookup`] (any thread,
//! no lock, no allocation: two loads), [`insert`] and [`clear`] (callers serialize them:
//! `cfi` calls them under its lock). `unwind` looks rules up; `cfi` computes the rules
//! of the addresses the table does not know and stores them here.
//!
//! # Layout (one `MAP_NORESERVE` mapping of 512 KiB, made on the first insert, touched
//! lazily, never scanned as a root)
//! 2^15 sets of two `AtomicU64` slots. An address `a` (below 2^47, as every user-space
//! address on x86-64 Linux with 4-level page tables) belongs to the set
//! `(a ^ a >> 15) mod 2^15`, and its slot holds `(a >> 15) << 32 | rule`: the set and the
//! tag `a >> 15` give back `a`, so a slot names its address exactly. A slot is one atomic
//! word, so a reader sees either a whole entry or none, whatever writers do meanwhile; 0
//! is empty (no rule is 0). A new entry goes to a set's first slot, whose entry moves to
//! the second: a full set forgets its older entry.
//!
//! # Invariants
//! - The table, once published in `TABLE`, is never unmapped.
//! - An entry was, when stored, the rule `cfi` computed for its address from the object
//!   loaded there. `cfi` clears the table when the set of loaded objects changes (see
//!   there for what that guarantees and what it does not).

use crate::os;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// How to unwind one frame, given the frame's own address (its `pc`), stack pointer and
/// frame pointer: the CFA (the caller's stack pointer) is `rsp` or `rbp` plus an offset,
/// the return address is at CFA - 8, and the caller's `rbp` is saved at CFA - 8 * `slot`,
/// or unchanged when `slot` is 0. Or: no such rule ([`Rule::FRAME_POINTER`], step by the
/// frame-pointer record), or the end of the stack ([`Rule::END`]).
///
/// Bits: 0-2 the kind, 3-10 the `rbp` slot, 11-31 the CFA offset in bytes (below 2 MiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Rule(u32);

const KIND_BITS: u32 = 3;
const SLOT_BITS: u32 = 8;
const OFFSET_SHIFT: u32 = KIND_BITS + SLOT_BITS;

/// Kinds of rule (0 is never a rule: it marks an empty slot).
const CFA_RSP: u32 = 1;
const CFA_RBP: u32 = 2;
const FRAME_POINTER: u32 = 3;
const END: u32 = 4;

/// The CFA base register of a [`Rule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Base {
    Rsp,
    Rbp,
}

/// A rule, decoded: what [`Rule::decode`] gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// CFA = base + offset; return address at CFA - 8; `rbp` at CFA - 8 * slot (0: kept).
    Cfa { base: Base, offset: u32, rbp_slot: u32 },
    /// No rule: follow the frame-pointer record at `rbp`.
    FramePointer,
    /// The outermost frame, or a signal frame: the walk ends.
    End,
}

impl Rule {
    /// Frames with no usable rule: step by the frame-pointer record.
    pub(super) const FRAME_POINTER: Rule = Rule(FRAME_POINTER);
    /// The end of the stack.
    pub(super) const END: Rule = Rule(END);
    /// The frame of a function that keeps `rbp` as its frame pointer, past its prologue:
    /// CFA = rbp + 16, `rbp` saved at CFA - 16. Walks take it as one frame-pointer step.
    pub(super) const FRAME_RECORD: Rule = Rule(CFA_RBP | 2 << KIND_BITS | 16 << OFFSET_SHIFT);

    /// Largest CFA offset a rule can hold.
    pub(super) const MAX_OFFSET: u32 = (1 << (32 - OFFSET_SHIFT)) - 1;
    /// Largest `rbp` slot a rule can hold.
    pub(super) const MAX_SLOT: u32 = (1 << SLOT_BITS) - 1;

    /// CFA = `base` + `offset`, `rbp` saved at CFA - 8 * `rbp_slot` (0: unchanged). `None`
    /// when the numbers do not fit ([`Self::MAX_OFFSET`], [`Self::MAX_SLOT`]).
    pub(super) fn cfa(base: Base, offset: u32, rbp_slot: u32) -> Option<Rule> {
        if offset > Self::MAX_OFFSET || rbp_slot > Self::MAX_SLOT {
            return None;
        }
        let kind = match base {
            Base::Rsp => CFA_RSP,
            Base::Rbp => CFA_RBP,
        };
        Some(Rule(kind | rbp_slot << KIND_BITS | offset << OFFSET_SHIFT))
    }

    /// What the rule says to do.
    #[inline(always)]
    pub(super) fn decode(self) -> Step {
        let offset = self.0 >> OFFSET_SHIFT;
        let rbp_slot = (self.0 >> KIND_BITS) & Self::MAX_SLOT;
        match self.0 & ((1 << KIND_BITS) - 1) {
            CFA_RSP => Step::Cfa { base: Base::Rsp, offset, rbp_slot },
            CFA_RBP => Step::Cfa { base: Base::Rbp, offset, rbp_slot },
            FRAME_POINTER => Step::FramePointer,
            _ => Step::End,
        }
    }
}

/// Sets in the table (a power of two), and the bits that select one.
const SET_BITS: u32 = 15;
const SETS: usize = 1 << SET_BITS;
/// Bytes of the table's mapping.
const TABLE_BYTES: usize = SETS * 2 * 8;
/// Addresses at or above this are not cached (their tag would not fit in 32 bits).
pub(super) const CACHEABLE_BELOW: usize = 1 << (32 + SET_BITS);

static TABLE: AtomicPtr<AtomicU64> = AtomicPtr::new(core::ptr::null_mut());

/// The set of `addr` (index of its first slot) and the entry that holds `rule` for it.
#[inline(always)]
fn place(addr: usize, rule: u32) -> (usize, u64) {
    let set = (addr ^ (addr >> SET_BITS)) & (SETS - 1);
    (set * 2, ((addr >> SET_BITS) as u64) << 32 | rule as u64)
}

/// The two slots of the set whose first slot is `first`, in a table published in `TABLE`.
/// A safe `fn` private to the table whose callers ensure `first` comes from [`place`]
/// (an even index below `2 * SETS`, checked in debug builds) and `table` from `TABLE`.
#[inline(always)]
fn set_of(table: *const AtomicU64, first: usize) -> &'static [AtomicU64; 2] {
    debug_assert!(first.is_multiple_of(2) && first < 2 * SETS);
    // SAFETY: `table` is a published table (callers): a live mapping of `2 * SETS`
    // `AtomicU64`s, zero-filled when made (a valid value), never unmapped (module
    // invariant), only accessed atomically. `first + 1 < 2 * SETS` (callers), so both
    // slots are in bounds, and 8-byte aligned (the mapping is page aligned).
    unsafe { &*table.add(first).cast::<[AtomicU64; 2]>() }
}

/// The cached rule for the code address `addr`, if any. Two loads; no lock.
#[inline(always)]
pub(super) fn lookup(addr: usize) -> Option<Rule> {
    let table = TABLE.load(Ordering::Acquire);
    if table.is_null() || addr >= CACHEABLE_BELOW {
        return None;
    }
    let (first, want) = place(addr, 0);
    let set = set_of(table, first);
    for slot in set {
        let e = slot.load(Ordering::Relaxed);
        if e >> 32 == want >> 32 && e as u32 != 0 {
            return Some(Rule(e as u32));
        }
    }
    None
}

/// Caches `rule` for `addr`; no-op when `addr` is not cacheable or the table cannot be
/// mapped. Callers serialize [`insert`] and [`clear`] (one writer at a time).
pub(super) fn insert(addr: usize, rule: Rule) {
    if addr >= CACHEABLE_BELOW {
        return;
    }
    let Some(table) = table_or_make() else { return };
    let (first, entry) = place(addr, rule.0);
    let set = set_of(table, first);
    let (newer, older) = (set[0].load(Ordering::Relaxed), set[1].load(Ordering::Relaxed));
    if newer == 0 || newer >> 32 == entry >> 32 {
        set[0].store(entry, Ordering::Relaxed);
    } else if older >> 32 == entry >> 32 && older != 0 {
        set[1].store(entry, Ordering::Relaxed);
    } else {
        // Slot 0 holds the newer entry: it moves to slot 1 (the older one goes).
        set[1].store(newer, Ordering::Relaxed);
        set[0].store(entry, Ordering::Relaxed);
    }
}

/// Forgets every cached rule. Readers racing with it see each slot either as it was or
/// empty.
pub(super) fn clear() {
    let table = TABLE.load(Ordering::Acquire);
    if table.is_null() {
        return;
    }
    for first in (0..2 * SETS).step_by(2) {
        for slot in set_of(table, first) {
            slot.store(0, Ordering::Relaxed);
        }
    }
}

/// The published table, made and published on first use. `None` when the mapping fails.
fn table_or_make() -> Option<*const AtomicU64> {
    let table = TABLE.load(Ordering::Acquire);
    if !table.is_null() {
        return Some(table);
    }
    let base = os::map(TABLE_BYTES)?.as_ptr();
    let fresh = base.cast::<AtomicU64>();
    match TABLE.compare_exchange(core::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            os::register_own_mapping(base as usize, TABLE_BYTES);
            Some(fresh)
        }
        Err(other) => {
            // SAFETY: `os::unmap`'s bullets: `[base, base + TABLE_BYTES)` is the whole
            // mapping just made by `os::map`; it was never published, so nothing refers
            // to it.
            unsafe { os::unmap(base, TABLE_BYTES) };
            Some(other)
        }
    }
}
