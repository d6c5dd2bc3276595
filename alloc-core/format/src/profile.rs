//! The heap profile model: what `profile=PATH` writes (`format: "heapsweep-profile"`,
//! version 1), as Rust types that serialize to it and read it back.
//!
//! # What it owns
//! The public types of a heap profile and their invariants. `leak-report` renders them
//! (text, flame graphs, pprof, DHAT).
//!
//! # Meanings
//! - A *site* is one allocation stack. Sizes are requested sizes (`Layout::size()`).
//! - *total*: every allocation made from the site since the start; a `realloc` counts as
//!   one more allocation of its new size (and the free of the old block).
//! - *live*: blocks allocated and not yet freed when the profile was written.
//! - *at peak*: live at the moment the whole heap's live bytes were highest.
//! - *max live*: the site's own highest live bytes, and its live blocks at that moment.
//!   Raw stacks that differ only in the allocator's frames (a `Vec` allocated by `push`,
//!   then moved by `realloc`) are merged into one site; its max live is then the sum of
//!   theirs, an upper bound.
//! - *lifetime*: the sum over the site's blocks of the time each was live (up to the
//!   profile's time for blocks still live), in microseconds; divided by `total_blocks` it
//!   is the average lifetime.
//! - Times are microseconds since the allocator started.
//!
//! With the `deserialize` feature the types derive `serde::Deserialize`: read a profile
//! with any serde reader, then call [`HeapProfile::validate`].
//!
//! Invariants, checked by [`HeapProfile::validate`]: each site's live ≤ total and at peak
//! ≤ max live ≤ total; the sites' sums equal the summary's totals, live and peak counts.

pub use crate::report::{Frame, Module};
#[cfg(feature = "deserialize")]
use serde::Deserialize;
use serde::Serialize;

/// A heap profile: what `profile=PATH` and `alloc_core::profile::dump` write.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct HeapProfile {
    /// Always `"heapsweep-profile"` ([`HeapProfile::FORMAT`]).
    pub format: String,
    /// Schema version: 1 ([`HeapProfile::VERSION`]).
    pub version: u32,
    /// `argv[0]` of the program.
    pub program: String,
    /// Process id.
    pub pid: u32,
    /// When the profile was taken, in microseconds since the allocator started.
    pub time_us: u64,
    /// Totals over all sites.
    pub summary: ProfileSummary,
    /// One entry per allocation stack, largest `total_bytes` first.
    pub sites: Vec<Site>,
    /// Live heap size over time, oldest first, at most a few thousand points.
    pub timeline: Vec<TimelinePoint>,
    /// The loaded object files, for symbolizing later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<Module>,
    /// With `verbosity=2`: why the sites with the most live bytes are alive, one live
    /// block of each (the largest sites first). Absent otherwise, and in older profiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retention: Vec<SiteRetention>,
}

/// Why one live block of a site is alive: a shortest chain of pointers from a root to
/// it, as `alloc_core::retained_by` finds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct SiteRetention {
    /// The site's `stack_id`.
    pub stack_id: u32,
    /// The block asked about, as `"0x..."`, and its requested size.
    pub address: String,
    pub size: u64,
    /// The chain; absent when there is none (see `note`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<RetentionChain>,
    /// Why there is no chain (nothing reaches the block: it is leaked; or the search
    /// could not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A chain of pointers: the root's word points into the first step's block, each step's
/// block holds a pointer into the next, the last step is the block asked about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct RetentionChain {
    pub root: RetentionRoot,
    pub steps: Vec<RetentionStep>,
}

/// Where a chain starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct RetentionRoot {
    /// `stack`, `registers`, `globals`, `tls`, `other_mapping`, `registered` or
    /// `ignored_block`.
    pub kind: String,
    /// The root range (for an ignored block, the block), as `"0x..."`.
    pub start: String,
    pub end: String,
    /// The address of the word that points into the first block, as `"0x..."`; absent
    /// for an ignored block (a root as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word: Option<String>,
    /// For static data: the symbol the word lies in, as `name+offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// For an ignored block: its allocation stack.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<Frame>,
}

/// One block of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct RetentionStep {
    /// The block, as `"0x..."`, and its requested size.
    pub address: String,
    pub size: u64,
    /// The offset in this block of the pointer to the next step; absent for the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
    /// Its allocation stack, innermost first, trimmed as in leak reports.
    pub stack: Vec<Frame>,
}

/// Totals of a profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct ProfileSummary {
    /// Allocations since the start.
    pub total_blocks: u64,
    /// Their requested bytes.
    pub total_bytes: u64,
    /// Blocks live when the profile was taken.
    pub live_blocks: u64,
    /// Their requested bytes.
    pub live_bytes: u64,
    /// Live blocks at the peak of live bytes.
    pub peak_blocks: u64,
    /// The highest live bytes seen.
    pub peak_bytes: u64,
    /// When the peak was reached, in microseconds since the start.
    pub peak_time_us: u64,
}

