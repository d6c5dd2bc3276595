//! A sweep of generation `g`: the leak check restricted to the blocks of generations
//! `0..=g`, as CPython's `gc.collect(g)` restricts a collection.
//!
//! # What it owns
//! [`analyze_generation`], the phases of one sweep on any [`HeapView`], and its result
//! [`SweepAnalysis`]. The runtime's sweeper (`runtime::sweep`) stops the world and calls
//! it, as the check calls `leak::analyze`.
//!
//! # How a sweep differs from the check
//! - Blocks of generations above `g` are taken as live without proof: they are marked
//!   before the flood fill and never reported. Their contents are roots: every old block
//!   is scanned (the fallback path, [`OldBlocks::Scan`]), or only the parts written since
//!   the last sweep, which the caller passes as extra root ranges ([`OldBlocks::Written`]):
//!   a block allocated after the last sweep can only be referenced from memory written
//!   after it.
//! - Survivors of generations `0..=g` move to generation `g + 1` (at most 2).
//! - A sweep of generation 0 walks the young blocks only ([`Walk::Young`]: the heap
//!   knows where they are, see `heap::walk`): looking for the ignored ones, classifying,
//!   promoting. With the kernel's record it then costs the roots, what was written and
//!   what is young, not the number of blocks in the heap.
//! - Only blocks not reported before are new leaks; they get the `REPORTED` flag. All the
//!   unreachable blocks of the swept generations are classified together, so a new block
//!   hanging off an old leak is indirect, as in the check.
//!
//! Promotion and the `REPORTED` flag are written only when every other thread stopped
//! (the caller treats a sweep of a world not stopped as failed and reports nothing).

use super::classify::{self, LeakedBlock};
use super::failure::Failure;
use super::mark::{Marker, RootQueue};
use super::roots::{self, RootOptions, RootPlan, RootRange};
use super::stop::StoppedWorld;
use super::view::{BlockDesc, HeapView, Promotion, Walk};
use super::written::WrittenPages;
use crate::os::MmapVec;

/// The oldest generation.
pub(crate) const OLDEST: u8 = 2;

