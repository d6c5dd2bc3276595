//! Symbolization: raw return addresses to frames (function, file, line, module), in
//! process, with the `backtrace` crate; and trimming of the allocator's own frames at the
//! innermost end of each stack and of the runtime's frames below `main`.
//!
//! # Who calls it
//! [`build`](super::build) for leak reports and `misuse` for misuse reports, after the
//! world resumed, with the reentrancy guard set: its allocations (and those of the
//! `backtrace` crate's debug-information cache) go to the internal heap.
//!
//! # Design
//! A [`Symbolizer`] turns one address into frames; [`InProcess`] reads the process's own
//! debug information and caches per address, [`RawOnly`] keeps the bare address
//! (`symbolize=0`), and tests pass a closure. [`stack_frames`] resolves a whole stack
//! and trims it, by names only, so trimming is tested on made-up names.

use super::model::Frame;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Turns one return address into frames, innermost first: several when calls were
/// inlined into the function holding the address.
pub(crate) trait Symbolizer {
    fn resolve(&mut self, ip: usize) -> Vec<Frame>;
}

/// Any `FnMut(ip) -> frames` symbolizes (tests inject fakes this way).
impl<F: FnMut(usize) -> Vec<Frame>> Symbolizer for F {
    fn resolve(&mut self, ip: usize) -> Vec<Frame> {
        self(ip)
    }
}

/// Resolves with the debug information of the running process; caches per address.
#[derive(Default)]
pub(crate) struct InProcess {
    cache: HashMap<usize, Vec<Frame>>,
    /// The working directory, to shorten the source paths under it.
    /// Asked at the first address resolved (a clean report resolves none).
    cwd: Option<Option<PathBuf>>,
}

impl Symbolizer for InProcess {
    fn resolve(&mut self, ip: usize) -> Vec<Frame> {
        let cwd = self.cwd.get_or_insert_with(|| std::env::current_dir().ok()).as_deref();
        self.cache.entry(ip).or_insert_with(|| resolve_uncached(ip, cwd)).clone()
    }
}

/// The frames of `ip`; one unresolved frame when there is no symbol.
fn resolve_uncached(ip: usize, cwd: Option<&Path>) -> Vec<Frame> {
    let module = module_of(ip);
    if module.as_deref().is_some_and(is_preload_library) {
        // Plumbing by its module alone (`is_plumbing`), trimmed whatever its name: the
        // library's debug information (read and parsed at every exit that had a stack to
        // resolve: 10 MB of peak memory in rayon-core's test binary) would serve nothing.
        return vec![Frame { module, ..Frame::unresolved(ip) }];
    }
    let mut frames = Vec::new();
    // `resolve` looks up `ip - 1` itself: a return address points after its call.
    backtrace::resolve(ip as *mut core::ffi::c_void, |sym| {
        frames.push(Frame {
            ip: format!("{ip:#x}"),
            // `{:#}` leaves out the trailing hash of legacy-mangled names.
            function: sym.name().map(|n| format!("{n:#}")),
            file: sym.filename().map(|f| shorten(f, cwd)),
            line: sym.lineno(),
            module: module.clone(),
        });
    });
    if frames.is_empty() {
        frames.push(Frame { module, ..Frame::unresolved(ip) });
    }
    frames
}

