//! Offline symbolization against a real binary: this test's own executable. A report is
//! built with raw addresses of a function in this executable and the module record the
//! runtime would write (load bias and range from `/proc/self/maps`); symbolizing it must
//! name the function, its file and line.

mod common;

use common::{arg, cmd};
use leak_report::{CheckStatus, Frame, Input, LeakGroup, LeakKind, LeakReport, Module, Summary};
use std::path::PathBuf;

/// The line of the marker's signature: its entry address maps there (debug builds) or to
/// its body, the next line (optimized builds).
const MARKER_LINE: u32 = line!() + 3;
/// The function whose address the report holds.
#[inline(never)]
fn marker_function_for_symbolize(x: u64) -> u64 {
    std::hint::black_box(x.wrapping_mul(31).rotate_left(7))
}

fn exe() -> PathBuf {
    std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap()
}

/// The module record of this executable: load bias, start and end of its mappings.
fn this_module(build_id: Option<String>) -> Module {
    let exe = exe();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut ranges = Vec::new();
    for line in maps.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 6 && std::path::Path::new(cols[5]) == exe {
            let (s, e) = cols[0].split_once('-').unwrap();
            let offset = u64::from_str_radix(cols[2], 16).unwrap();
            ranges.push((u64::from_str_radix(s, 16).unwrap(), u64::from_str_radix(e, 16).unwrap(), offset));
        }
    }
    let start = ranges.iter().map(|r| r.0).min().expect("this executable is mapped");
    let end = ranges.iter().map(|r| r.1).max().unwrap();
    // A position-independent executable is loaded at a bias: its mapping at file offset 0
    // holds ELF address 0. A fixed-address one (ELF type EXEC) has bias 0.
    let header = std::fs::read(&exe).unwrap();
    let pie = header[16] == 3;
    let base = if pie { ranges.iter().find(|r| r.2 == 0).unwrap().0 } else { 0 };
    let hex = |v: u64| format!("{v:#x}");
    Module { path: exe.display().to_string(), base: hex(base), start: hex(start), end: hex(end), build_id }
}

/// A report as `symbolize=0` writes it: a marker frame, and a frame nowhere.
fn raw_report(module: Module) -> LeakReport {
    std::hint::black_box(marker_function_for_symbolize(3));
    // A return address points after a call; the lookup subtracts one.
    let ip = marker_function_for_symbolize as *const () as usize + 1;
    let frame = |ip: usize, module: Option<String>| Frame { module, ..Frame::unresolved(ip) };
    let stack = vec![frame(ip, Some(module.path.clone())), frame(0x10, None)];
    let group = LeakGroup {
        kind: LeakKind::Direct,
        cyclic: false,
        blocks: 1,
        bytes: 32,
        stack,
        rc: None,
        stack_id: None,
        reported_by_sweep: 0,
        in_baseline: false,
    };
    let summary = Summary { leaked_blocks: 1, leaked_bytes: 32, direct_blocks: 1, ..Summary::default() };
    LeakReport {
        format: LeakReport::FORMAT.into(),
        version: LeakReport::VERSION,
        program: "test".into(),
        pid: std::process::id(),
        status: CheckStatus::Ok,
        summary,
        leaks: vec![group],
        suppressions: Vec::new(),
        modules: vec![module],
        cycles: Vec::new(),
    }
}

fn assert_symbolized(r: &LeakReport) {
    let stack = &r.leaks[0].stack;
    let marker = stack
        .iter()
        .find(|f| f.function.as_deref().is_some_and(|n| n.ends_with("marker_function_for_symbolize")))
        .unwrap_or_else(|| panic!("the marker is named: {stack:#?}"));
    assert!(marker.file.as_deref().is_some_and(|f| f.ends_with("tests/symbolize.rs")), "{marker:?}");
    assert!(
        marker.line.is_some_and(|l| (MARKER_LINE..=MARKER_LINE + 1).contains(&l)),
        "{marker:?} (line {MARKER_LINE})"
    );
    assert_eq!(marker.ip, format!("{:#x}", marker_function_for_symbolize as *const () as usize + 1));
    // The address outside every module stays as it was.
    assert!(stack.iter().any(|f| f.ip == "0x10" && f.function.is_none()));
}

#[test]
fn symbolizes_a_function_of_this_executable() {
    let build_id = leak_report::symbolize::build_id(&exe());
    let mut input = Input::Leaks(raw_report(this_module(build_id)));
    let stats = leak_report::symbolize(&mut input, &[exe()], &std::env::current_dir().unwrap()).unwrap();
    assert_eq!(stats.warnings, Vec::<String>::new());
    assert_eq!((stats.looked_up, stats.resolved), (1, 1));
    let Input::Leaks(r) = input else { unreachable!() };
    assert_symbolized(&r);
}

#[test]
fn a_different_build_id_is_a_warning() {
    let mut input = Input::Leaks(raw_report(this_module(Some("00112233".into()))));
    let stats = leak_report::symbolize(&mut input, &[exe()], std::path::Path::new("/")).unwrap();
    assert!(stats.warnings.iter().any(|w| w.contains("differs from the report's 00112233")), "{:?}", stats.warnings);
}

#[test]
fn the_command_symbolizes_a_file() {
    let dir = common::scratch("symbolize-cli");
    let raw = dir.join("raw.json");
    std::fs::write(&raw, raw_report(this_module(None)).to_json()).unwrap();
    let out = dir.join("symbolized.json");
    let bin = exe();
    cmd().args(["symbolize", arg(&raw), "--binary", arg(&bin), "-o", arg(&out)]).assert().success();
    assert_symbolized(&leak_report::read_report(&out).unwrap());
    // `--binary` on a renderer symbolizes before rendering.
    cmd()
        .args(["show", arg(&raw), "--binary", arg(&bin)])
        .assert()
        .success()
        .stdout(predicates::str::contains("marker_function_for_symbolize"));
    std::fs::remove_dir_all(dir).unwrap();
}
