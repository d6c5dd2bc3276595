//! Allocation stacks through C code loaded with `dlopen`, built without frame pointers:
//! the cached unwinder reads the library's `.eh_frame`, and after a `dlclose` and the
//! load of another library (likely at the same address) it reads the new one's, not the
//! old rules. Each stack is compared with the DWARF unwinder's (`backtrace::trace`) from
//! the same callback.
//!
//! The two libraries differ only in the size of `call_back`'s frame (40 and 4000 bytes):
//! here the loader maps each at the same address, and the return address of the
//! recursive call is the same in both, so a rule kept from the unloaded library would
//! give a wrong caller there.

mod common;

use std::ffi::{c_void, CString};
use std::hint::black_box;
use std::path::Path;
use std::process::Command;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

/// A C library whose `call_back` runs `f` under `depth` frames of its own recursion, each
/// with a frame of `pad` bytes, without frame pointers.
fn build_library(dir: &Path, name: &str, pad: usize) -> std::path::PathBuf {
    let source = dir.join(format!("{name}.c"));
    let library = dir.join(format!("lib{name}.so"));
    std::fs::write(
        &source,
        format!(
            "__attribute__((noinline)) int call_back(void (*f)(void), int depth) {{\n\
             volatile char pad[{pad}];\n\
             pad[0] = (char)depth;\n\
             if (depth > 0) return call_back(f, depth - 1) + pad[0];\n\
             f();\n\
             return pad[0];\n\
             }}\n"
        ),
    )
    .unwrap();
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-fomit-frame-pointer", "-fno-optimize-sibling-calls", "-o"])
        .arg(&library)
        .arg(&source)
        .output()
        .expect("a C compiler (cc) to build the test's library");
    assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
    library
}

type CallBack = unsafe extern "C" fn(extern "C" fn(), i32) -> i32;

thread_local! {
    /// (allocation stack, DWARF stack) seen by the last callback.
    static SEEN: std::cell::RefCell<Option<(Vec<usize>, Vec<usize>)>> = const { std::cell::RefCell::new(None) };
}

/// The callback: allocates, and walks the stack with the DWARF unwinder from here.
#[inline(never)]
extern "C" fn allocate_here() {
    let b = black_box(Box::new(7u64));
    let info = alloc_core::block_info(&*b as *const u64 as *const u8).expect("our block");
    let ours = alloc_core::stack_frames(info.stack);
    let mut dwarf = Vec::new();
    backtrace::trace(|f| {
        dwarf.push(f.ip() as usize);
        dwarf.len() < 64
    });
    SEEN.with(|s| *s.borrow_mut() = Some((ours, dwarf)));
}

/// Loads `library`, calls its `call_back` under `depth` frames, unloads it; asserts that
/// the allocation's stack agrees with the DWARF walk from the callback's caller outwards,
/// and returns how many of its frames lie in the library.
fn call_through(library: &Path, depth: i32) -> usize {
    let path = CString::new(library.to_str().unwrap()).unwrap();
    // SAFETY: loading a library we just built; it has no initializers.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen {}", library.display());
    // SAFETY: `handle` is a live library handle; the name is NUL-terminated.
    let sym = unsafe { libc::dlsym(handle, c"call_back".as_ptr()) };
    assert!(!sym.is_null());
    // SAFETY: `call_back` has this signature (the C source above).
    let call_back: CallBack = unsafe { std::mem::transmute::<*mut c_void, CallBack>(sym) };
    // SAFETY: a plain C function; `allocate_here` does not unwind.
    unsafe { call_back(allocate_here, depth) };
    let (ours, dwarf) = SEEN.with(|s| s.borrow_mut().take()).expect("the callback ran");
    let in_library = ours.iter().filter(|&&ip| within(handle, ip)).count();
    // Both stacks hold `allocate_here`'s frames first (at two different calls), then its
    // caller in the library: compare from there on.
    let message = || format!("ours {ours:x?}\ndwarf {dwarf:x?}");
    let first = ours.iter().position(|&ip| within(handle, ip)).unwrap_or_else(|| panic!("{}", message()));
    let start = dwarf.iter().position(|&ip| ip == ours[first]).unwrap_or_else(|| panic!("{}", message()));
    let n = (ours.len() - first).min(dwarf.len() - start);
    assert!(n >= depth as usize + 4, "{}", message());
    assert_eq!(ours[first..first + n], dwarf[start..start + n], "{}", message());
    // SAFETY: the handle is live and nothing of the library is in use any more.
    assert_eq!(unsafe { libc::dlclose(handle) }, 0);
    in_library
}

/// Whether `ip` lies in the library behind `handle` (`dladdr`'s object is the handle's).
fn within(handle: *mut c_void, ip: usize) -> bool {
    // SAFETY: Dl_info is plain old data; all-zero is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables.
    if unsafe { libc::dladdr(ip as *const c_void, &mut info) } == 0 {
        return false;
    }
    // SAFETY: as above.
    let mut base: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `call_back` of the live handle, looked up by name; dladdr as above.
    let sym = unsafe { libc::dlsym(handle, c"call_back".as_ptr()) };
    // SAFETY: dladdr only reads the loader's tables.
    unsafe { libc::dladdr(sym, &mut base) };
    info.dli_fbase == base.dli_fbase
}

#[test]
fn stacks_through_dlopened_code_without_frame_pointers_match_dwarf() {
    let dir = common::scratch_dir("dlopen_stacks");
    let first = build_library(&dir, "first", 40);
    let second = build_library(&dir, "second", 4000);
    for round in 0..black_box(3) {
        for (library, depth) in [(&first, 3), (&second, 5), (&first, 6)] {
            let in_library = call_through(library, depth);
            assert_eq!(
                in_library,
                depth as usize + 1,
                "round {round}: every frame of call_back, {}",
                library.display()
            );
        }
    }
}
