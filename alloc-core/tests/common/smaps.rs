//! The kernel's view of a mapping, from `/proc/self/smaps`. Shared by the integration
//! tests (`common::smaps`) and the segment purge's unit tests (included by path).

/// The `VmFlags` of the mapping holding `addr` (`hg`: advised `MADV_HUGEPAGE`, `nh`:
/// `MADV_NOHUGEPAGE`, ...).
pub fn vm_flags_of(addr: usize) -> Vec<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16)) {
                inside = lo <= addr && addr < hi;
                continue;
            }
        }
        if inside {
            if let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.split_whitespace().map(str::to_owned).collect();
            }
        }
    }
    panic!("no mapping holds {addr:#x}");
}
