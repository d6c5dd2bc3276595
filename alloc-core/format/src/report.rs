//! The report model: the JSON report of the contract (`format: "heapsweep-leaks"`,
//! version 1), as Rust types that serialize to it and read it back.
//!
//! # What it owns
//! The public types of a leak report, what `alloc_core::check()` returns and what
//! `report=PATH` holds, the few queries tests make of them, and the rules a report read
//! back must follow ([`LeakReport::validate`]). `leak-report` re-exports them.
//!
//! # Reading
//! With the `deserialize` feature the types derive `serde::Deserialize`: read a report with
//! any serde reader (`leak-report` uses `serde_json`), then call [`LeakReport::validate`].
//!
//! # Compatibility
//! Every field of the contract is here under its contract name. Fields beyond the
//! contract (`suppressions`, `modules`, a group's `rc` and `stack_id`, a frame's `module`) are
//! optional: they are left out of the JSON when empty and default when absent, so the
//! contract's minimal example parses and a reader of version 1 is never surprised.
//! `status` is always written (a report says whether its check ran to the end), and a
//! report without it, written before it existed, reads as `{"state": "ok"}`.

#[cfg(feature = "deserialize")]
use serde::Deserialize;
use serde::Serialize;

/// A leak report: what `alloc_core::check()` returns and what `report=PATH` holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct LeakReport {
    /// Always `"heapsweep-leaks"` ([`LeakReport::FORMAT`]).
    pub format: String,
    /// Schema version: 1 ([`LeakReport::VERSION`]).
    pub version: u32,
    /// `argv[0]` of the program.
    pub program: String,
    /// Process id.
    pub pid: u32,
    /// Whether the leak check ran to the end (an addition to version 1, always written).
    /// When it did not, the leaks below may be incomplete or wrong, and an empty list does
    /// not mean the program is clean.
    #[serde(default)]
    #[cfg_attr(feature = "deserialize", serde(deserialize_with = "crate::de::status_named"))]
    pub status: CheckStatus,
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
    /// The leaked cycles, each shown once with its members in order (an addition to
    /// version 1; see FORMATS.md). Largest component first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycles: Vec<LeakCycle>,
}

/// A cycle of leaked blocks: one shortest cycle through the first block of a strongly
/// connected component of the leaked graph (or a counted self-reference), its members in
/// order, each pointing to the next and the last to the first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct LeakCycle {
    /// Blocks of the whole component (at least the members: a component may hold more
    /// cycles than the one shown).
    pub component_blocks: u64,
    /// The members, in order (at most [`LeakCycle::MAX_MEMBERS`]).
    pub members: Vec<CycleMember>,
    /// Members of the shown cycle left out of `members` (beyond the first
    /// [`LeakCycle::MAX_MEMBERS`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_members: u64,
}

impl LeakCycle {
    /// The most members listed per cycle: a ring of a million leaked nodes is one cycle,
    /// and its first members say what it is made of.
    pub const MAX_MEMBERS: usize = 100;

    /// Members listed, each naming one of the report's `groups` groups, and no more
    /// members than its component has blocks.
    fn validate(&self, groups: usize) -> Result<(), String> {
        if self.members.is_empty() {
            return Err("no members".into());
        }
        if let Some(m) = self.members.iter().find(|m| m.group >= groups) {
            return Err(format!("a member names leak group {}, of {groups}", m.group));
        }
        if (self.members.len() as u64).saturating_add(self.more_members) > self.component_blocks {
            return Err(format!("more members than its component_blocks ({})", self.component_blocks));
        }
        Ok(())
    }
}

/// The allocation site of a stack: the innermost frame outside the standard library (the
/// code that called `Box::new`, `Rc::new`, `Vec::push`...), else the innermost frame.
pub fn allocation_site(stack: &[Frame]) -> Option<&Frame> {
    let in_std = |f: &&Frame| match &f.file {
        Some(file) => file.starts_with("/rustc/") || file.contains("/library/"),
        None => f.function.as_deref().is_some_and(|n| {
            let n = n.strip_prefix('<').unwrap_or(n);
            ["alloc::", "core::", "std::"].iter().any(|p| n.starts_with(p))
        }),
    };
    stack.iter().find(|f| !in_std(f)).or(stack.first())
}

/// `function file:line` of a frame (its address when the function is unknown): how the
/// reports name an allocation site in one line.
pub fn site_label(f: &Frame) -> String {
    let mut s = f.function.clone().unwrap_or_else(|| f.ip.clone());
    if let (Some(file), Some(line)) = (&f.file, f.line) {
        s.push_str(&format!(" {file}:{line}"));
    }
    s
}

