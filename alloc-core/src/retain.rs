//! "Why is this alive?": [`retained_by`], a shortest chain of pointers from a root to a
//! block, with each block's allocation site and the offset of the pointer to the next.
//!
//! # What it owns
//! The public answer ([`Retention`], [`RetentionRoot`], [`RetentionStep`],
//! [`RetainError`]) and the run that finds it: lock the allocator, stop the world, list
//! the roots as a leak check does, search (`leak::path`), resume, then symbolize.
//!
//! # The caller's own stack comes last
//! `retained_by(ptr)` is called with the pointer in hand, so the calling thread's stack
//! (its frames from this function's caller up) holds a copy of it. The search first runs
//! without that stack; only if nothing else reaches the block is the calling thread's
//! stack taken as the answer, and then its words that hold exactly the pointer asked
//! about (the argument's own copies) are passed over: a pointer to the block's start or
//! inside it held elsewhere on this stack still counts.

use crate::heap::walk::HeapSnapshot;
use crate::leak::path::{self, Chain, ChainRoot};
use crate::leak::view::{BlockDesc, HeapView};
use crate::leak::{self, Failure, RootRange};
use crate::os::MmapVec;
use crate::report::model::{allocation_site, site_label, Frame};
use crate::report::symbolize::{self, InProcess};
use crate::thread_state::ReentrancyGuard;
use std::fmt;

/// What kind of memory holds the first pointer of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RootKind {
    /// A thread's stack (the calling thread's own only when nothing else reaches the block).
    Stack,
    /// A stopped thread's saved registers.
    Registers,
    /// A static: the writable data of the executable or a loaded library.
    Globals,
    /// A thread's static thread-local storage.
    Tls,
    /// Other writable memory (libc's malloc heap, foreign anonymous mappings).
    OtherMapping,
    /// A region given to `register_root`.
    Registered,
    /// A block marked as intentionally kept (`ignore`, `disable`): a root by the user's say.
    IgnoredBlock,
}

impl RootKind {
    fn describe(self) -> &'static str {
        match self {
            RootKind::Stack => "a thread's stack",
            RootKind::Registers => "a thread's registers",
            RootKind::Globals => "static data",
            RootKind::Tls => "thread-local storage",
            RootKind::OtherMapping => "other writable memory",
            RootKind::Registered => "a registered root region",
            RootKind::IgnoredBlock => "an ignored block",
        }
    }
}

/// Where the chain starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionRoot {
    pub kind: RootKind,
    /// The root range (for an ignored block: the block).
    pub start: usize,
    pub end: usize,
    /// The address of the word that points into the first block of the chain (`None` for
    /// an ignored block, which is a root as a whole).
    pub word: Option<usize>,
    /// For static data: the symbol the word lies in, as `name+offset`, when the
    /// executable's symbol table names it.
    pub symbol: Option<String>,
    /// For an ignored block: its allocation stack.
    pub stack: Vec<Frame>,
}

/// One block of the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionStep {
    /// The block's address and requested size.
    pub address: usize,
    pub size: usize,
    /// The offset in this block of the word that points to the next block; `None` for
    /// the last block, the one asked about.
    pub next_offset: Option<usize>,
    /// The allocation stack, innermost first, trimmed of the allocator's frames as in leak
    /// reports (empty when stacks are not recorded).
    pub stack: Vec<Frame>,
}

impl RetentionStep {
    /// The allocation site: the innermost frame outside the standard library (the code
    /// that called `Box::new`, `Vec::push`...), else the innermost frame.
    pub fn site(&self) -> Option<&Frame> {
        allocation_site(&self.stack)
    }
}

/// A shortest chain of pointers that keeps a block alive: the root, then every block from
/// the one the root points into to the block asked about (the last step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    pub root: RetentionRoot,
    pub steps: Vec<RetentionStep>,
}

/// Why [`retained_by`] has no chain to give.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetainError {
    /// The address is not inside a live block of this allocator.
    NotABlock { address: usize },
    /// No root reaches the block: it is leaked (a leak check would report it).
    Unreachable { address: usize, size: usize },
    /// The search could not run (threads that would not stop, unreadable mappings, out
    /// of memory): the same failures a leak check reports.
    Failed { message: String },
}

