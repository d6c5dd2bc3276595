//! DHAT JSON (file version 2), the format of Valgrind's `dh_view.html` and of the Firefox
//! Profiler's DHAT importer.
//!
//! # What it owns
//! [`to_dhat`]: one program point per distinct stack, with block lifetimes (`bklt: true`)
//! and no access counts (`bkacc: false`; an allocator cannot see reads and writes).
//!
//! # Mapping
//! - From a profile: `tb`/`tbk` total, `tl` summed lifetimes, `mb`/`mbk` the site's max
//!   live, `gb`/`gbk` live at the global peak, `eb`/`ebk` live at the end; `te` the
//!   profile's time, `tg` the peak's time, in microseconds.
//! - From a leak report: every count is the leaked blocks (they were allocated, live at
//!   their maximum and at the end), `tl` 0, and `te`, `tg` 0: the report has no clock.
//!
//! # Rules dh_view enforces
//! `ftbl[0]` is `"[root]"`; `fs` lists frame indices leaf first; no two program points may
//! have the same `fs` ("data file contains a repeated location"), so stacks that render the
//! same (say a direct and an indirect group from one stack) are merged. Frames are written
//! `0xADDR: function (file:line)`, the form the Firefox importer parses.

use crate::input::Input;
use crate::stacks::NO_STACK;
use heapsweep_format::report::Frame;
use serde::Serialize;
use std::collections::HashMap;

/// A DHAT file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DhatFile {
    dhat_file_version: u32,
    mode: &'static str,
    verb: &'static str,
    bklt: bool,
    bkacc: bool,
    tu: &'static str,
    #[serde(rename = "Mtu")]
    mtu: &'static str,
    tuth: u64,
    cmd: String,
    pid: u32,
    te: u64,
    tg: u64,
    pps: Vec<ProgramPoint>,
    ftbl: Vec<String>,
}

/// One program point (allocation stack) and its counts.
#[derive(Debug, Default, Serialize)]
struct ProgramPoint {
    tb: u64,
    tbk: u64,
    tl: u64,
    mb: u64,
    mbk: u64,
    gb: u64,
    gbk: u64,
    eb: u64,
    ebk: u64,
    fs: Vec<usize>,
}

impl ProgramPoint {
    fn add(&mut self, o: &ProgramPoint) {
        self.tb += o.tb;
        self.tbk += o.tbk;
        self.tl += o.tl;
        self.mb += o.mb;
        self.mbk += o.mbk;
        self.gb += o.gb;
        self.gbk += o.gbk;
        self.eb += o.eb;
        self.ebk += o.ebk;
    }
}

/// The DHAT JSON of `input`.
pub fn to_dhat(input: &Input) -> String {
    let points: Vec<(&[Frame], ProgramPoint)> = match input {
        Input::Leaks(r) => r
            .leaks
            .iter()
            .map(|g| {
                let (b, k) = (g.bytes, g.blocks);
                (
                    g.stack.as_slice(),
                    ProgramPoint { tb: b, tbk: k, mb: b, mbk: k, gb: b, gbk: k, eb: b, ebk: k, ..Default::default() },
                )
            })
            .collect(),
        Input::Profile(p) => p
            .sites
            .iter()
            .map(|s| {
                let pp = ProgramPoint {
                    tb: s.total_bytes,
                    tbk: s.total_blocks,
                    tl: s.lifetime_us,
                    mb: s.max_live_bytes,
                    mbk: s.max_live_blocks,
                    gb: s.peak_bytes,
                    gbk: s.peak_blocks,
                    eb: s.live_bytes,
                    ebk: s.live_blocks,
                    fs: Vec::new(),
                };
                (s.stack.as_slice(), pp)
            })
            .collect(),
    };
    let (te, tg) = match input {
        Input::Leaks(_) => (0, 0),
        Input::Profile(p) => (p.time_us, p.summary.peak_time_us),
    };
    let (pps, ftbl) = intern(points);
    let file = DhatFile {
        dhat_file_version: 2,
        mode: "rust-heap",
        verb: "Allocated",
        bklt: true,
        bkacc: false,
        tu: "µs",
        mtu: "s",
        tuth: 10,
        cmd: input.program().to_string(),
        pid: input.pid(),
        te,
        tg,
        pps,
        ftbl,
    };
    serde_json::to_string_pretty(&file).unwrap_or_default()
}

/// Frame strings into a table (index 0 `[root]`), program points merged by their `fs`.
fn intern(points: Vec<(&[Frame], ProgramPoint)>) -> (Vec<ProgramPoint>, Vec<String>) {
    let mut ftbl = vec!["[root]".to_string()];
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut by_fs: HashMap<Vec<usize>, usize> = HashMap::new();
    let mut pps: Vec<ProgramPoint> = Vec::new();
    for (stack, mut pp) in points {
        let names: Vec<String> = if stack.is_empty() {
            vec![format!("0x0: {NO_STACK} (unknown)")]
        } else {
            stack.iter().map(frame_string).collect()
        };
        pp.fs = names
            .into_iter()
            .map(|n| {
                *index.entry(n).or_insert_with_key(|n| {
                    ftbl.push(n.clone());
                    ftbl.len() - 1
                })
            })
            .collect();
        match by_fs.get(&pp.fs) {
            Some(&i) => pps[i].add(&pp),
            None => {
                by_fs.insert(pp.fs.clone(), pps.len());
                pps.push(pp);
            }
        }
    }
    (pps, ftbl)
}

/// `0xADDR: function (file:line)`; `(module)` or `(unknown)` without a file.
fn frame_string(f: &Frame) -> String {
    let name = f.function.clone().unwrap_or_else(|| "???".to_string());
    let place = match (&f.file, f.line, &f.module) {
        (Some(file), Some(line), _) => format!("{file}:{line}"),
        (Some(file), None, _) => file.clone(),
        (None, _, Some(module)) => format!("in {module}"),
        (None, _, None) => "unknown".to_string(),
    };
    format!("{}: {name} ({place})", f.ip)
}
