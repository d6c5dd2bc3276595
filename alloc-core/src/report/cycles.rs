//! The report's `cycles`: each leaked cycle once, its members in order.
//!
//! # What it owns
//! [`collect_cycles`], which follows the classification's links (each member's next
//! member and the offset of the pointer to it, `leak::cycles`) and names each member's
//! group in the finished list of leak groups. A cycle with a member in a suppressed group
//! is left out: the suppression covers the cycle.

use super::build::{RawKind, RawLeak};
use super::model::{CycleMember, LeakCycle, LeakGroup, LeakKind};
use std::collections::HashMap;

/// The cycles among `leaked` (the blocks with their earned labels), largest component
/// first. `leaks` are the report's groups, sorted as they will be written.
pub(crate) fn collect_cycles(leaked: &[RawLeak], leaks: &[LeakGroup]) -> Vec<LeakCycle> {
    let group_of: HashMap<(LeakKind, bool, Option<u32>), usize> =
        leaks.iter().enumerate().map(|(i, g)| ((g.kind, g.cyclic, g.stack_id), i)).collect();
    let mut seen = vec![false; leaked.len()];
    let mut cycles = Vec::new();
    for first in 0..leaked.len() {
        if seen[first] || leaked[first].cycle.next as usize >= leaked.len() {
            continue;
        }
        if let Some(c) = one_cycle(leaked, first, &group_of, &mut seen) {
            cycles.push(c);
        }
    }
    cycles.sort_by(|a, b| {
        b.component_blocks.cmp(&a.component_blocks).then_with(|| a.members[0].address.cmp(&b.members[0].address))
    });
    cycles
}

/// The cycle through `first`, following `next` links until it closes; `None` when a
/// member's group was suppressed (or a link is broken, which classification rules out).
fn one_cycle(
    leaked: &[RawLeak],
    first: usize,
    group_of: &HashMap<(LeakKind, bool, Option<u32>), usize>,
    seen: &mut [bool],
) -> Option<LeakCycle> {
    let (mut members, mut more, mut whole) = (Vec::new(), 0u64, true);
    let mut i = first;
    loop {
        seen[i] = true;
        let l = &leaked[i];
        match group_of.get(&(kind(l.kind), l.cyclic, (l.stack != 0).then_some(l.stack))) {
            Some(&group) if members.len() < LeakCycle::MAX_MEMBERS => members.push(CycleMember {
                address: format!("{:#x}", l.start),
                bytes: l.size as u64,
                group,
                next_offset: u64::from(l.cycle.next_offset),
            }),
            Some(_) => more += 1,
            None => whole = false,
        }
        i = l.cycle.next as usize;
        if i == first {
            break;
        }
        if i >= leaked.len() || seen[i] {
            debug_assert!(false, "a shown cycle closes at its first member");
            return None;
        }
    }
    let component_blocks = u64::from(leaked[first].cycle.component_blocks.max(1));
    (whole && !members.is_empty()).then_some(LeakCycle { component_blocks, members, more_members: more })
}

fn kind(k: RawKind) -> LeakKind {
    match k {
        RawKind::Direct => LeakKind::Direct,
        RawKind::Indirect => LeakKind::Indirect,
    }
}