impl fmt::Display for RetainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetainError::NotABlock { address } => write!(f, "{address:#x} is not inside a live block"),
            RetainError::Unreachable { address, size } => {
                write!(f, "nothing reaches the block at {address:#x} ({size} bytes): it is leaked")
            }
            RetainError::Failed { message } => write!(f, "the search did not run: {message}"),
        }
    }
}

impl std::error::Error for RetainError {}

/// A shortest chain of pointers from a root (a stack, a register, a static, TLS, a
/// registered region or an ignored block) to the live block containing `ptr`: for each
/// block, its address, size, allocation stack and the offset of the pointer to the next.
/// The answer to "why is this still alive?", as Python's `gc.get_referrers` followed back
/// to a root. Stops the world as a leak check does.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
/// use std::sync::Mutex;
///
/// static CACHE: Mutex<Vec<Box<[u8; 40]>>> = Mutex::new(Vec::new());
/// CACHE.lock().unwrap().push(Box::new([1; 40]));
/// let inner = &*CACHE.lock().unwrap()[0] as *const [u8; 40] as *const u8;
/// let why = alloc_core::retained_by(inner).unwrap();
/// assert_eq!(why.root.kind, alloc_core::retain::RootKind::Globals);
/// // The static holds the Vec's buffer, which holds the box.
/// assert_eq!(why.steps.len(), 2);
/// assert_eq!(why.steps[1].size, 40);
/// println!("{why}");
/// ```
#[inline(never)]
pub fn retained_by(ptr: *const u8) -> Result<Retention, RetainError> {
    let _one_at_a_time = crate::check::CHECKS.lock();
    let mut spill = [0usize; crate::platform::CALLEE_SAVED_REGISTERS];
    let sp = leak::spill_registers(&mut spill);
    let _guard = ReentrancyGuard::enter();
    let found = search(ptr as usize, sp);
    std::hint::black_box(&spill);
    let result = match found {
        Ok(Found::Chain(chain)) => Ok(describe(&chain)),
        Ok(Found::Unreachable { address, size }) => Err(RetainError::Unreachable { address, size }),
        Ok(Found::NotABlock) => Err(RetainError::NotABlock { address: ptr as usize }),
        Err(failure) => Err(RetainError::Failed { message: failure_message(failure) }),
    };
    crate::stack::scrub_below(crate::check::this_thread_stack());
    result
}

/// Most sites [`chains_to_sites`] answers for at once.
pub(crate) const MAX_SITES: usize = 8;

/// What [`chains_to_sites`] found for one site.
#[derive(Clone)]
pub(crate) enum SiteChain {
    /// The site has no live block.
    NoLiveBlock,
    /// The search could not run (the failures a leak check reports).
    Failed(String),
    /// Its largest live block (address, size) and why it is alive.
    Block { address: usize, size: usize, why: Result<Retention, RetainError> },
}

/// For each site (the stack ids of its allocations; at most [`MAX_SITES`] are answered),
/// a shortest chain from a root to its largest live block, as [`retained_by`] finds one,
/// with the world stopped once for all of them. The calling thread's stack is scanned
/// from `sp` up (the caller's frame: no block address is in hand there). Used by heap
/// profiles with `verbosity=2`.
pub(crate) fn chains_to_sites(sites: &[&[u32]], sp: usize) -> Vec<SiteChain> {
    let sites = &sites[..sites.len().min(MAX_SITES)];
    let _guard = ReentrancyGuard::enter();
    let (found, stop_failure, _) =
        crate::check::with_world_stopped(|view, world, plan, opts| sites_stopped(view, world, plan, opts, sites, sp));
    // A search in a world not stopped only read: its chains are dropped for the failure.
    let out = match (found, stop_failure) {
        (Err(f), _) | (Ok(_), Some(f)) => vec![SiteChain::Failed(failure_message(f)); sites.len()],
        (Ok(targets), None) => targets[..sites.len()].iter().map(site_chain).collect(),
    };
    crate::stack::scrub_below(crate::check::this_thread_stack());
    out
}

/// One site's answer, symbolized (the world runs again).
fn site_chain(target: &Option<SiteTarget>) -> SiteChain {
    let Some((_, d, chain)) = target else { return SiteChain::NoLiveBlock };
    let why = match chain {
        Ok(Some(c)) => Ok(describe(c)),
        Ok(None) => Err(RetainError::Unreachable { address: d.start, size: d.size }),
        Err(f) => Err(RetainError::Failed { message: failure_message(*f) }),
    };
    SiteChain::Block { address: d.start, size: d.size, why }
}

