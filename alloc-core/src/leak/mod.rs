//! The leak check: conservative reachability, as LeakSanitizer does it.
//!
//! # Phases (each in its own module, each testable on a fake heap through [`view::HeapView`])
//! 1. [`stop`]: stop every other thread with a signal; each saves its registers.
//! 2. [`roots`]: stacks from their stack pointers, registers, globals, static TLS, other
//!    writable memory ([`maps`]), registered regions ([`regions`]); minus the heap and
//!    the allocator's metadata.
//! 3. [`mark`]: flood fill from the roots through every reachable block.
//! 4. [`classify`]: the live, unmarked, not ignored blocks are leaked; strongly connected
//!    components split them into direct and indirect, cyclic or not.
//!
//! [`sweep`] runs the same phases for a sweep of the young generations.
//!
//! [`analyze`] runs phases 2 to 4 and reads like LSan's `ClassifyAllChunks`; the caller
//! (`check`) stops and resumes the world around it, holding the allocator's lock.

pub(crate) mod classify;
mod cycles;
pub(crate) mod failure;
#[cfg(test)]
mod fake;
pub(crate) mod helper;
pub(crate) mod maps;
pub(crate) mod mark;
pub(crate) mod path;
pub(crate) mod regions;
pub(crate) mod roots;
pub(crate) mod stop;
pub(crate) mod sweep;
pub(crate) mod view;
pub(crate) mod written;

pub(crate) use classify::{LeakKind, LeakedBlock};
pub(crate) use failure::Failure;
pub(crate) use roots::{RootOptions, RootPlan, RootRange};

use crate::os::MmapVec;
use stop::StoppedWorld;
use view::{BlockDesc, HeapView, Walk};

/// What a check found.
#[derive(Default)]
pub(crate) struct Analysis {
    /// The leaked blocks, in increasing id order.
    pub(crate) leaked: MmapVec<LeakedBlock>,
    pub(crate) live_blocks: u64,
    pub(crate) reachable_blocks: u64,
    pub(crate) reachable_bytes: u64,
    pub(crate) words_scanned: u64,
    /// Bytes of root ranges scanned.
    pub(crate) root_bytes: u64,
}

/// The calling thread's stack pointer, after spilling its callee-saved registers into
/// `spill`, which must live in the caller's frame so the stack scan sees it.
///
/// The check scans its own thread's stack from the frame of its public entry point only:
/// the frames of the check's own machinery hold stale copies of pointers to the blocks a
/// previous check found leaked, which would make them look reachable.
#[inline(never)]
pub(crate) fn spill_registers(spill: &mut [usize; crate::platform::CALLEE_SAVED_REGISTERS]) -> usize {
    crate::platform::spill_callee_saved(spill)
}