/// How a young sweep treats the contents of the blocks older than the ones it sweeps.
pub(crate) enum OldBlocks<'a> {
    /// Scan every old block whole (no record of what was written).
    Scan,
    /// Scan only these ranges of them, written since the last sweep, as extra roots.
    #[cfg_attr(not(test), allow(dead_code))]
    Written(&'a [RootRange]),
    /// Ask the kernel what was written since the last young sweep (only for sweeps of
    /// generation 0: see `leak::written`), in root mappings and old blocks alike.
    Tracked(&'a mut WrittenPages),
}

/// What a sweep found.
#[derive(Default)]
pub(crate) struct SweepAnalysis {
    /// The unreachable blocks of the swept generations not reported before, in id order.
    pub(crate) new_leaks: MmapVec<LeakedBlock>,
    /// Unreachable blocks a sweep had already reported.
    pub(crate) old_leaks: u64,
    /// Live blocks of the swept generations.
    pub(crate) swept_blocks: u64,
    /// Reachable blocks of the swept generations: they moved up a generation.
    pub(crate) survivors: u64,
    /// Reachable bytes of the swept generations.
    pub(crate) survivor_bytes: u64,
    /// Blocks in the oldest generation after the sweep (CPython's `long_lived_total`
    /// after a full sweep). Counted by sweeps of generations 1 and 2 only: a sweep of
    /// generation 0 visits the young blocks alone.
    pub(crate) oldest_blocks: u64,
    pub(crate) words_scanned: u64,
    /// Bytes of root ranges scanned (not counting old blocks scanned whole).
    pub(crate) root_bytes: u64,
    /// With [`OldBlocks::Tracked`]: the pages written since the last young sweep, and
    /// the pages of old blocks in heap segments new to the record (scanned whole).
    pub(crate) written_pages: u64,
    pub(crate) new_pages: u64,
    /// With [`OldBlocks::Tracked`]: the pages of old blocks in heap segments left
    /// unprotected (found almost wholly written before), scanned whole.
    pub(crate) hot_pages: u64,
    /// The kernel's record was read.
    pub(crate) tracked: bool,
}

/// Roots → flood fill → classify for the blocks of generations `0..=g` (`g` at most
/// [`OLDEST`]; `g == OLDEST` is a full sweep and `old` does not matter). The other
/// arguments are `leak::analyze`'s. Allocates only `MmapVec`s. With
/// [`OldBlocks::Tracked`], a failure after the kernel's record was read invalidates it
/// (nothing was promoted, so the next young sweep must not trust what it was told).
#[allow(clippy::too_many_arguments)]
pub(crate) fn analyze_generation<V: HeapView>(
    view: &V,
    world: &StoppedWorld,
    plan: &RootPlan,
    opts: &RootOptions,
    sp: usize,
    g: u8,
    old: OldBlocks<'_>,
) -> Result<SweepAnalysis, Failure> {
    debug_assert!(g <= OLDEST, "generations are 0, 1 and 2");
    let (mut maps, mut roots) = (MmapVec::new(), MmapVec::new());
    if !maps.reserve(1 << 16) {
        return Err(Failure::OutOfMemory { what: "the mapping list" });
    }
    roots::collect_roots(view, world, plan, opts, sp, &mut maps, &mut roots)?;
    let mut young_roots = MmapVec::new();
    let mut a = SweepAnalysis::default();
    let (scan_old, extra, tracked): (bool, &[RootRange], Option<&mut WrittenPages>) = match old {
        OldBlocks::Written(w) => (false, w, None),
        // The record is read only in a world wholly stopped: a sweep that is not will
        // fail and promote nothing.
        OldBlocks::Tracked(pages) if world.all_stopped() && g < OLDEST => {
            let Ok(found) = pages.young_roots(view, &roots, g, &mut young_roots) else {
                pages.invalidate();
                return Err(Failure::OutOfMemory { what: "the root list" });
            };
            (a.written_pages, a.new_pages, a.hot_pages, a.tracked) =
                (found.written_pages, found.new_pages, found.hot_pages, true);
            roots.clear();
            (false, &young_roots[..], Some(pages))
        }
        _ => (true, &[], None),
    };
    let result = mark_and_classify(view, &roots, extra, g, scan_old, world.all_stopped(), &mut a);
    if let (Err(_), Some(pages)) = (&result, tracked) {
        pages.invalidate();
    }
    result.map(|()| a)
}

/// Marks from `roots` and `extra`, classifies the unreachable blocks of generations
/// `0..=g`, records the new leaks and promotes the survivors (flags written when
/// `write`) into `a`.
fn mark_and_classify<V: HeapView>(
    view: &V,
    roots: &[RootRange],
    extra: &[RootRange],
    g: u8,
    scan_old: bool,
    write: bool,
    a: &mut SweepAnalysis,
) -> Result<(), Failure> {
    let mut marker = Marker::new(view).ok_or(Failure::OutOfMemory { what: "the mark bits" })?;
    // On the fallback path old blocks are marked as live and scanned whole first. On the
    // other they are never queued, not even when a root points to one: only their written
    // parts (in `extra`) are roots. Ignored blocks are roots either way; an old one's
    // written parts are in `extra` too, so a sweep of generation 0 looks for the young
    // ones only.
    let walk = if g == 0 { Walk::Young } else { Walk::All };
    if scan_old {
        marker.mark_roots(Walk::All, &|d| d.ignored || d.generation > g, &|_| true);
    } else {
        marker.scan_up_to_generation = g;
        if view.may_hold_ignored() {
            marker.mark_roots(walk, &|d| d.ignored && d.generation <= g, &|_| true);
        }
    }
    // The roots are not scanned here but by the fill as it goes: a young sweep's roots
    // are mostly the written parts of old blocks (whole heap segments, where they were
    // written almost whole), which the fill then shares with the mark helper.
    let queue = RootQueue::new(roots, extra);
    a.root_bytes += queue.bytes();
    marker.flood_fill_from(&queue);
    if marker.lost {
        return Err(Failure::OutOfMemory { what: "the mark stack" });
    }
    // One walk lists the unreachable blocks, counts, and promotes the survivors.
    let mut list = classify::LeakedList::new(view, walk);
    promote(view, walk, &marker.marks, g, write, a, &mut list);
    let leaked = classify::classify_listed(view, list)?;
    a.words_scanned = marker.stats.words_scanned;
    for l in leaked.iter() {
        if l.desc.reported {
            a.old_leaks += 1;
        } else {
            if write {
                view.set_reported(l.desc.start);
            }
            if !a.new_leaks.push(*l) {
                return Err(Failure::OutOfMemory { what: "the list of leaked blocks" });
            }
        }
    }
    if write {
        view.young_blocks_promoted();
    }
    Ok(())
}

/// Moves the reachable blocks of generations `0..=g` to `g + 1` (when `write`); counts
/// the swept blocks, the survivors and (when `walk` visits every block) the oldest
/// generation; lists the unreachable blocks of generations `0..=g` (not ignored) in
/// `leaked`.
fn promote(
    view: &impl HeapView,
    walk: Walk,
    marks: &super::mark::Marks,
    g: u8,
    write: bool,
    a: &mut SweepAnalysis,
    leaked: &mut classify::LeakedList,
) {
    debug_assert!(walk == Walk::All || g == 0, "only generation 0 has a walk of its own");
    let next = (g + 1).min(OLDEST);
    let mut count = |id: u32, d: BlockDesc| {
        if d.generation > g {
            a.oldest_blocks += u64::from(d.generation == OLDEST);
            return;
        }
        a.swept_blocks += 1;
        if !marks.get(id) {
            if !d.ignored {
                leaked.add(id, d);
            }
            return;
        }
        a.oldest_blocks += u64::from(next == OLDEST);
        if !d.ignored {
            a.survivors += 1;
            a.survivor_bytes += d.size as u64;
        }
    };
    if write {
        view.walk_promoting(walk, marks, Promotion::PastSwept(g), &mut count);
    } else {
        view.walk(walk, &mut count);
    }
}

#[cfg(test)]
mod tests;