/// One block of a [`LeakCycle`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct CycleMember {
    /// The block's address, as `"0x..."`.
    pub address: String,
    /// Its requested size.
    pub bytes: u64,
    /// The index in `leaks` of the block's group (its kind and allocation stack).
    pub group: usize,
    /// The offset in this block of the pointer to the next member.
    pub next_offset: u64,
}

/// Whether the leak check ran to the end.
///
/// In JSON: `{"state": "ok"}`, or `{"state": "failed", "kind": ..., "message": ...,
/// "hint": ...}` (the [`CheckFailure`]'s fields beside the tag).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CheckStatus {
    /// The check ran to the end: the report is complete.
    #[default]
    Ok,
    /// The check could not run to the end: the report may miss leaks, or list blocks that
    /// are not leaks.
    Failed(CheckFailure),
}

impl CheckStatus {
    /// The failure, when the check failed.
    pub fn failure(&self) -> Option<&CheckFailure> {
        match self {
            CheckStatus::Ok => None,
            CheckStatus::Failed(f) => Some(f),
        }
    }
}

/// Why the leak check could not run to the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub struct CheckFailure {
    /// What failed, for programs.
    pub kind: FailureKind,
    /// What failed, for people: one sentence naming the thread, file or error.
    pub message: String,
    /// What the user can do about it.
    pub hint: String,
}

impl CheckFailure {
    /// A failure of `kind` with `message` and the kind's [default hint](FailureKind::default_hint).
    pub fn new(kind: FailureKind, message: impl Into<String>) -> CheckFailure {
        CheckFailure { kind, message: message.into(), hint: kind.default_hint().to_string() }
    }
}

impl std::fmt::Display for CheckFailure {
    /// `the leak check could not run to the end (KIND): MESSAGE`; the hint is left to the
    /// caller, which prints it on a line of its own.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the leak check could not run to the end ({}): {}", self.kind, self.message)
    }
}

/// What kept the leak check from running to the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The process's threads could not be listed (`/proc/self/task`), so their stacks and
    /// registers, which are roots, could not be found.
    ThreadsNotListed,
    /// A thread did not stop for the check: its registers were not read and its stack
    /// may change while it is scanned.
    ThreadsNotStopped,
    /// Roots could not be read (`/proc/self/maps`, the loaded objects' data): blocks
    /// reachable only from them would look leaked.
    RootsUnreadable,
    /// The check ran out of memory for its own tables (mark bits, the root list).
    OutOfMemory,
}

impl FailureKind {
    /// Every kind, in declaration order.
    pub const ALL: [FailureKind; 4] = [
        FailureKind::ThreadsNotListed,
        FailureKind::ThreadsNotStopped,
        FailureKind::RootsUnreadable,
        FailureKind::OutOfMemory,
    ];

