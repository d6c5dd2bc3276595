//! Synthetic inputs for measuring and testing the renderers at scale.
//!
//! # What it owns
//! [`leak_report`]: a valid leak report with any number of groups whose stacks are drawn,
//! with a fixed-seed generator, from a pool of functions arranged as a call tree, so that
//! they share prefixes as real programs' stacks do. Used by the `big_report` example (the
//! 100 000-group figure) and by the browser test's paging check.

use heapsweep_format::report::{CheckStatus, Frame, LeakGroup, LeakKind, LeakReport, RcCounts, RcKind, Summary};

/// A report of `groups` distinct leak groups, largest first; the same `seed` gives the same
/// report.
pub fn leak_report(groups: usize, seed: u64) -> LeakReport {
    let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move |n: u64| {
        // xorshift64*: deterministic and dependency-free.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    };
    let mut leaks: Vec<LeakGroup> = (0..groups)
        .map(|i| {
            let depth = 4 + next(16) as usize;
            // Walk down a call tree with fan-out 8: frame k of level d is function d*8+k.
            let mut stack: Vec<Frame> = (0..depth)
                .map(|d| {
                    let f = d as u64 * 8 + next(8);
                    frame(0x5555_0000_0000 + f * 0x40 + next(4), &format!("app::module{}::function{f}", d % 7), d, f)
                })
                .collect();
            // A distinct leaf per group keeps every group's stack unique.
            stack.push(frame(
                0x5555_1000_0000 + i as u64 * 0x10,
                &format!("app::alloc_site{}", i % 5000),
                depth,
                i as u64,
            ));
            stack.reverse();
            let kind = if next(3) == 0 { LeakKind::Indirect } else { LeakKind::Direct };
            let cyclic = next(10) == 0;
            let rc = cyclic.then_some(RcCounts { kind: RcKind::Rc, strong: 1, weak: 1 });
            let blocks = 1 + next(20);
            LeakGroup {
                kind,
                cyclic,
                blocks,
                bytes: blocks * (8 + next(4096)),
                stack,
                rc,
                stack_id: None,
                reported_by_sweep: 0,
                in_baseline: false,
            }
        })
        .collect();
    leaks.sort_by_key(|g| std::cmp::Reverse(g.bytes));
    let count = |k: LeakKind| leaks.iter().filter(|g| g.kind == k).map(|g| g.blocks).sum::<u64>();
    let summary = Summary {
        leaked_blocks: leaks.iter().map(|g| g.blocks).sum(),
        leaked_bytes: leaks.iter().map(|g| g.bytes).sum(),
        direct_blocks: count(LeakKind::Direct),
        indirect_blocks: count(LeakKind::Indirect),
        cyclic_blocks: leaks.iter().filter(|g| g.cyclic).map(|g| g.blocks).sum(),
        reachable_blocks: 1000,
        reachable_bytes: 65536,
        suppressed_blocks: 0,
    };
    LeakReport {
        format: LeakReport::FORMAT.into(),
        version: LeakReport::VERSION,
        program: "target/release/synthetic".into(),
        pid: 1,
        status: CheckStatus::Ok,
        summary,
        leaks,
        suppressions: Vec::new(),
        modules: Vec::new(),
        cycles: Vec::new(),
    }
}

fn frame(ip: u64, function: &str, depth: usize, f: u64) -> Frame {
    Frame {
        ip: format!("{ip:#x}"),
        function: Some(function.to_string()),
        file: Some(format!("src/module{}.rs", depth % 7)),
        line: Some(10 + (f % 400) as u32),
        module: None,
    }
}