/// A site's largest live block (id, description) and the search's answer.
type SiteTarget = (u32, BlockDesc, Result<Option<Chain>, Failure>);
/// Per site, its [`SiteTarget`] (`None`: no live block).
type SiteTargets = [Option<SiteTarget>; MAX_SITES];

/// Finds each site's largest live block, lists the roots once, searches for each.
/// Allocates nothing (`MmapVec`s only): the world is stopped.
fn sites_stopped(
    view: &HeapSnapshot<'_>,
    world: &leak::stop::StoppedWorld,
    plan: &leak::RootPlan,
    opts: &leak::RootOptions,
    sites: &[&[u32]],
    sp: usize,
) -> Result<SiteTargets, Failure> {
    let mut largest: [Option<(u32, BlockDesc)>; MAX_SITES] = [None; MAX_SITES];
    view.for_each_block(&mut |id, d| {
        if d.ignored {
            return;
        }
        if let Some(i) = sites.iter().position(|ids| ids.contains(&d.stack)) {
            if largest[i].is_none_or(|(_, best)| d.size > best.size) {
                largest[i] = Some((id, d));
            }
        }
    });
    let (mut maps, mut roots) = (MmapVec::new(), MmapVec::new());
    if !maps.reserve(1 << 16) {
        return Err(Failure::OutOfMemory { what: "the mapping list" });
    }
    leak::roots::collect_roots(view, world, plan, opts, sp, &mut maps, &mut roots)?;
    Ok(largest.map(|target| target.map(|(id, d)| (id, d, path::shortest_chain(view, &roots, id)))))
}

/// What the stopped-world part found.
enum Found {
    Chain(Chain),
    Unreachable { address: usize, size: usize },
    NotABlock,
}

/// Stops the world, lists the roots, searches; resumes. Allocates nothing meanwhile.
fn search(addr: usize, sp: usize) -> Result<Found, Failure> {
    // A search in a world not stopped only read: its answer is dropped for the failure.
    let (found, stop_failure, _) =
        crate::check::with_world_stopped(|view, world, plan, opts| search_stopped(view, world, plan, opts, addr, sp));
    match stop_failure {
        Some(f) => Err(f),
        None => found,
    }
}

fn search_stopped(
    view: &HeapSnapshot<'_>,
    world: &leak::stop::StoppedWorld,
    plan: &leak::RootPlan,
    opts: &leak::RootOptions,
    addr: usize,
    sp: usize,
) -> Result<Found, Failure> {
    let Some((target, desc)) = view.block_containing(addr) else { return Ok(Found::NotABlock) };
    let (mut maps, mut roots) = (MmapVec::new(), MmapVec::new());
    if !maps.reserve(1 << 16) {
        return Err(Failure::OutOfMemory { what: "the mapping list" });
    }
    leak::roots::collect_roots(view, world, plan, opts, sp, &mut maps, &mut roots)?;
    let mut others: MmapVec<RootRange> = MmapVec::new();
    for r in roots.iter().filter(|r| !(r.start <= sp && sp < r.end)) {
        if !others.push(*r) {
            return Err(Failure::OutOfMemory { what: "the root list" });
        }
    }
    if let Some(chain) = path::shortest_chain(view, &others, target)? {
        return Ok(Found::Chain(chain));
    }
    // The calling thread's stack holds copies of `addr` itself (the argument on its way
    // here): those are not what keeps the block alive.
    // Its scan starts `RED_ZONE` bytes below `sp` (as the roots' does): the frames of
    // this search's own machinery may have left copies there too.
    let start = sp.saturating_sub(crate::platform::RED_ZONE);
    let skip = path::Skip { start, end: sp.saturating_add(1 << 30), value: addr };
    match path::shortest_chain_skipping(view, &roots, target, skip)? {
        Some(chain) => Ok(Found::Chain(chain)),
        None => Ok(Found::Unreachable { address: desc.start, size: desc.size }),
    }
}

