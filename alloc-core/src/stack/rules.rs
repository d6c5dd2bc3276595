//! The rule cache: one compact unwind rule per code address, in a lock-free table.
//!
//! # What it owns
//! [`Rule`] (how to find a frame's caller from its registers, in 32 bits) and the
//! process-wide table that maps a code address to its rule: [`Table::lookup`] (any
//! thread, no lock, no allocation: two loads at most, in the [`table`] a walk loads once), [`insert`] and [`clear`] (callers serialize them:
//! `cfi` calls them under its lock). `unwind` looks rules up; `cfi` computes the rules
//! of the addresses the table does not know and stores them here.
//!
//! # Layout (one `MAP_NORESERVE` mapping of 128 KiB, made and committed at the first
//! walk, never scanned as a root)
//! 2^13 sets of two `AtomicU64` slots. An address `a` (below 2^47, as every user-space
//! address on x86-64 Linux with 4-level page tables) belongs to the set
//! `(a ^ a >> 13) mod 2^13`, and its slot holds `(a >> 13) << 30 | rule` (a rule takes 30
//! bits): the set and the tag `a >> 13` give back `a`, so a slot names its address
//! exactly. A slot is one atomic word, so a reader sees either a whole entry or none,
//! whatever writers do meanwhile; 0 is empty (no rule is 0). A new entry goes to a set's
//! first slot, whose entry moves to the second: a full set forgets its older entry.
//!
//! # Invariants
//! - The table, once published in `TABLE`, is never unmapped.
//! - An entry was, when stored, the rule `cfi` computed for its address from the object
//!   loaded there. `cfi` clears the table when the set of loaded objects changes (see
//!   there for what that guarantees and what it does not).

use crate::os;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// How to unwind one frame, given the frame's own address (its `pc`), stack pointer and
/// frame pointer: the CFA (the caller's stack pointer) is `rsp` or `rbp` plus an offset,
/// the return address is at CFA - 8, and the caller's `rbp` is saved at CFA - 8 * `slot`,
/// or unchanged when `slot` is 0. Or: no such rule ([`Rule::FRAME_POINTER`], step by the
/// frame-pointer record), or the end of the stack ([`Rule::END`]).
///
/// Bits: 0-2 the kind, 3-10 the `rbp` slot, 11-29 the CFA offset in bytes (below 512
/// KiB); bits 30 and 31 are clear (an entry of the table keeps 30 bits of rule).
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
    pub(super) const MAX_OFFSET: u32 = (1 << (RULE_BITS - OFFSET_SHIFT)) - 1;
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

/// Bits of a rule, in a table entry (the rest of the entry is the address's tag).
const RULE_BITS: u32 = 30;
const RULE_MASK: u64 = (1 << RULE_BITS) - 1;
/// Sets in the table (a power of two), and the bits that select one: 2^13 sets of two
/// slots, room for 16,384 rules in 128 KiB (a test binary uses a few hundred; 512 KiB,
/// committed at the first walk, was a tenth of a test process's start-up).
pub(super) const SET_BITS: u32 = 13;
const SETS: usize = 1 << SET_BITS;
/// Bytes of the table's mapping.
const TABLE_BYTES: usize = SETS * 2 * 8;
/// Addresses at or above this are not cached (their tag would not fit in 32 bits).
pub(super) const CACHEABLE_BELOW: usize = 1 << (64 - RULE_BITS + SET_BITS);

static TABLE: AtomicPtr<AtomicU64> = AtomicPtr::new(core::ptr::null_mut());
/// Some entry was stored since the table was made or last cleared: a [`clear`] has
/// something to do (the first miss of a process clears, since it finds the loader's
/// counts new; writing the whole table then would commit it again for nothing).
static STORED: AtomicBool = AtomicBool::new(false);
/// Bumped by every [`clear`]: a [`RuleMemo`] filled under another generation is stale.
static GENERATION: AtomicU32 = AtomicU32::new(0);