/// `path` relative to `cwd` when under it.
fn shorten(path: &Path, cwd: Option<&Path>) -> String {
    match cwd.and_then(|c| path.strip_prefix(c).ok()) {
        Some(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}

/// Path of the executable or shared object holding the return address `ip`.
fn module_of(ip: usize) -> Option<String> {
    // The call instruction, not the return address, which may lie past the object's end.
    crate::platform::dladdr_file_name(ip.saturating_sub(1), |name| {
        (!name.to_bytes().is_empty()).then(|| name.to_string_lossy().into_owned())
    })
    .flatten()
}

/// Keeps raw addresses and their modules (`symbolize=0`), for symbolizing later.
pub(crate) struct RawOnly;

impl Symbolizer for RawOnly {
    fn resolve(&mut self, ip: usize) -> Vec<Frame> {
        vec![Frame { module: module_of(ip), ..Frame::unresolved(ip) }]
    }
}

/// Symbolizes `ips` (innermost first) and trims allocator and runtime frames.
///
/// Addresses are resolved from the innermost outwards, and no further than the first
/// runtime frame, where [`trim`] cuts: the C library's start frames past it would be
/// resolved for nothing, and where its separate debug information is installed, reading
/// that (compressed) costs more than all the program's own frames.
pub(crate) fn stack_frames(ips: &[usize], sym: &mut dyn Symbolizer) -> Vec<Frame> {
    stack_frames_until(ips, sym, &mut |_| false).unwrap_or_default()
}

/// [`stack_frames`], calling `early(frame)` on each frame the trimming keeps as soon as
/// it is known to be kept (a frame comes after the allocator's plumbing, and no runtime
/// frame came before it; `FnOnce::call_once` glue is kept once a frame follows it that is
/// not glue nor runtime, or the stack ends). When `early` returns true, resolution stops
/// there and `None` is returned: the caller has its answer (a suppression matched an
/// inner frame), and the outer frames, whose debug information may be the program's
/// whole (tens of megabytes, compressed, for a test binary), are never read.
pub(crate) fn stack_frames_until(
    ips: &[usize],
    sym: &mut dyn Symbolizer,
    early: &mut dyn FnMut(&Frame) -> bool,
) -> Option<Vec<Frame>> {
    let mut frames: Vec<Frame> = Vec::new();
    // Frames before `checked` were given to `early`, or are leading plumbing.
    let (mut in_plumbing, mut checked, mut cut) = (true, 0, false);
    'resolving: for &ip in ips {
        let resolved = sym.resolve(ip);
        let at_runtime = resolved.iter().any(is_runtime);
        frames.extend(resolved);
        while checked < frames.len() {
            let f = &frames[checked];
            if in_plumbing && is_plumbing(f) {
                checked += 1;
                continue;
            }
            in_plumbing = false;
            if is_runtime(f) {
                cut = true;
                break 'resolving;
            }
            if is_call_shim(f) {
                // Kept only if something that is neither glue nor runtime follows.
                let Some(next) = frames[checked..].iter().position(|g| !is_call_shim(g)) else { break };
                if is_runtime(&frames[checked + next]) {
                    cut = true;
                    break 'resolving;
                }
            }
            if early(f) {
                return None;
            }
            checked += 1;
        }
        if at_runtime {
            break;
        }
    }
    // Glue at the end of a stack with no runtime frame: kept.
    if !cut && frames[checked..].iter().any(early) {
        return None;
    }
    trim(&mut frames);
    Some(frames)
}

/// Drops the allocator's plumbing at the innermost end and the runtime's frames at the
/// outermost end. Unresolved frames stop the trimming: there is no telling what they are.
pub(crate) fn trim(frames: &mut Vec<Frame>) {
    let top = frames.iter().position(|f| !is_plumbing(f)).unwrap_or(frames.len());
    frames.drain(..top);
    if let Some(cut) = frames.iter().position(is_runtime) {
        frames.truncate(cut);
        while frames.last().is_some_and(is_call_shim) {
            frames.pop();
        }
    }
}

/// Name prefixes of the allocator's own plumbing, trimmed from the innermost end. What
/// allocates a *kind* of object (`Box::new`, `Rc::new`, `Vec::push`) is kept.
const PLUMBING: &[&str] = &[
    "alloc_core::",
    "<alloc_core::",
    "__rust_alloc",
    "__rust_realloc",
    "__rust_alloc_zeroed",
    "__rustc::",
    "__rg_",
    "__rdl_",
    "alloc::alloc::",
    "<alloc::alloc::Global",
    "std::alloc::",
    "<std::alloc::",
    "alloc::raw_vec::",
    "<alloc::raw_vec::",
    "alloc::boxed::box_new_uninit",
];

/// Source files of allocation plumbing (for inlined frames whose names are short):
/// std's allocation glue and this crate's own sources.
const PLUMBING_FILES: &[&str] = &[
    "library/alloc/src/alloc.rs",
    "library/alloc/src/raw_vec",
    "library/std/src/alloc.rs",
    "alloc-core/src/",
    "alloc-core/preload/src/",
];

/// Whether `f` is the allocator's plumbing. This crate's own unit tests are not.
pub(crate) fn is_plumbing(f: &Frame) -> bool {
    let name = f.function.as_deref();
    if name.is_some_and(|n| n.contains("::tests::")) {
        return false;
    }
    let by_name = name.is_some_and(|n| {
        PLUMBING.iter().any(|p| n.starts_with(p)) || n == "box_new_uninit" || is_global_alloc_method(n)
    });
    let by_file = f.file.as_deref().is_some_and(|path| PLUMBING_FILES.iter().any(|p| path.contains(p)));
    by_name || by_file || f.module.as_deref().is_some_and(is_preload_library)
}

/// The preload library's file name: every frame in it is the allocator's (its `malloc`,
/// `free`, ... and this crate inlined into them).
const PRELOAD_LIBRARY: &str = "libheapsweep_preload.so";

/// Whether `module` is the preload library (a path ending in its file name).
fn is_preload_library(module: &str) -> bool {
    module.rsplit('/').next() == Some(PRELOAD_LIBRARY)
}

/// A method of any `GlobalAlloc` impl: a program's own global allocator that wraps
/// `HeapSweep` (a counting wrapper, say) is plumbing too, as are the trait's provided
/// methods (`realloc` as alloc, copy, dealloc). The wrapper's other functions, if one is
/// still on the stack between its method and `HeapSweep`'s, are kept.
fn is_global_alloc_method(name: &str) -> bool {
    (name.starts_with('<') && name.contains(" as core::alloc::global::GlobalAlloc>::"))
        || name.starts_with("core::alloc::global::GlobalAlloc::")
}

/// Name prefixes from which on (outwards) the frames belong to the runtime that called
/// `main` or a thread's closure.
const RUNTIME_PREFIXES: &[&str] = &["std::rt::lang_start", "<std::rt::lang_start"];

/// Exact names of the C runtime's outermost frames.
const RUNTIME_C: &[&str] =
    &["__libc_start_main", "__libc_start_call_main", "_start", "start_thread", "clone", "clone3"];

fn is_runtime(f: &Frame) -> bool {
    f.function.as_deref().is_some_and(|n| {
        n.contains("__rust_begin_short_backtrace")
            || RUNTIME_PREFIXES.iter().any(|p| n.starts_with(p))
            || RUNTIME_C.contains(&n)
    })
}

/// `FnOnce::call_once` glue left just above the runtime frames.
fn is_call_shim(f: &Frame) -> bool {
    f.function.as_deref().is_some_and(|n| {
        n.starts_with("core::ops::function::FnOnce::call_once")
            || (n.starts_with('<') && n.contains(" as core::ops::function::FnOnce<"))
    })
}

/// Describes an allocation stack for a misuse report: `0x... in function file:line` for
/// each frame, symbolized in-process and trimmed of the allocator's own frames, as in leak
/// reports. Allocates: the caller holds the reentrancy guard.
pub(crate) fn describe_site(stack: u32) -> Vec<String> {
    let ips = crate::stack::frames(crate::stack::StackId::from_u32(stack));
    let mut sym = InProcess::default();
    stack_frames(ips, &mut sym)
        .into_iter()
        .map(|f| {
            let mut line = format!("{} in {}", f.ip, f.function.as_deref().unwrap_or("<unknown>"));
            if let (Some(file), Some(n)) = (&f.file, f.line) {
                line.push_str(&format!(" {file}:{n}"));
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(ip: usize, name: Option<&str>, file: Option<&str>) -> Frame {
        Frame { function: name.map(Into::into), file: file.map(Into::into), ..Frame::unresolved(ip) }
    }

    /// A symbolizer over a table of (address, name).
    fn table(names: &'static [(usize, &'static str)]) -> impl FnMut(usize) -> Vec<Frame> {
        move |ip| vec![named(ip, names.iter().find(|(i, _)| *i == ip).map(|(_, n)| *n), None)]
    }

    fn names(frames: &[Frame]) -> Vec<&str> {
        frames.iter().map(|f| f.function.as_deref().unwrap_or("?")).collect()
    }

    #[test]
    fn frames_are_given_early_exactly_when_trimming_keeps_them() {
        // Stacks drawn from plumbing, program, glue and runtime frames; an address may
        // resolve to two frames (inlining). The frames `early` sees, in order, must be
        // the trimmed stack's, whatever the mix.
        let vocabulary = [
            "__rustc::__rust_alloc",
            "alloc::alloc::exchange_malloc",
            "app::a",
            "app::b",
            "core::ops::function::FnOnce::call_once",
            "std::sys::backtrace::__rust_begin_short_backtrace",
            "__libc_start_main",
        ];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..3000 {
            let mut rand = |n: u64| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % n) as usize
            };
            let len = 1 + rand(7);
            let stack: Vec<Vec<&str>> =
                (0..len).map(|_| (0..1 + rand(2)).map(|_| vocabulary[rand(7)]).collect()).collect();
            let ips: Vec<usize> = (1..=len).collect();
            let mut sym = |ip: usize| stack[ip - 1].iter().map(|n| named(ip, Some(n), None)).collect::<Vec<_>>();
            let whole = stack_frames(&ips, &mut sym);
            let mut seen = Vec::new();
            let again = stack_frames_until(&ips, &mut sym, &mut |f| {
                seen.push(f.function.clone());
                false
            });
            assert_eq!(again.as_ref(), Some(&whole), "{stack:?}");
            let kept: Vec<_> = whole.iter().map(|f| f.function.clone()).collect();
            assert_eq!(seen, kept, "{stack:?}");
            // Stopping at the first `app::b` kept: found exactly when the trimmed stack has one.
            let stopped = stack_frames_until(&ips, &mut sym, &mut |f| f.function.as_deref() == Some("app::b"));
            assert_eq!(stopped.is_none(), names(&whole).contains(&"app::b"), "{stack:?}");
        }
    }

    #[test]
    fn a_stop_at_an_inner_frame_leaves_the_outer_addresses_unresolved() {
        let mut asked = Vec::new();
        let mut s = |ip: usize| {
            asked.push(ip);
            let name = ["malloc", "allocate_dtv", "_dl_allocate_tls", "app::spawn", "app::main"][ip - 1];
            vec![named(ip, Some(name), None)]
        };
        let stopped =
            stack_frames_until(&[1, 2, 3, 4, 5], &mut s, &mut |f| f.function.as_deref() == Some("allocate_dtv"));
        assert!(stopped.is_none());
        assert_eq!(asked, [1, 2]);
    }

    #[test]
    fn addresses_past_the_first_runtime_frame_are_not_resolved() {
        let mut asked = Vec::new();
        let mut s = |ip: usize| {
            asked.push(ip);
            let name = match ip {
                1 => "demo::main",
                2 => "std::sys::backtrace::__rust_begin_short_backtrace",
                _ => "__libc_start_main",
            };
            vec![named(ip, Some(name), None)]
        };
        let f = stack_frames(&[1, 2, 3, 4], &mut s);
        assert_eq!(names(&f), ["demo::main"]);
        assert_eq!(asked, [1, 2]);
    }

    #[test]
    fn allocator_and_runtime_frames_are_trimmed() {
        let mut s = table(&[
            (1, "<alloc_core::global::HeapSweep as core::alloc::global::GlobalAlloc>::alloc"),
            (2, "__rustc::__rust_alloc"),
            (3, "alloc::alloc::exchange_malloc"),
            (4, "alloc::rc::Rc<T>::new"),
            (5, "demo::make_cycle"),
            (6, "demo::main"),
            (7, "core::ops::function::FnOnce::call_once"),
            (8, "std::sys::backtrace::__rust_begin_short_backtrace"),
            (9, "std::rt::lang_start::{{closure}}"),
            (10, "main"),
            (11, "__libc_start_main"),
            (12, "_start"),
        ]);
        let f = stack_frames(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], &mut s);
        assert_eq!(names(&f), ["alloc::rc::Rc<T>::new", "demo::make_cycle", "demo::main"]);
    }

    #[test]
    fn frames_of_the_preload_library_are_trimmed_by_module() {
        let in_lib = |ip, name: &str, module: &str| Frame {
            function: Some(name.into()),
            file: Some("src/lib.rs".into()),
            module: Some(module.into()),
            ..Frame::unresolved(ip)
        };
        let mut frames = vec![
            in_lib(1, "malloc", "/opt/heapsweep/libheapsweep_preload.so"),
            in_lib(2, "alloc::alloc::alloc", "/tmp/prog"),
            in_lib(3, "make_list", "/tmp/prog"),
            in_lib(4, "main", "/tmp/prog"),
        ];
        trim(&mut frames);
        assert_eq!(names(&frames), ["make_list", "main"]);
        // As the in-process symbolizer gives them: the module alone, no name.
        let mut unnamed = vec![
            Frame { module: Some("/opt/heapsweep/libheapsweep_preload.so".into()), ..Frame::unresolved(1) },
            Frame { module: Some("/opt/heapsweep/libheapsweep_preload.so".into()), ..Frame::unresolved(2) },
            in_lib(3, "make_list", "/tmp/prog"),
        ];
        trim(&mut unnamed);
        assert_eq!(names(&unnamed), ["make_list"]);
        let mut own = vec![in_lib(1, "malloc", "/tmp/libheapsweep_preload.so.old"), in_lib(2, "f", "/tmp/prog")];
        trim(&mut own);
        assert_eq!(names(&own), ["malloc", "f"], "only the library's exact file name is plumbing");
    }

    #[test]
    fn a_wrapping_global_allocator_is_trimmed_as_plumbing() {
        let mut s = table(&[
            (1, "<alloc_core::global::HeapSweep as core::alloc::global::GlobalAlloc>::alloc"),
            (2, "<app::Counting as core::alloc::global::GlobalAlloc>::alloc"),
            (3, "core::alloc::global::GlobalAlloc::realloc"),
            (4, "<stats_alloc::StatsAlloc<T> as core::alloc::global::GlobalAlloc>::realloc"),
            (5, "__rustc::__rust_realloc"),
            (6, "alloc::raw_vec::finish_grow"),
            (7, "alloc::vec::Vec<T,A>::push"),
            (8, "app::fill"),
            (9, "app::Counting::count"),
        ]);
        let f = stack_frames(&[1, 2, 3, 4, 5, 6, 7, 8], &mut s);
        assert_eq!(names(&f), ["alloc::vec::Vec<T,A>::push", "app::fill"]);
        // A function of the wrapper's own between its method and HeapSweep's stays.
        let f = stack_frames(&[1, 9, 2, 5, 8], &mut s);
        assert_eq!(
            names(&f),
            [
                "app::Counting::count",
                "<app::Counting as core::alloc::global::GlobalAlloc>::alloc",
                "__rustc::__rust_realloc",
                "app::fill"
            ]
        );
    }

    #[test]
    fn vec_growth_keeps_push_and_thread_stacks_end_at_the_closure() {
        let mut s = table(&[
            (1, "alloc_core::heap::Heap::alloc_slow"),
            (2, "__rust_realloc"),
            (3, "alloc::raw_vec::finish_grow"),
            (4, "alloc::raw_vec::RawVecInner<A>::grow_one"),
            (5, "alloc::vec::Vec<T,A>::push"),
            (6, "worker::fill::{{closure}}"),
            (7, "std::sys::backtrace::__rust_begin_short_backtrace"),
            (8, "std::thread::Builder::spawn_unchecked_::{{closure}}::{{closure}}"),
            (9, "start_thread"),
            (10, "clone3"),
        ]);
        let f = stack_frames(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], &mut s);
        assert_eq!(names(&f), ["alloc::vec::Vec<T,A>::push", "worker::fill::{{closure}}"]);
    }

    #[test]
    fn trimming_stops_at_unknown_frames_and_spares_this_crates_tests() {
        let mut s = table(&[(1, "__rust_alloc"), (3, "alloc_core::leak::tests::leaks_a_box")]);
        // An unresolved frame in the middle: nothing after it is trimmed.
        assert_eq!(names(&stack_frames(&[1, 2, 1], &mut s)), ["?", "__rust_alloc"]);
        assert_eq!(names(&stack_frames(&[1, 3], &mut s)), ["alloc_core::leak::tests::leaks_a_box"]);
        // Short inlined names are recognized by their file.
        let mut inlined = |ip| vec![named(ip, Some("alloc"), Some("/rustc/x/library/alloc/src/alloc.rs"))];
        assert!(stack_frames(&[1], &mut inlined).is_empty());
    }

    #[test]
    fn raw_only_keeps_bare_addresses() {
        let f = stack_frames(&[0x1000, 0x2000], &mut RawOnly);
        assert_eq!(f, [Frame::unresolved(0x1000), Frame::unresolved(0x2000)]);
        assert_eq!(f[0].ip, "0x1000");
    }

    #[test]
    fn paths_under_the_working_directory_are_made_relative() {
        let cwd = Path::new("/home/u/proj");
        assert_eq!(shorten(Path::new("/home/u/proj/src/main.rs"), Some(cwd)), "src/main.rs");
        assert_eq!(
            shorten(Path::new("/rustc/abc/library/alloc/src/rc.rs"), Some(cwd)),
            "/rustc/abc/library/alloc/src/rc.rs"
        );
        assert_eq!(shorten(Path::new("/home/u/project2/a.rs"), Some(cwd)), "/home/u/project2/a.rs");
        assert_eq!(shorten(Path::new("/x.rs"), None), "/x.rs");
    }

    #[inline(never)]
    fn capture_here() -> Vec<usize> {
        let mut ips = Vec::new();
        backtrace::trace(|f| {
            ips.push(f.ip() as usize);
            true
        });
        std::hint::black_box(ips)
    }

    #[test]
    fn real_frames_resolve_to_this_function_and_file() {
        let ips = capture_here();
        let mut sym = InProcess::default();
        let frames = stack_frames(&ips, &mut sym);
        let here = frames
            .iter()
            .find(|f| {
                f.function.as_deref().is_some_and(|n| n.ends_with("real_frames_resolve_to_this_function_and_file"))
            })
            .unwrap_or_else(|| panic!("not found in {:?}", names(&frames)));
        // Tests run in the package's directory: the path is made relative to it.
        assert_eq!(here.file.as_deref(), Some("src/report/symbolize.rs"), "{here:?}");
        assert!(here.line.is_some_and(|l| l > 0));
        assert!(here.ip.starts_with("0x"));
        assert!(here.module.as_deref().is_some_and(|m| !m.is_empty()), "{here:?}");
        let name = here.function.as_deref().unwrap();
        let last = name.rsplit("::").next().unwrap();
        let hash = last.len() == 17 && last.starts_with('h') && last[1..].chars().all(|c| c.is_ascii_hexdigit());
        assert!(!hash, "hash left in {name}");
        // libtest's frames below the test's closure are trimmed.
        assert!(!names(&frames).iter().any(|n| n.contains("__rust_begin_short_backtrace")));
        // A second lookup hits the cache and gives the same frames.
        assert_eq!(stack_frames(&ips, &mut sym), frames);
    }
}
