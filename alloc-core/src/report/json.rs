//! The JSON rendering of a report, and writing it to `report=PATH` (`%p` becomes the
//! pid): to a temporary file beside it, then renamed, so a reader never sees half a
//! report.
//!
//! # Who calls it
//! `check::run_at_exit`, after the world resumed, with the reentrancy guard set.

use super::model::LeakReport;
use crate::config::FixedPath;
use std::path::{Path, PathBuf};

/// The report as pretty-printed JSON (the schema of the contract).
pub fn to_json(report: &LeakReport) -> String {
    report.to_json()
}

/// Writes `report` to the path `template` names, `%p` replaced by `pid`. The error
/// names the path and the cause; the caller prints it as one warning line.
pub(crate) fn write_report(template: &[u8], pid: u32, report: &LeakReport) -> Result<(), String> {
    let template = FixedPath::from_bytes(template)
        .ok_or_else(|| format!("cannot write the report: its path is longer than {} bytes", FixedPath::CAPACITY))?;
    let path = template.expand(pid);
    write_atomically(path.as_path(), pid, (to_json(report) + "\n").as_bytes())
}

/// Writes `bytes` to `path` through a temporary file of the same directory, renamed over
/// `path` once complete.
pub(crate) fn write_atomically(path: &Path, pid: u32, bytes: &[u8]) -> Result<(), String> {
    // The pid in the temporary name keeps processes sharing one report path apart.
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(format!(".{pid}.tmp"));
    std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> LeakReport {
        LeakReport::empty("p", 1)
    }

    #[test]
    fn writes_with_the_pid_and_reports_errors_with_the_path() {
        let dir = std::env::temp_dir().join(format!("hs-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let template = format!("{}/r-%p.json", dir.display());
        write_report(template.as_bytes(), 42, &empty()).unwrap();
        let text = std::fs::read_to_string(dir.join("r-42.json")).unwrap();
        assert_eq!(serde_json::from_str::<LeakReport>(&text).unwrap(), empty());
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["r-42.json"], "no temporary file is left behind");
        let err = write_report(b"/nonexistent-dir/x-%p.json", 7, &empty()).unwrap_err();
        assert!(err.contains("/nonexistent-dir/x-7.json"), "{err}");
        let long = vec![b'a'; FixedPath::CAPACITY + 1];
        assert!(write_report(&long, 1, &empty()).unwrap_err().contains("longer than"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