/// The number of [`clear`]s so far: rules learned under another generation may be stale.
#[inline(always)]
pub(super) fn generation() -> u32 {
    GENERATION.load(Ordering::Acquire)
}

/// The set of `addr` (index of its first slot) and the entry that holds `rule` for it.
#[inline(always)]
fn place(addr: usize, rule: u32) -> (usize, u64) {
    let set = (addr ^ (addr >> SET_BITS)) & (SETS - 1);
    (set * 2, ((addr >> SET_BITS) as u64) << RULE_BITS | rule as u64)
}

/// The two slots of the set whose first slot is `first`, in a table published in `TABLE`.
/// A safe `fn` private to the table whose callers ensure `first` comes from [`place`]
/// (an even index below `2 * SETS`, checked in debug builds) and `table` from `TABLE`,
/// not null.
#[inline(always)]
fn set_of(table: *const AtomicU64, first: usize) -> &'static [AtomicU64; 2] {
    debug_assert!(first.is_multiple_of(2) && first < 2 * SETS);
    // SAFETY: `table` is a published table (callers): a live mapping of `2 * SETS`
    // `AtomicU64`s, zero-filled when made (a valid value), never unmapped (module
    // invariant), only accessed atomically. `first + 1 < 2 * SETS` (callers), so both
    // slots are in bounds, and 8-byte aligned (the mapping is page aligned).
    unsafe { &*table.add(first).cast::<[AtomicU64; 2]>() }
}

/// The process-wide table, as a walk holds it: loaded (or made) once per walk.
/// Invariant: the pointer is a table published in `TABLE` (not null).
#[derive(Clone, Copy, Debug)]
pub(super) struct Table(*const AtomicU64);

/// The table, made and published on first use; `None` only when it cannot be mapped.
#[inline(always)]
pub(super) fn table() -> Option<Table> {
    let table = TABLE.load(Ordering::Acquire);
    if table.is_null() {
        return table_or_make().map(Table);
    }
    Some(Table(table))
}

impl Table {
    /// The cached rule for the code address `addr`, if any: two loads at most, no lock.
    ///
    /// The tag compared is the whole of `addr >> 13`, so an address that is not cacheable
    /// (at or above [`CACHEABLE_BELOW`]) never matches. An address below 2^13 (never code:
    /// the kernel maps nothing there) matches an empty slot, whose rule 0 decodes as
    /// [`Step::End`].
    #[inline(always)]
    pub(super) fn lookup(self, addr: usize) -> Option<Rule> {
        let (first, _) = place(addr, 0);
        let tag = (addr >> SET_BITS) as u64;
        for slot in set_of(self.0, first) {
            let e = slot.load(Ordering::Relaxed);
            if e >> RULE_BITS == tag {
                return Some(Rule((e & RULE_MASK) as u32));
            }
        }
        None
    }
}

/// Caches `rule` for `addr`; no-op when `addr` is not cacheable or the table cannot be
/// mapped. Callers serialize [`insert`] and [`clear`] (one writer at a time).
pub(super) fn insert(addr: usize, rule: Rule) {
    if addr >= CACHEABLE_BELOW {
        return;
    }
    let Some(Table(table)) = table() else { return };
    let (first, entry) = place(addr, rule.0);
    let set = set_of(table, first);
    STORED.store(true, Ordering::Relaxed);
    let (newer, older) = (set[0].load(Ordering::Relaxed), set[1].load(Ordering::Relaxed));
    if newer == 0 || newer >> RULE_BITS == entry >> RULE_BITS {
        set[0].store(entry, Ordering::Relaxed);
    } else if older >> RULE_BITS == entry >> RULE_BITS && older != 0 {
        set[1].store(entry, Ordering::Relaxed);
    } else {
        // Slot 0 holds the newer entry: it moves to slot 1 (the older one goes).
        set[1].store(newer, Ordering::Relaxed);
        set[0].store(entry, Ordering::Relaxed);
    }
}

