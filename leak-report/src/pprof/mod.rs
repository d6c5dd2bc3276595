//! pprof output: a gzipped `profile.proto` (`perftools.profiles.Profile`) with Go's heap
//! sample types, readable by `pprof`, speedscope, Pyroscope and Parca.
//!
//! # What it owns
//! [`to_pprof`] / [`build_profile`]: one sample per leak group or profile site with the
//! values `alloc_objects/count`, `alloc_space/bytes`, `inuse_objects/count`,
//! `inuse_space/bytes` (for a leak report alloc and inuse both mean leaked; for a profile
//! alloc is total and inuse is live), `period_type` `space/bytes` with period 1 (nothing is
//! sampled), and `inuse_space` as the default sample type.
//!
//! # Addresses
//! Locations carry run-time addresses; mappings come from the input's `modules` with their
//! run-time ranges, and `file_offset` holds the object-file address of `memory_start`
//! (`start - base`), so that `address - memory_start + file_offset` is the address to look
//! up in the binary. Frames that share an address (inlined frames after symbolization) make
//! one location whose lines are innermost first. Ids are sequential from 1.

pub mod proto;

use crate::input::Input;
use crate::stacks::{frame_ip, NO_STACK};
use heapsweep_format::report::{Frame, LeakKind, Module};
use prost::Message;
use std::collections::HashMap;
use std::io::{Read, Write};

/// The gzipped protobuf of [`build_profile`].
pub fn to_pprof(input: &Input) -> Result<Vec<u8>, String> {
    let bytes = build_profile(input).encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).and_then(|()| gz.finish()).map_err(|e| format!("cannot compress the profile: {e}"))
}

/// Reads a gzipped (or plain) `profile.proto` back.
pub fn decode_pprof(bytes: &[u8]) -> Result<proto::Profile, String> {
    let mut raw = Vec::new();
    let plain = if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut raw).map_err(|e| format!("bad gzip data: {e}"))?;
        &raw[..]
    } else {
        bytes
    };
    proto::Profile::decode(plain).map_err(|e| format!("not a profile.proto: {e}"))
}

