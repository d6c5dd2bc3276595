//! The report model: the JSON report of the contract (`format: "heapsweep-leaks"`,
//! version 1), as Rust types that serialize to it and read it back.
//!
//! # What it owns
//! The public types of a leak report, what [`check`](crate::check()) returns and what
//! `report=PATH` holds, and the few queries tests make of them. `leak-report` re-exports
//! them.
//!
//! # Compatibility
//! Every field of the contract is here under its contract name. Fields beyond the
//! contract (`suppressions`, `modules`, a group's `rc` and `stack_id`, a frame's `module`) are
//! optional: they are left out of the JSON when empty and default when absent, so the
//! contract's minimal example parses and a reader of version 1 is never surprised.

use serde::{Deserialize, Serialize};

/// A leak report: what [`check`](crate::check()) returns and what `report=PATH` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeakReport {
    /// Always `"heapsweep-leaks"` ([`LeakReport::FORMAT`]).
    pub format: String,
    /// Schema version: 1 ([`LeakReport::VERSION`]).
    pub version: u32,
    /// `argv[0]` of the program.
    pub program: String,
    /// Process id.
    pub pid: u32,
    /// Totals.
    pub summary: Summary,
    /// One entry per (kind, cyclic, allocation stack), largest `bytes` first.
    pub leaks: Vec<LeakGroup>,
    /// Suppression patterns that matched, with counts (an addition to version 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressions: Vec<SuppressionUse>,
    /// The executable and shared objects loaded when the report was made, with their
    /// load addresses, so that a report written without symbols can be symbolized later
    /// from the binaries (an addition to version 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<Module>,
}

/// A loaded object file (the executable or a shared object) and where it was mapped.
///
/// A return address `ip` inside `[start, end)` of a module is at address `ip - base` in
/// the object file's own address space (the ELF virtual address that debug information
/// and symbol tables use).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// Path of the object file as the loader knows it (the executable's real path for
    /// the main program).
    pub path: String,
    /// Load bias: what was added to the file's virtual addresses, as `"0x..."`.
    pub base: String,
    /// Lowest mapped address of its loadable segments, as `"0x..."`.
    pub start: String,
    /// One past the highest mapped address of its loadable segments, as `"0x..."`.
    pub end: String,
    /// The GNU build id, lowercase hex, when the object has one: to check that a binary
    /// given later is the one that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

impl Module {
    /// Parses one of this module's `"0x..."` addresses.
    pub fn parse_address(text: &str) -> Option<u64> {
        u64::from_str_radix(text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))?, 16).ok()
    }

    /// Whether `ip` lies within the module's mapped range.
    pub fn contains(&self, ip: u64) -> bool {
        match (Self::parse_address(&self.start), Self::parse_address(&self.end)) {
            (Some(s), Some(e)) => s <= ip && ip < e,
            _ => false,
        }
    }
}

/// Report totals. Invariant: `leaked_blocks == direct_blocks + indirect_blocks`, and the
/// groups of `leaks` add up to the leak counts; suppressed blocks are in neither.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Leaked blocks (not counting suppressed ones).
    pub leaked_blocks: u64,
    /// Their requested bytes.
    pub leaked_bytes: u64,
    /// Leaked blocks no leaked block outside their own cycle points to.
    pub direct_blocks: u64,
    /// The other leaked blocks.
    pub indirect_blocks: u64,
    /// Leaked blocks on a cycle of leaked blocks.
    pub cyclic_blocks: u64,
    /// Blocks found reachable.
    pub reachable_blocks: u64,
    /// Their requested bytes.
    pub reachable_bytes: u64,
    /// Leaked blocks a suppression matched (not in `leaks`).
    pub suppressed_blocks: u64,
}

/// Direct or indirect (see the contract).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeakKind {
    /// No leaked block outside its own cycle points to it: where to start fixing.
    Direct,
    /// Reached from another leaked block.
    Indirect,
}