/// Roots → flood fill → classify, as LSan's `ClassifyAllChunks`. `sp` is where the
/// calling thread's stack is scanned from (see [`spill_registers`]). `world` may be one
/// never stopped ([`StoppedWorld::new`]): the other threads' stacks are then scanned
/// whole, and the caller must make sure no running thread unmaps memory meanwhile.
/// Allocates nothing but `MmapVec`s. Fails when the roots cannot be listed or the
/// check's tables cannot get memory: nothing it could report would be trustworthy.
///
/// `selected` chooses the blocks the check reports on (a scoped check's blocks; `|_|
/// true` for all): every block is marked, as every block may lead to a selected one, but
/// only selected blocks can be leaked, and the reachable totals count only them.
/// `promote`: the reachable blocks move up a generation (a whole-process check); a
/// scoped check leaves every generation alone, as it must not change what other code
/// running meanwhile (a parallel test's check) finds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn analyze<V: HeapView>(
    view: &V,
    world: &StoppedWorld,
    plan: &RootPlan,
    opts: &RootOptions,
    sp: usize,
    selected: &dyn Fn(&BlockDesc) -> bool,
    promote: bool,
) -> Result<Analysis, Failure> {
    let (mut maps, mut roots) = (MmapVec::new(), MmapVec::new());
    // Room for the whole mapping list before reading it: growing while reading would move
    // the buffer, and the list would then name its old, unmapped place as a root.
    if !maps.reserve(1 << 16) {
        return Err(Failure::OutOfMemory { what: "the mapping list" });
    }
    roots::collect_roots(view, world, plan, opts, sp, &mut maps, &mut roots)?;
    let mut marker = mark::Marker::new(view).ok_or(Failure::OutOfMemory { what: "the mark bits" })?;
    // The fill takes the roots as it goes (and may share them with the mark helper), but
    // with `verbosity=2`, which names the roots that reach blocks, one at a time first.
    let (queue, root_bytes) = if crate::config::current().verbosity >= 2 {
        (mark::RootQueue::empty(), scan_roots(&mut marker, &roots))
    } else {
        let queue = mark::RootQueue::new(&roots, &[]);
        let bytes = queue.bytes();
        (queue, bytes)
    };
    marker.mark_ignored();
    marker.flood_fill_from(&queue);
    if marker.lost {
        return Err(Failure::OutOfMemory { what: "the mark stack" });
    }
    // One walk lists the leaked blocks, counts, and promotes the reachable ones.
    // Promotion writes every marked block's flags: only with every other thread stopped,
    // or it would race with their owners' writes to the same metadata words.
    let mut list = classify::LeakedList::new(view, Walk::All);
    let counts = promote_reachable(view, &marker.marks, selected, promote && world.all_stopped(), &mut list);
    let leaked = classify::classify_listed(view, list)?;
    Ok(Analysis {
        leaked,
        live_blocks: counts.live_blocks,
        reachable_blocks: counts.reachable_blocks,
        reachable_bytes: counts.reachable_bytes,
        words_scanned: marker.stats.words_scanned,
        root_bytes,
    })
}

/// Scans every root range, naming each range that reaches blocks and the word that
/// reaches the largest (without allocating; `verbosity=2`); returns their total size.
fn scan_roots<V: HeapView>(marker: &mut mark::Marker<'_, V>, roots: &[RootRange]) -> u64 {
    let mut root_bytes = 0;
    for r in roots {
        root_bytes += (r.end - r.start) as u64;
        let before = marker.stats.reachable_blocks;
        marker.stats.largest_hit = (0, 0, 0);
        marker.scan_range(r.start, r.end);
        if marker.stats.reachable_blocks > before {
            let (at, value, size) = marker.stats.largest_hit;
            warning!(
                "root {:?} {:#x}..{:#x} reaches {} block(s) directly; the largest ({} bytes) through the word at {:#x} = {:#x}",
                r.kind,
                r.start,
                r.end,
                marker.stats.reachable_blocks - before,
                size,
                at,
                value
            );
        }
    }
    root_bytes
}

/// Raises the generation of every marked block (when `promote`); counts the live and the
/// reachable (marked, not ignored) blocks among the selected ones; lists the leaked ones
/// (selected, neither marked nor ignored) in `leaked`.
fn promote_reachable(
    view: &impl HeapView,
    marks: &mark::Marks,
    selected: &dyn Fn(&BlockDesc) -> bool,
    promote: bool,
    leaked: &mut classify::LeakedList,
) -> Counts {
    let mut c = Counts::default();
    let mut count = |id: u32, d: BlockDesc| {
        let chosen = selected(&d);
        c.live_blocks += u64::from(chosen);
        if !chosen || d.ignored {
            return;
        }
        if marks.get(id) {
            c.reachable_blocks += 1;
            c.reachable_bytes += d.size as u64;
        } else {
            leaked.add(id, d);
        }
    };
    if promote {
        view.walk_promoting(Walk::All, marks, view::Promotion::OneUp, &mut count);
    } else {
        view.for_each_block(&mut count);
    }
    c
}

/// Live and reachable blocks among the selected ones.
#[derive(Default)]
struct Counts {
    live_blocks: u64,
    reachable_blocks: u64,
    reachable_bytes: u64,
}

#[cfg(test)]
mod tests;