/// The profile message for `input`.
pub fn build_profile(input: &Input) -> proto::Profile {
    let mut b = Builder::new(input.modules());
    let vt = |b: &mut Builder, t: &str, u: &str| proto::ValueType { r#type: b.string(t), unit: b.string(u) };
    b.profile.sample_type = vec![
        vt(&mut b, "alloc_objects", "count"),
        vt(&mut b, "alloc_space", "bytes"),
        vt(&mut b, "inuse_objects", "count"),
        vt(&mut b, "inuse_space", "bytes"),
    ];
    b.profile.period_type = Some(vt(&mut b, "space", "bytes"));
    b.profile.period = 1;
    b.profile.default_sample_type = b.string("inuse_space");
    match input {
        Input::Leaks(r) => {
            for g in &r.leaks {
                let kind = match g.kind {
                    LeakKind::Direct => "direct",
                    LeakKind::Indirect => "indirect",
                };
                let labels =
                    vec![b.label("leak_kind", kind), b.label("cyclic", if g.cyclic { "true" } else { "false" })];
                b.sample(&g.stack, [g.blocks, g.bytes, g.blocks, g.bytes], labels);
            }
        }
        Input::Profile(p) => {
            for s in &p.sites {
                b.sample(&s.stack, [s.total_blocks, s.total_bytes, s.live_blocks, s.live_bytes], Vec::new());
            }
        }
    }
    let comment = format!("{} (pid {})", input.program(), input.pid());
    let c = b.string(&comment);
    b.profile.comment.push(c);
    b.profile
}

/// Interns strings, functions and locations while samples are added.
struct Builder {
    profile: proto::Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(String, String), u64>,
    locations: HashMap<(u64, Vec<(u64, i64)>), u64>,
    modules: Vec<(u64, u64, String)>,
}

impl Builder {
    fn new(modules: &[Module]) -> Builder {
        let mut b = Builder {
            profile: proto::Profile::default(),
            strings: HashMap::new(),
            functions: HashMap::new(),
            locations: HashMap::new(),
            modules: Vec::new(),
        };
        b.string("");
        for (i, m) in modules.iter().enumerate() {
            let start = Module::parse_address(&m.start).unwrap_or(0);
            let end = Module::parse_address(&m.end).unwrap_or(0);
            let base = Module::parse_address(&m.base).unwrap_or(0);
            let mapping = proto::Mapping {
                id: i as u64 + 1,
                memory_start: start,
                memory_limit: end,
                file_offset: start.wrapping_sub(base),
                filename: b.string(&m.path),
                build_id: b.string(m.build_id.as_deref().unwrap_or("")),
                ..Default::default()
            };
            b.profile.mapping.push(mapping);
            b.modules.push((start, end, m.path.clone()));
        }
        b
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_string());
        self.strings.insert(s.to_string(), i);
        i
    }

    fn label(&mut self, key: &str, value: &str) -> proto::Label {
        proto::Label { key: self.string(key), str: self.string(value), ..Default::default() }
    }

    fn sample(&mut self, stack: &[Frame], values: [u64; 4], label: Vec<proto::Label>) {
        let mut location_id = Vec::new();
        if stack.is_empty() {
            let line = self.line(NO_STACK, "", 0);
            location_id.push(self.location(0, None, vec![line]));
        }
        // Runs of frames with one address are one location (inlined calls).
        for run in stack.chunk_by(|a, b| a.ip == b.ip) {
            let lines = run
                .iter()
                .filter_map(|f| {
                    let name = f.function.as_deref()?;
                    Some(self.line(name, f.file.as_deref().unwrap_or(""), f.line.unwrap_or(0)))
                })
                .collect();
            location_id.push(self.location(frame_ip(&run[0]), run[0].module.as_deref(), lines));
        }
        let value = values.iter().map(|&v| i64::try_from(v).unwrap_or(i64::MAX)).collect();
        self.profile.sample.push(proto::Sample { location_id, value, label });
    }

    fn line(&mut self, name: &str, file: &str, line: u32) -> proto::Line {
        let key = (name.to_string(), file.to_string());
        let function_id = match self.functions.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.profile.function.len() as u64 + 1;
                let (n, f) = (self.string(name), self.string(file));
                self.profile.function.push(proto::Function { id, name: n, system_name: n, filename: f, start_line: 0 });
                self.functions.insert(key, id);
                id
            }
        };
        proto::Line { function_id, line: i64::from(line), column: 0 }
    }

    fn location(&mut self, address: u64, module: Option<&str>, line: Vec<proto::Line>) -> u64 {
        let key = (address, line.iter().map(|l| (l.function_id, l.line)).collect::<Vec<_>>());
        if let Some(&id) = self.locations.get(&key) {
            return id;
        }
        let mapping_id = self.mapping_of(address, module);
        let id = self.profile.location.len() as u64 + 1;
        if let Some(m) = mapping_id.checked_sub(1).and_then(|i| self.profile.mapping.get_mut(i as usize)) {
            m.has_functions |= !line.is_empty();
            m.has_filenames |= line.iter().any(|l| l.line > 0);
            m.has_line_numbers |= line.iter().any(|l| l.line > 0);
            m.has_inline_frames |= line.len() > 1;
        }
        self.profile.location.push(proto::Location { id, mapping_id, address, line, is_folded: false });
        self.locations.insert(key, id);
        id
    }

    /// The mapping holding `address`, else the one named by the frame's module; 0 if none.
    fn mapping_of(&self, address: u64, module: Option<&str>) -> u64 {
        let by_range = self.modules.iter().position(|(s, e, _)| *s <= address && address < *e);
        let by_name = || self.modules.iter().position(|(_, _, p)| Some(p.as_str()) == module);
        by_range.or_else(by_name).map_or(0, |i| i as u64 + 1)
    }
}