/// Leaked blocks sharing kind, cycle flag and allocation stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeakGroup {
    /// Direct or indirect.
    pub kind: LeakKind,
    /// The blocks lie on cycles of leaked blocks.
    pub cyclic: bool,
    /// How many blocks.
    pub blocks: u64,
    /// Their requested bytes.
    pub bytes: u64,
    /// The allocation stack, innermost frame first, without the allocator's own frames
    /// and the runtime's frames below `main`.
    pub stack: Vec<Frame>,
    /// When the stack shows `Rc`/`Arc` allocation: the counts read from one block
    /// (an addition to version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rc: Option<RcCounts>,
    /// The allocation stack's id in this process (see
    /// [`stack_frames`](crate::stack_frames)); an addition to version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_id: Option<u32>,
}

/// One stack frame. `function`, `file` and `line` are always written, `null` when
/// unknown, as the contract says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    /// Instruction pointer (a return address), as `"0x..."`.
    pub ip: String,
    /// Demangled function name without the hash, when known.
    pub function: Option<String>,
    /// Source file, relative to the working directory when under it, when known.
    pub file: Option<String>,
    /// Source line, when known.
    pub line: Option<u32>,
    /// Path of the executable or shared object holding `ip`, when known (an addition to
    /// version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

/// Reference counts of a leaked `Rc`/`Arc` allocation, as std stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcCounts {
    /// `"Rc"` or `"Arc"`.
    pub kind: RcKind,
    /// Strong count.
    pub strong: u64,
    /// Weak count as std stores it: the `Weak`s, plus one held by all the strong
    /// references together while there is any.
    pub weak: u64,
}

/// Which reference-counted pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RcKind {
    /// `std::rc::Rc` (or `UniqueRc`).
    Rc,
    /// `std::sync::Arc` (or `UniqueArc`).
    Arc,
}

/// A suppression pattern and what it matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionUse {
    /// The pattern after `leak:`.
    pub pattern: String,
    /// Blocks it suppressed.
    #[serde(alias = "blocks")]
    pub matched_blocks: u64,
    /// Their bytes.
    #[serde(alias = "bytes")]
    pub matched_bytes: u64,
}

impl LeakReport {
    /// The `format` value of every report.
    pub const FORMAT: &'static str = "heapsweep-leaks";
    /// The schema version this build writes and reads.
    pub const VERSION: u32 = 1;

    /// Whether no leak was found (suppressed leaks do not count).
    pub fn is_clean(&self) -> bool {
        self.leaks.is_empty()
    }

    /// Leaked bytes, summed over the groups (suppressed leaks do not count).
    pub fn leaked_bytes(&self) -> u64 {
        self.leaks.iter().map(|g| g.bytes).sum()
    }

    /// Leaked blocks, summed over the groups (suppressed leaks do not count).
    pub fn leaked_blocks(&self) -> u64 {
        self.leaks.iter().map(|g| g.blocks).sum()
    }

    /// Groups some frame of whose stack has a function name containing `needle`.
    pub fn groups_with_function(&self, needle: &str) -> Vec<&LeakGroup> {
        self.leaks.iter().filter(|g| g.has_function(needle)).collect()
    }

    /// Reads a report from JSON, checking its format and version.
    pub fn from_json(text: &str) -> Result<LeakReport, String> {
        let r: LeakReport = serde_json::from_str(text).map_err(|e| format!("not a HeapSweep leak report: {e}"))?;
        if r.format != Self::FORMAT {
            return Err(format!("format is {:?}, expected {:?}", r.format, Self::FORMAT));
        }
        if r.version != Self::VERSION {
            return Err(format!("unsupported report version {} (this build reads version 1)", r.version));
        }
        Ok(r)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        super::json::to_json(self)
    }
}

impl LeakGroup {
    /// Whether some frame's function name contains `needle`.
    pub fn has_function(&self, needle: &str) -> bool {
        self.stack.iter().any(|f| f.function.as_deref().is_some_and(|n| n.contains(needle)))
    }
}

impl Frame {
    /// A frame with only its address known.
    pub fn unresolved(ip: usize) -> Frame {
        Frame { ip: format!("{ip:#x}"), function: None, file: None, line: None, module: None }
    }
}
