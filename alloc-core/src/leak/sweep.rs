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
//! - Only blocks not reported before are new leaks; they get the `REPORTED` flag. All the
//!   unreachable blocks of the swept generations are classified together, so a new block
//!   hanging off an old leak is indirect, as in the check.
//!
//! Promotion and the `REPORTED` flag are written only when every other thread stopped
//! (the caller treats a sweep of a world not stopped as failed and reports nothing).

use super::classify::{self, LeakedBlock};
use super::failure::Failure;
use super::mark::Marker;
use super::roots::{self, RootOptions, RootPlan, RootRange};
use super::stop::StoppedWorld;
use super::view::HeapView;
use crate::os::MmapVec;

/// The oldest generation.
pub(crate) const OLDEST: u8 = 2;

/// How a young sweep treats the contents of the blocks older than the ones it sweeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OldBlocks {
    /// Scan every old block whole (no record of what was written).
    Scan,
    /// Scan only the ranges the caller passes as written since the last sweep.
    #[cfg_attr(not(test), allow(dead_code))]
    Written,
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
    /// after a full sweep).
    pub(crate) oldest_blocks: u64,
    pub(crate) words_scanned: u64,
    /// Bytes of root ranges scanned (not counting old blocks).
    pub(crate) root_bytes: u64,
}

/// Roots → flood fill → classify for the blocks of generations `0..=g` (`g` at most
/// [`OLDEST`]; `g == OLDEST` is a full sweep and `old` does not matter). `written` are
/// extra root ranges: the parts of old blocks written since the last sweep (with
/// [`OldBlocks::Written`]). The other arguments are `leak::analyze`'s. Allocates only
/// `MmapVec`s.
#[allow(clippy::too_many_arguments)]
pub(crate) fn analyze_generation<V: HeapView>(
    view: &V,
    world: &StoppedWorld,
    plan: &RootPlan,
    opts: &RootOptions,
    sp: usize,
    g: u8,
    old: OldBlocks,
    written: &[RootRange],
) -> Result<SweepAnalysis, Failure> {
    debug_assert!(g <= OLDEST, "generations are 0, 1 and 2");
    let (mut maps, mut roots) = (MmapVec::new(), MmapVec::new());
    if !maps.reserve(1 << 16) {
        return Err(Failure::OutOfMemory { what: "the mapping list" });
    }
    roots::collect_roots(view, world, plan, opts, sp, &mut maps, &mut roots)?;
    let mut marker = Marker::new(view).ok_or(Failure::OutOfMemory { what: "the mark bits" })?;
    // Old blocks first: marked as live, and scanned whole only on the fallback path. On
    // the other, a root pointing to an old block does not scan it either: only its
    // written parts (`written`) are roots.
    let scan_old = old == OldBlocks::Scan;
    marker.mark_roots(&|d| d.ignored || d.generation > g, &|d| d.generation <= g || scan_old);
    if !scan_old {
        marker.scan_up_to_generation = g;
    }
    let mut root_bytes = 0;
    for r in roots.iter().chain(written) {
        root_bytes += (r.end - r.start) as u64;
        marker.scan_range(r.start, r.end);
    }
    marker.flood_fill();
    if marker.lost {
        return Err(Failure::OutOfMemory { what: "the mark stack" });
    }
    let marks = &marker.marks;
    let leaked = classify::classify(view, &|id, d| d.generation <= g && !d.ignored && !marks.get(id))?;
    let mut a = SweepAnalysis { words_scanned: marker.stats.words_scanned, root_bytes, ..SweepAnalysis::default() };
    let write = world.all_stopped();
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
    promote(view, marks, g, write, &mut a);
    Ok(a)
}

/// Moves the reachable blocks of generations `0..=g` to `g + 1` (when `write`); counts
/// the swept blocks, the survivors and the oldest generation.
fn promote(view: &impl HeapView, marks: &super::mark::Marks, g: u8, write: bool, a: &mut SweepAnalysis) {
    let next = (g + 1).min(OLDEST);
    view.for_each_block(&mut |id, d| {
        if d.generation > g {
            a.oldest_blocks += u64::from(d.generation == OLDEST);
            return;
        }
        a.swept_blocks += 1;
        if !marks.get(id) {
            return;
        }
        if write && d.generation != next {
            view.promote_to(d.start, next);
        }
        a.oldest_blocks += u64::from(next == OLDEST);
        if !d.ignored {
            a.survivors += 1;
            a.survivor_bytes += d.size as u64;
        }
    });
}

#[cfg(test)]
mod tests;
