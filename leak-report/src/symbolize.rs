//! Offline symbolization: filling in function, file and line of frames recorded with only
//! their addresses (`HEAPSWEEP=...,symbolize=0`), from the binaries that ran.
//!
//! # What it owns
//! [`symbolize`]. For each binary given, the module of the input's `modules` table that is
//! that binary (same file name, else same path) gives the load bias `base`; each frame
//! whose address lies in that module's range (or that names the module) is looked up at
//! `ip - base - 1` (return addresses point after the call) with `addr2line`, which expands
//! inlined calls into several frames, innermost first; the symbol table is the fallback
//! when there is no debug information. Then [`alloc_core::report::trim_frames`] drops the
//! allocator's and the runtime's frames, as the in-process report does.
//!
//! A build id recorded in the report that differs from the binary's is a warning (the
//! lines may be wrong), not an error.
//!
//! Trimming can make two leak groups' stacks equal (they differed only in allocator
//! frames); such groups are merged, so that a leak report keeps one group per (kind,
//! cyclic, stack), largest first, as the contract says. Profile sites are left as they are:
//! their maxima do not add up.

use crate::input::Input;
use crate::progress::Progress;
use crate::stacks::{file_name, frame_ip};
use heapsweep_format::report::{Frame, LeakGroup, LeakKind, Module};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What symbolization did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SymbolizeStats {
    /// Frames looked up.
    pub looked_up: usize,
    /// Of those, frames that got a function name.
    pub resolved: usize,
    /// Warnings (build id mismatch, binary matching no module).
    pub warnings: Vec<String>,
}

/// Symbolizes the frames of `input` that lie in one of `binaries`, then trims every stack.
pub fn symbolize(input: &mut Input, binaries: &[PathBuf], workdir: &Path) -> Result<SymbolizeStats, String> {
    let mut stats = SymbolizeStats::default();
    let mut targets = Vec::new();
    for bin in binaries {
        let loader = addr2line::Loader::new(bin)
            .map_err(|e| format!("{}: cannot read debug information: {e}", bin.display()))?;
        let Some(module) = matching_module(input.modules(), bin) else {
            stats
                .warnings
                .push(format!("{}: no module of the report is this binary; nothing looked up in it", bin.display()));
            continue;
        };
        if let Some(w) = build_id_warning(&module, bin) {
            stats.warnings.push(w);
        }
        targets.push(Target { loader, module, cache: HashMap::new() });
    }
    let mut stacks = input.stacks_mut();
    let progress = Progress::bar(stacks.len(), "symbolizing");
    for stack in stacks.iter_mut() {
        let mut out = Vec::with_capacity(stack.len());
        for f in stack.drain(..) {
            match targets.iter_mut().find(|t| t.holds(&f)) {
                Some(t) if f.function.is_none() => {
                    stats.looked_up += 1;
                    let frames = t.lookup(&f, workdir);
                    stats.resolved += usize::from(frames.iter().any(|x| x.function.is_some()));
                    out.extend(frames);
                }
                _ => out.push(f),
            }
        }
        alloc_core::report::trim_frames(&mut out);
        **stack = out;
        progress.inc();
    }
    progress.finish();
    if let Input::Leaks(r) = input {
        merge_groups(&mut r.leaks);
    }
    Ok(stats)
}

/// Merges groups with equal (kind, cyclic, stack), adding their counts, and sorts them by
/// bytes, largest first. The merged group keeps the first one's `rc` and `stack_id`.
pub fn merge_groups(groups: &mut Vec<LeakGroup>) {
    let mut index: HashMap<(LeakKind, bool, Vec<Frame>), usize> = HashMap::new();
    let mut merged: Vec<LeakGroup> = Vec::with_capacity(groups.len());
    for g in groups.drain(..) {
        match index.entry((g.kind, g.cyclic, g.stack.clone())) {
            Entry::Occupied(i) => {
                merged[*i.get()].blocks += g.blocks;
                merged[*i.get()].bytes += g.bytes;
            }
            Entry::Vacant(slot) => {
                slot.insert(merged.len());
                merged.push(g);
            }
        }
    }
    merged.sort_by_key(|g| std::cmp::Reverse(g.bytes));
    *groups = merged;
}

