//! Symbolization: raw return addresses to frames (function, file, line), in process, with
//! the `backtrace` crate, after the world resumed; and trimming of the allocator's own
//! frames at the top of each stack and of the runtime's frames below `main`.

use super::model::Frame;
use std::collections::HashMap;

/// Turns one return address into frames (several when calls were inlined).
pub(crate) trait Symbolizer {
    fn resolve(&mut self, ip: usize) -> Vec<Frame>;
}

fn raw_frame(ip: usize) -> Frame {
    Frame { ip: format!("{ip:#x}"), function: None, file: None, line: None }
}

/// Resolves with the debug information of the running process; caches per address.
#[derive(Default)]
pub(crate) struct InProcess {
    cache: HashMap<usize, Vec<Frame>>,
}

impl Symbolizer for InProcess {
    fn resolve(&mut self, ip: usize) -> Vec<Frame> {
        self.cache
            .entry(ip)
            .or_insert_with(|| {
                let mut frames = Vec::new();
                // `resolve` looks up `ip - 1`: a return address points after its call.
                backtrace::resolve(ip as *mut core::ffi::c_void, |sym| {
                    let cwd = std::env::current_dir().ok();
                    let file = sym.filename().map(|f| match cwd.as_deref().and_then(|c| f.strip_prefix(c).ok()) {
                        Some(rel) => rel.display().to_string(),
                        None => f.display().to_string(),
                    });
                    frames.push(Frame {
                        ip: format!("{ip:#x}"),
                        function: sym.name().map(|n| format!("{n:#}")),
                        file,
                        line: sym.lineno(),
                    });
                });
                if frames.is_empty() {
                    frames.push(raw_frame(ip));
                }
                frames
            })
            .clone()
    }
}

/// Keeps raw addresses (`symbolize=0`).
pub(crate) struct RawOnly;

impl Symbolizer for RawOnly {
    fn resolve(&mut self, ip: usize) -> Vec<Frame> {
        vec![raw_frame(ip)]
    }
}

/// Functions of the allocator's own plumbing, trimmed from the top of every stack.
const PLUMBING: &[&str] = &[
    "alloc_core::",
    "<alloc_core::",
    "__rust_alloc",
    "__rust_realloc",
    "__rust_alloc_zeroed",
    "__rustc::",
    "alloc::boxed::box_new_uninit",
    "__rg_",
    "__rdl_",
    "alloc::alloc::",
    "<alloc::alloc::Global",
    "std::alloc::",
    "alloc::raw_vec::",
    "<alloc::raw_vec::",
];

/// Short names (what inlined frames carry when only line tables were kept) of the
/// allocation entry points.
const PLUMBING_SHORT: &[&str] = &["__rust_alloc", "__rust_realloc", "__rust_alloc_zeroed", "box_new_uninit"];

/// Source files of allocation plumbing: std's allocation glue and this crate itself.
const PLUMBING_FILES: &[&str] = &[
    "library/alloc/src/alloc.rs",
    "library/alloc/src/raw_vec",
    "library/std/src/alloc.rs",
    "alloc-core/src/",
    "alloc-core-",
];

/// Functions from which on the frames belong to the runtime that called `main`.
const RUNTIME: &[&str] = &[
    "std::rt::lang_start",
    "std::sys::backtrace::__rust_begin_short_backtrace",
    "__rust_begin_short_backtrace",
    "lang_start",
    "__libc_start",
];

fn is_plumbing(f: &Frame) -> bool {
    let by_name =
        f.function.as_deref().is_some_and(|n| PLUMBING.iter().any(|p| n.starts_with(p)) || PLUMBING_SHORT.contains(&n));
    let by_file = f.file.as_deref().is_some_and(|path| {
        PLUMBING_FILES.iter().any(|p| path.contains(p)) && !path.contains("/tests/") && !path.contains("/examples/")
    });
    by_name || by_file
}

/// Symbolizes `ips` (innermost first) and trims allocator and runtime frames. Unresolved
/// frames are kept (there is nothing to trim them by).
pub(crate) fn stack_frames(ips: &[usize], sym: &mut dyn Symbolizer) -> Vec<Frame> {
    let mut frames: Vec<Frame> = ips.iter().flat_map(|&ip| sym.resolve(ip)).collect();
    let top = frames.iter().position(|f| !is_plumbing(f)).unwrap_or(frames.len());
    frames.drain(..top);
    if let Some(cut) =
        frames.iter().position(|f| f.function.as_deref().is_some_and(|n| RUNTIME.iter().any(|r| n.starts_with(r))))
    {
        frames.truncate(cut);
        while frames.last().is_some_and(|f| {
            f.function.as_deref().is_some_and(|n| n.starts_with("core::ops::function::FnOnce::call_once"))
        }) {
            frames.pop();
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Vec<(usize, &'static str)>);
    impl Symbolizer for Fake {
        fn resolve(&mut self, ip: usize) -> Vec<Frame> {
            let name = self.0.iter().find(|(i, _)| *i == ip).map(|(_, n)| n.to_string());
            vec![Frame { ip: format!("{ip:#x}"), function: name, file: None, line: None }]
        }
    }

    #[test]
    fn allocator_and_runtime_frames_are_trimmed() {
        let mut s = Fake(vec![
            (1, "alloc_core::heap::Heap::alloc"),
            (2, "__rust_alloc"),
            (3, "alloc::alloc::alloc"),
            (4, "alloc::rc::Rc<T>::new"),
            (5, "demo::make_cycle"),
            (6, "demo::main"),
            (7, "core::ops::function::FnOnce::call_once"),
            (8, "std::sys::backtrace::__rust_begin_short_backtrace"),
            (9, "std::rt::lang_start::{{closure}}"),
        ]);
        let f = stack_frames(&[1, 2, 3, 4, 5, 6, 7, 8, 9], &mut s);
        let names: Vec<_> = f.iter().map(|f| f.function.clone().unwrap()).collect();
        assert_eq!(names, ["alloc::rc::Rc<T>::new", "demo::make_cycle", "demo::main"]);
    }

    #[inline(never)]
    fn capture_here() -> Vec<usize> {
        let mut ips = Vec::new();
        backtrace::trace(|f| {
            ips.push(f.ip() as usize);
            true
        });
        ips
    }

    #[test]
    fn real_frames_resolve_to_this_function_and_file() {
        let ips = capture_here();
        let frames = stack_frames(&ips, &mut InProcess::default());
        assert!(frames.iter().any(|f| f
            .function
            .as_deref()
            .is_some_and(|n| n.contains("real_frames_resolve_to_this_function_and_file"))));
        assert!(frames
            .iter()
            .any(|f| f.file.as_deref().is_some_and(|p| p.ends_with("symbolize.rs")) && f.line.is_some()));
    }
}