/// Forgets every cached rule, here and (through [`GENERATION`]) in every [`RuleMemo`] at
/// its next walk. Readers racing with it see each slot either as it was or empty. The
/// table's pages go back to the kernel (they read as zero after), or, if it refuses, are
/// written over.
pub(super) fn clear() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    let table = TABLE.load(Ordering::Acquire);
    if table.is_null() || !STORED.swap(false, Ordering::Relaxed) {
        return;
    }
    // SAFETY: `decommit`'s bullets: the table is a private anonymous mapping of ours
    // (`os::map`), page aligned, `TABLE_BYTES` long (a multiple of the page); its old
    // entries are what we are dropping, and a slot read as zero is an empty one (slots
    // are only read and written atomically, a word at a time, so a racing reader sees
    // a slot's old entry or zero).
    if unsafe { os::decommit(table as *mut u8, TABLE_BYTES) } {
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
    // Entries land all over the table (that is what the hash is for): committing it now
    // costs one call instead of a read fault and a write fault per page as it fills.
    // SAFETY: `populate_zeroed`'s bullet: a fresh mapping of ours, page aligned, zero.
    unsafe { os::populate_zeroed(base, TABLE_BYTES) };
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

/// Entries of a [`RuleMemo`].
const MEMO_SLOTS: usize = 128;

/// A thread's own small copy of the rules it used last, placed by the stack pointer of
/// the frame they were used for and tagged with their address: plain data in the
/// thread's heap (next to its stack cache). A walk through frames it walked before (the
/// outer frames of most stacks of a thread stay at the same stack addresses) finds each
/// rule in memory it just touched, and, since the slot depends on the stack pointer and
/// not on the return address just loaded, the CPU can load the rule while the return
/// address is still on its way: the check that the tag matches is a well-predicted
/// branch, off the chain of dependent loads that limits a walk's speed. Invariant:
/// `rules[i]` is the rule the table gave (or `cfi` computed) for the address `addrs[i]`
/// under generation `generation`, or `addrs[i]` is 0.
#[derive(Debug)]
pub(crate) struct RuleMemo {
    addrs: [usize; MEMO_SLOTS],
    rules: [u32; MEMO_SLOTS],
    generation: u32,
}

impl RuleMemo {
    /// An empty memo.
    pub(crate) const fn new() -> Self {
        Self { addrs: [0; MEMO_SLOTS], rules: [0; MEMO_SLOTS], generation: 0 }
    }

    /// Forgets the memo if the table was cleared since it was filled. Once per walk.
    #[inline(always)]
    pub(super) fn sync(&mut self) {
        let now = GENERATION.load(Ordering::Acquire);
        if now != self.generation {
            self.forget(now);
        }
    }

    #[cold]
    #[inline(never)]
    fn forget(&mut self, generation: u32) {
        self.addrs = [0; MEMO_SLOTS];
        self.generation = generation;
    }

    /// The slot of a frame whose stack pointer is `sp` (frames are 16-byte aligned).
    #[inline(always)]
    fn slot(sp: usize) -> usize {
        (sp >> 4) % MEMO_SLOTS
    }

    /// The rule of `addr`, for a frame whose stack pointer is `sp`: from the memo, else
    /// from `table` (then remembered).
    #[inline(always)]
    pub(super) fn lookup(&mut self, table: Table, addr: usize, sp: usize) -> Option<Rule> {
        let i = Self::slot(sp);
        let rule = Rule(self.rules[i]);
        if self.addrs[i] == addr {
            return Some(rule);
        }
        let rule = table.lookup(addr)?;
        self.remember(addr, sp, rule);
        Some(rule)
    }

    /// Remembers the rule of `addr`, used for a frame whose stack pointer is `sp`.
    #[inline(always)]
    pub(super) fn remember(&mut self, addr: usize, sp: usize, rule: Rule) {
        let i = Self::slot(sp);
        self.addrs[i] = addr;
        self.rules[i] = rule.0;
    }
}