/// One allocation stack and its counts.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct Site {
    /// The stack's id in the process that wrote the profile; absent for allocations
    /// recorded without a stack (`stack_depth=0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_id: Option<u32>,
    /// The allocation stack, innermost frame first, trimmed as in leak reports. Empty
    /// when no stack was recorded.
    pub stack: Vec<Frame>,
    /// Allocations made here since the start.
    pub total_blocks: u64,
    /// Their requested bytes.
    pub total_bytes: u64,
    /// Blocks from here live when the profile was taken.
    pub live_blocks: u64,
    /// Their bytes.
    pub live_bytes: u64,
    /// Blocks from here live at the moment of the heap's peak.
    pub peak_blocks: u64,
    /// Their bytes.
    pub peak_bytes: u64,
    /// This site's own highest live bytes.
    pub max_live_bytes: u64,
    /// Its live blocks at that moment.
    pub max_live_blocks: u64,
    /// Sum of the lifetimes of its blocks, in microseconds.
    pub lifetime_us: u64,
}

/// One sample of the live heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct TimelinePoint {
    /// Microseconds since the start.
    pub t_us: u64,
    /// Live bytes.
    pub live_bytes: u64,
    /// Live blocks.
    pub live_blocks: u64,
}

impl HeapProfile {
    /// The `format` value of every profile.
    pub const FORMAT: &'static str = "heapsweep-profile";
    /// The schema version this build writes and reads.
    pub const VERSION: u32 = 1;

    /// The profile as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Plain structs of strings and integers: writing them to a String cannot fail.
        crate::pretty_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks the format, the version and the invariants of the module note; the error
    /// names the first broken one.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != Self::FORMAT {
            return Err(format!("format is {:?}, expected {:?}", self.format, Self::FORMAT));
        }
        if self.version != Self::VERSION {
            return Err(format!("unsupported profile version {} (this build reads version 1)", self.version));
        }
        let s = &self.summary;
        for (i, site) in self.sites.iter().enumerate() {
            let bad = |what: &str| Err(format!("site {i}: {what}"));
            if site.live_blocks > site.total_blocks || site.live_bytes > site.total_bytes {
                return bad("more live than allocated");
            }
            if site.peak_bytes > site.max_live_bytes || site.max_live_bytes > site.total_bytes {
                return bad("bytes at peak above its own maximum, or maximum above total");
            }
            if site.live_bytes > site.max_live_bytes {
                return bad("live bytes above its own maximum");
            }
        }
        let sum = ProfileSummary::of_sites(&self.sites, s.peak_time_us);
        let sums = [
            ("total_blocks", sum.total_blocks, s.total_blocks),
            ("total_bytes", sum.total_bytes, s.total_bytes),
            ("live_blocks", sum.live_blocks, s.live_blocks),
            ("live_bytes", sum.live_bytes, s.live_bytes),
            ("peak_blocks", sum.peak_blocks, s.peak_blocks),
            ("peak_bytes", sum.peak_bytes, s.peak_bytes),
        ];
        for (name, got, total) in sums {
            if got != total {
                return Err(format!("the sites' {name} add up to {got}, the summary says {total}"));
            }
        }
        if s.live_bytes > s.peak_bytes {
            return Err("summary: live bytes above the peak".into());
        }
        for (i, r) in self.retention.iter().enumerate() {
            if !self.sites.iter().any(|site| site.stack_id == Some(r.stack_id)) {
                return Err(format!("retention {i}: no site has stack_id {}", r.stack_id));
            }
            if r.chain.as_ref().is_some_and(|c| c.steps.is_empty()) {
                return Err(format!("retention {i}: a chain without blocks"));
            }
        }
        Ok(())
    }
}

impl ProfileSummary {
    /// The sites' totals, live and at-peak counts added up (saturating), with the given
    /// peak time.
    pub fn of_sites(sites: &[Site], peak_time_us: u64) -> ProfileSummary {
        let mut sum = ProfileSummary { peak_time_us, ..ProfileSummary::default() };
        for site in sites {
            sum.total_blocks = sum.total_blocks.saturating_add(site.total_blocks);
            sum.total_bytes = sum.total_bytes.saturating_add(site.total_bytes);
            sum.live_blocks = sum.live_blocks.saturating_add(site.live_blocks);
            sum.live_bytes = sum.live_bytes.saturating_add(site.live_bytes);
            sum.peak_blocks = sum.peak_blocks.saturating_add(site.peak_blocks);
            sum.peak_bytes = sum.peak_bytes.saturating_add(site.peak_bytes);
        }
        sum
    }
}

impl Site {
    /// Adds `other`'s counts to this site's, as for two raw stacks that are one site. Max
    /// live becomes the sum of the two maxima: an upper bound (they may have peaked at
    /// different moments).
    pub fn absorb(&mut self, other: &Site) {
        self.total_blocks += other.total_blocks;
        self.total_bytes += other.total_bytes;
        self.live_blocks += other.live_blocks;
        self.live_bytes += other.live_bytes;
        self.peak_blocks += other.peak_blocks;
        self.peak_bytes += other.peak_bytes;
        self.max_live_bytes += other.max_live_bytes;
        self.max_live_blocks += other.max_live_blocks;
        self.lifetime_us += other.lifetime_us;
    }
}