/// The chain in the public form, symbolized (the world runs again).
fn describe(chain: &Chain) -> Retention {
    let mut sym = InProcess::default();
    let mut stack_of =
        |id: u32| symbolize::stack_frames(crate::stack::frames(crate::stack::StackId::from_u32(id)), &mut sym);
    let root = match chain.root {
        ChainRoot::Range { range, word } => RetentionRoot {
            kind: public_kind(range.kind),
            start: range.start,
            end: range.end,
            word: Some(word),
            symbol: (range.kind == leak::roots::RootKind::Globals).then(|| symbol_of(word)).flatten(),
            stack: Vec::new(),
        },
        ChainRoot::Ignored { block } => RetentionRoot {
            kind: RootKind::IgnoredBlock,
            start: block.start,
            end: block.start + block.size,
            word: None,
            symbol: None,
            stack: stack_of(block.stack),
        },
    };
    let steps = chain
        .links
        .iter()
        .map(|l| RetentionStep {
            address: l.block.start,
            size: l.block.size,
            next_offset: l.next_word.map(|w| w - l.block.start),
            stack: stack_of(l.block.stack),
        })
        .collect();
    Retention { root, steps }
}

fn public_kind(kind: leak::roots::RootKind) -> RootKind {
    use leak::roots::RootKind as K;
    match kind {
        K::Stack => RootKind::Stack,
        K::Registers => RootKind::Registers,
        K::Globals => RootKind::Globals,
        K::Tls => RootKind::Tls,
        K::OtherMapping => RootKind::OtherMapping,
        K::Registered => RootKind::Registered,
    }
}

/// The symbol (a static) holding the data word at `addr`, as `name+offset`.
fn symbol_of(addr: usize) -> Option<String> {
    let mut out = None;
    // `resolve` looks up the address minus one (it expects return addresses): add it back.
    backtrace::resolve((addr + 1) as *mut core::ffi::c_void, |sym| {
        if out.is_none() {
            out = sym.name().map(|name| match sym.addr() {
                Some(start) if start as usize != addr => format!("{name:#}+{:#x}", addr.wrapping_sub(start as usize)),
                _ => format!("{name:#}"),
            });
        }
    });
    out
}

fn failure_message(f: Failure) -> String {
    crate::check::describe(f).message
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(last) = self.steps.last() else {
            return writeln!(f, "{:#x} is itself an ignored block (kept on purpose)", self.root.start);
        };
        writeln!(
            f,
            "{:#x} ({} bytes) is kept alive by this chain of {} block(s):",
            last.address,
            last.size,
            self.steps.len()
        )?;
        let r = &self.root;
        write!(f, "  root: {} {:#x}..{:#x}", r.kind.describe(), r.start, r.end)?;
        if let Some(word) = r.word {
            write!(f, ", the word at {word:#x}")?;
        }
        if let Some(symbol) = &r.symbol {
            write!(f, " (in {symbol})")?;
        }
        if let Some(site) = allocation_site(&r.stack) {
            write!(f, ", allocated at {}", site_label(site))?;
        }
        writeln!(f)?;
        for (i, s) in self.steps.iter().enumerate() {
            write!(f, "  #{i} {:#x} ({} bytes)", s.address, s.size)?;
            match s.site() {
                Some(site) => write!(f, " allocated at {}", site_label(site))?,
                None => write!(f, " (no allocation stack recorded)")?,
            }
            match s.next_offset {
                Some(off) => writeln!(f, "; the pointer to #{} is at +{off:#x}", i + 1)?,
                None => writeln!(f, "; the block asked about")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_root_sites_and_offsets() {
        let frame = |name: &str, line| Frame {
            ip: "0x1".into(),
            function: Some(name.into()),
            file: Some("src/main.rs".into()),
            line: Some(line),
            module: None,
        };
        let r = Retention {
            root: RetentionRoot {
                kind: RootKind::Globals,
                start: 0x1000,
                end: 0x2000,
                word: Some(0x1010),
                symbol: Some("app::CACHE+0x10".into()),
                stack: vec![],
            },
            steps: vec![
                RetentionStep { address: 0x5000, size: 64, next_offset: Some(8), stack: vec![frame("app::fill", 7)] },
                RetentionStep { address: 0x6000, size: 40, next_offset: None, stack: vec![frame("app::make", 9)] },
            ],
        };
        let text = r.to_string();
        assert!(text.starts_with("0x6000 (40 bytes) is kept alive by this chain of 2 block(s):\n"), "{text}");
        assert!(text.contains("root: static data 0x1000..0x2000, the word at 0x1010 (in app::CACHE+0x10)"), "{text}");
        assert!(
            text.contains("#0 0x5000 (64 bytes) allocated at app::fill src/main.rs:7; the pointer to #1 is at +0x8")
        );
        assert!(text.contains("#1 0x6000 (40 bytes) allocated at app::make src/main.rs:9; the block asked about"));
    }
}