/// A binary, the module it was loaded as, and the lookups done so far.
struct Target {
    loader: addr2line::Loader,
    module: Module,
    cache: HashMap<u64, Vec<Frame>>,
}

impl Target {
    fn holds(&self, f: &Frame) -> bool {
        self.module.contains(frame_ip(f))
            || f.module
                .as_deref()
                .is_some_and(|m| m == self.module.path || file_name(m) == file_name(&self.module.path))
    }

    fn lookup(&mut self, f: &Frame, workdir: &Path) -> Vec<Frame> {
        let ip = frame_ip(f);
        let loader = &self.loader;
        let base = Module::parse_address(&self.module.base).unwrap_or(0);
        let module = f.module.clone().or_else(|| Some(self.module.path.clone()));
        let frames =
            self.cache.entry(ip).or_insert_with(|| resolve(loader, ip.wrapping_sub(base).wrapping_sub(1), workdir));
        if frames.is_empty() {
            return vec![Frame { module, ..f.clone() }];
        }
        frames.iter().map(|x| Frame { ip: f.ip.clone(), module: module.clone(), ..x.clone() }).collect()
    }
}

/// Frames (innermost first) at object-file address `probe`; empty when unknown.
fn resolve(loader: &addr2line::Loader, probe: u64, workdir: &Path) -> Vec<Frame> {
    let mut out = Vec::new();
    if let Ok(mut iter) = loader.find_frames(probe) {
        while let Ok(Some(fr)) = iter.next() {
            let function = fr.function.as_ref().and_then(|n| n.raw_name().ok()).map(|n| demangle(&n));
            let (file, line) = match fr.location {
                Some(loc) => (loc.file.map(|p| relative(p, workdir)), loc.line),
                None => (None, None),
            };
            out.push(Frame { ip: String::new(), function, file, line, module: None });
        }
    }
    if out.iter().all(|f| f.function.is_none()) {
        if let Some(name) = loader.find_symbol(probe) {
            return vec![Frame {
                ip: String::new(),
                function: Some(demangle(name)),
                file: None,
                line: None,
                module: None,
            }];
        }
    }
    out
}

/// Demangled, without the `::h<hash>` suffix.
fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// A path relative to the working directory when under it, as in-process reports write it.
fn relative(path: &str, workdir: &Path) -> String {
    Path::new(path).strip_prefix(workdir).map_or_else(|_| path.to_string(), |p| p.to_string_lossy().into_owned())
}

/// The module that is `bin`: same path, else same file name.
fn matching_module(modules: &[Module], bin: &Path) -> Option<Module> {
    let canonical = std::fs::canonicalize(bin).unwrap_or_else(|_| bin.to_path_buf());
    let by_path = modules.iter().find(|m| Path::new(&m.path) == canonical || Path::new(&m.path) == bin);
    let name = bin.file_name()?.to_string_lossy();
    by_path.or_else(|| modules.iter().find(|m| file_name(&m.path) == name)).cloned()
}

/// A warning when both the report and the binary have a build id and they differ.
fn build_id_warning(module: &Module, bin: &Path) -> Option<String> {
    let want = module.build_id.as_deref()?;
    let have = build_id(bin)?;
    (have != want).then(|| {
        format!(
            "{}: build id {have} differs from the report's {want} for {}: this is not the binary that ran; lines may be wrong",
            bin.display(),
            module.path
        )
    })
}

/// The GNU build id of an object file, lowercase hex.
pub fn build_id(path: &Path) -> Option<String> {
    use object::Object;
    let data = std::fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let id = file.build_id().ok()??;
    Some(id.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_whose_stacks_became_equal_are_merged() {
        let mut r = crate::synthetic::leak_report(4, 3);
        let before = (r.leaked_blocks(), r.leaked_bytes());
        r.leaks[3].stack = r.leaks[0].stack.clone();
        r.leaks[3].kind = r.leaks[0].kind;
        r.leaks[3].cyclic = r.leaks[0].cyclic;
        let merged = r.leaks[0].bytes + r.leaks[3].bytes;
        merge_groups(&mut r.leaks);
        assert_eq!(r.leaks.len(), 3);
        assert_eq!((r.leaked_blocks(), r.leaked_bytes()), before);
        assert!(r.leaks.windows(2).all(|w| w[0].bytes >= w[1].bytes));
        assert!(r.leaks.iter().any(|g| g.bytes == merged));
    }
}