    /// The kind's JSON name: `threads_not_listed`, `threads_not_stopped`,
    /// `roots_unreadable`, `out_of_memory`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::ThreadsNotListed => "threads_not_listed",
            FailureKind::ThreadsNotStopped => "threads_not_stopped",
            FailureKind::RootsUnreadable => "roots_unreadable",
            FailureKind::OutOfMemory => "out_of_memory",
        }
    }

    /// What a user can do about a failure of this kind, in the manner of LeakSanitizer's
    /// `HINT:` lines.
    pub fn default_hint(self) -> &'static str {
        match self {
            FailureKind::ThreadsNotListed => {
                "the check lists threads in /proc/self/task: /proc must be mounted and readable by the \
                 process (in a container or sandbox, mount procfs), and the process must have a file \
                 descriptor left to open it"
            }
            FailureKind::ThreadsNotStopped => {
                "threads are stopped with SIGPWR: a thread that blocks or ignores SIGPWR, replaces its \
                 handler, or is itself stopped (under a debugger or ptrace, by SIGSTOP) cannot stop; \
                 let it take SIGPWR, or end such threads before the check"
            }
            FailureKind::RootsUnreadable => {
                "the check reads /proc/self/maps and the loaded objects' data: /proc must be mounted and \
                 readable, and the process must not have run out of file descriptors (see ulimit -n)"
            }
            FailureKind::OutOfMemory => {
                "the check needs memory for its mark bits and its list of roots, in proportion to the \
                 heap and to the mapped memory: raise the memory limit (ulimit -v, the container's \
                 limit), or run the check when the heap is smaller"
            }
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A loaded object file (the executable or a shared object) and where it was mapped.
///
/// A return address `ip` inside `[start, end)` of a module is at address `ip - base` in
/// the object file's own address space (the ELF virtual address that debug information
/// and symbol tables use).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
#[serde(rename_all = "lowercase")]
pub enum LeakKind {
    /// No leaked block outside its own cycle points to it: where to start fixing.
    Direct,
    /// Reached from another leaked block.
    Indirect,
}

/// Leaked blocks sharing kind, cycle flag and allocation stack.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
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
    /// `alloc_core::stack_frames`); an addition to version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_id: Option<u32>,
    /// How many of the blocks a leak sweep (`alloc_core::sweep`) already reported while
    /// the program ran; written only when not 0 (an addition to version 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reported_by_sweep: u64,
    /// The group is in the baseline report (`HEAPSWEEP=baseline=PATH`): a known leak,
    /// which does not set the exit status; written only when true (an addition to
    /// version 1).
    #[serde(default, skip_serializing_if = "is_false")]
    pub in_baseline: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One stack frame. `function`, `file` and `line` are always written, `null` when
/// unknown, as the contract says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
pub enum RcKind {
    /// `std::rc::Rc` (or `UniqueRc`).
    Rc,
    /// `std::sync::Arc` (or `UniqueArc`).
    Arc,
}

/// A suppression pattern and what it matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(Deserialize))]
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

    /// A report of `program` (process `pid`) that found nothing: status ok, no group.
    /// Every report starts here, so a field added to the model is set in one place.
    pub fn empty(program: impl Into<String>, pid: u32) -> LeakReport {
        LeakReport {
            format: Self::FORMAT.into(),
            version: Self::VERSION,
            program: program.into(),
            pid,
            status: CheckStatus::Ok,
            summary: Summary::default(),
            leaks: Vec::new(),
            suppressions: Vec::new(),
            modules: Vec::new(),
            cycles: Vec::new(),
        }
    }

    /// Whether the report lists no leak group (suppressed leaks do not count).
    ///
    /// This is about the leak groups only: a report whose check failed
    /// ([`check_failed`](Self::check_failed)) may list none and still hide leaks.
    pub fn is_clean(&self) -> bool {
        self.leaks.is_empty()
    }

    /// Whether a leak group is not in the baseline (all of them without one): what sets
    /// the at-exit check's exit status.
    pub fn has_new_leaks(&self) -> bool {
        self.leaks.iter().any(|g| !g.in_baseline)
    }

    /// Whether the leak check could not run to the end (see [`CheckStatus`]).
    pub fn check_failed(&self) -> bool {
        self.failure().is_some()
    }

    /// Why the leak check could not run to the end, when it could not.
    pub fn failure(&self) -> Option<&CheckFailure> {
        self.status.failure()
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

    /// Checks what a reader must check of a report read back: its format and version,
    /// and the rules of the contract: the direct and indirect blocks make up the leaked
    /// ones; the groups add up to the summary's leaked blocks and bytes, direct, indirect
    /// and cyclic blocks; no group is empty. The error names the first rule broken.
    ///
    /// The order of the groups is not checked: the allocator writes them largest `bytes`
    /// first, but a reader needs no order, and edited or merged reports may have another.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != Self::FORMAT {
            return Err(format!("format is {:?}, expected {:?}", self.format, Self::FORMAT));
        }
        if self.version != Self::VERSION {
            return Err(format!("unsupported report version {} (this build reads version 1)", self.version));
        }
        let s = &self.summary;
        if s.direct_blocks.checked_add(s.indirect_blocks) != Some(s.leaked_blocks) {
            return Err(format!(
                "summary: direct_blocks {} + indirect_blocks {} differ from leaked_blocks {}",
                s.direct_blocks, s.indirect_blocks, s.leaked_blocks
            ));
        }
        let blocks = |keep: &dyn Fn(&LeakGroup) -> bool| -> u64 {
            self.leaks.iter().filter(|g| keep(g)).fold(0, |n, g| n.saturating_add(g.blocks))
        };
        let bytes = self.leaks.iter().fold(0u64, |n, g| n.saturating_add(g.bytes));
        let sums = [
            ("leaked_blocks", blocks(&|_| true), s.leaked_blocks),
            ("leaked_bytes", bytes, s.leaked_bytes),
            ("direct_blocks", blocks(&|g| g.kind == LeakKind::Direct), s.direct_blocks),
            ("indirect_blocks", blocks(&|g| g.kind == LeakKind::Indirect), s.indirect_blocks),
            ("cyclic_blocks", blocks(&|g| g.cyclic), s.cyclic_blocks),
        ];
        for (name, got, want) in sums {
            if got != want {
                return Err(format!("the leak groups add up to {got} {name}, the summary says {want}"));
            }
        }
        if let Some(i) = self.leaks.iter().position(|g| g.blocks == 0) {
            return Err(format!("leak group {i} has no blocks"));
        }
        self.cycles
            .iter()
            .enumerate()
            .try_for_each(|(i, c)| c.validate(self.leaks.len()).map_err(|e| format!("cycle {i}: {e}")))
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and integers to a String cannot fail.
        crate::pretty_json::to_string_pretty(self).unwrap_or_default()
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
