//! With `verbosity=2`: why the sites with the most live bytes are alive.
//!
//! # What it owns
//! Choosing the sites (the [`SITES`] with the most live bytes when the profile is taken:
//! the heap's growth is there, whatever grew it), asking `retain` for a shortest chain
//! from a root to the largest live block of each (one stopped world for all of them), and
//! writing the answers in the profile's model ([`SiteRetention`]).

use super::model::{HeapProfile, RetentionChain, RetentionRoot, RetentionStep, Site, SiteRetention};
use crate::retain::{self, RetainError, Retention, RootKind, SiteChain};
use std::collections::HashMap;

/// The raw stack ids merged into each site of a profile, by the site's `stack_id`.
pub(super) type RawIds = HashMap<u32, Vec<u32>>;

/// How many sites get a chain: those with the most live bytes.
pub(crate) const SITES: usize = 5;
const _: () = assert!(SITES <= retain::MAX_SITES);

/// The chains of the [`SITES`] sites with the most live bytes (ties: the smaller stack
/// id), in that order. `sp`: where the calling thread's stack is scanned from. Empty, with
/// a warning, when the search could not run.
pub(super) fn of_largest_sites(profile: &HeapProfile, raw_ids: &RawIds, sp: usize) -> Vec<SiteRetention> {
    let chosen = largest_sites(&profile.sites);
    let ids: Vec<&[u32]> = chosen.iter().map(|&(id, _)| raw_ids.get(&id).map_or(&[][..], Vec::as_slice)).collect();
    let answers = retain::chains_to_sites(&ids, sp);
    let mut out = Vec::with_capacity(answers.len());
    for (&(stack_id, _), answer) in chosen.iter().zip(answers) {
        match answer {
            SiteChain::NoLiveBlock => {}
            SiteChain::Failed(message) => {
                warning!("heap profile: the retention chains of its largest sites are left out: {}", message);
                return Vec::new();
            }
            SiteChain::Block { address, size, why } => out.push(entry(stack_id, address, size, why)),
        }
    }
    out
}

/// The sites with a stack and live blocks, most live bytes first: `(stack_id, live_bytes)`.
fn largest_sites(sites: &[Site]) -> Vec<(u32, u64)> {
    let mut chosen: Vec<(u32, u64)> =
        sites.iter().filter(|s| s.live_blocks > 0).filter_map(|s| Some((s.stack_id?, s.live_bytes))).collect();
    chosen.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    chosen.truncate(SITES);
    chosen
}

fn entry(stack_id: u32, address: usize, size: usize, why: Result<Retention, RetainError>) -> SiteRetention {
    let (chain, note) = match why {
        Ok(r) => (Some(chain_of(r)), None),
        Err(e) => (None, Some(e.to_string())),
    };
    SiteRetention { stack_id, address: hex(address), size: size as u64, chain, note }
}

fn chain_of(r: Retention) -> RetentionChain {
    let root = RetentionRoot {
        kind: kind_name(r.root.kind).into(),
        start: hex(r.root.start),
        end: hex(r.root.end),
        word: r.root.word.map(hex),
        symbol: r.root.symbol,
        stack: r.root.stack,
    };
    let steps = r
        .steps
        .into_iter()
        .map(|s| RetentionStep {
            address: hex(s.address),
            size: s.size as u64,
            next_offset: s.next_offset.map(|o| o as u64),
            stack: s.stack,
        })
        .collect();
    RetentionChain { root, steps }
}

/// The JSON name of a root kind (FORMATS.md).
fn kind_name(kind: RootKind) -> &'static str {
    match kind {
        RootKind::Stack => "stack",
        RootKind::Registers => "registers",
        RootKind::Globals => "globals",
        RootKind::Tls => "tls",
        RootKind::OtherMapping => "other_mapping",
        RootKind::Registered => "registered",
        RootKind::IgnoredBlock => "ignored_block",
    }
}

fn hex(a: usize) -> String {
    format!("{a:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(stack_id: Option<u32>, live_blocks: u64, live_bytes: u64) -> Site {
        Site {
            stack_id,
            stack: Vec::new(),
            total_blocks: live_blocks,
            total_bytes: live_bytes,
            live_blocks,
            live_bytes,
            peak_blocks: 0,
            peak_bytes: 0,
            max_live_bytes: live_bytes,
            max_live_blocks: live_blocks,
            lifetime_us: 0,
        }
    }

    #[test]
    fn the_sites_chosen_are_those_with_the_most_live_bytes() {
        let mut sites: Vec<Site> = (1..=8).map(|i| site(Some(i), 1, u64::from(i) * 10)).collect();
        sites.push(site(None, 5, 1000)); // no stack: nothing to search for
        sites.push(site(Some(20), 0, 0)); // nothing live
        sites.push(site(Some(9), 1, 80)); // ties with 8: the smaller id first
        let chosen = largest_sites(&sites);
        assert_eq!(chosen, [(8, 80), (9, 80), (7, 70), (6, 60), (5, 50)]);
    }
}
