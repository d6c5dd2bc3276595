//! Writing the JSON report to `report=PATH` (`%p` becomes the pid): to a temporary file
//! beside it, then renamed, so a reader never sees half a report.

use super::model::LeakReport;
use crate::config::FixedPath;

/// Writes `report` to the path `template` names. The error names the path and the cause.
pub(crate) fn write_report(template: &[u8], pid: u32, report: &LeakReport) -> Result<(), String> {
    let path = FixedPath::from_bytes(template).ok_or("report path too long")?.expand(pid);
    let path = String::from_utf8_lossy(path.as_bytes()).into_owned();
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, report.to_json() + "\n").and_then(|_| std::fs::rename(&tmp, &path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write the report to {path}: {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::Summary;

    fn empty() -> LeakReport {
        LeakReport {
            format: LeakReport::FORMAT.into(),
            version: 1,
            program: "p".into(),
            pid: 1,
            summary: Summary::default(),
            leaks: vec![],
            suppressions: vec![],
        }
    }

    #[test]
    fn writes_with_the_pid_and_reports_errors_with_the_path() {
        let dir = std::env::temp_dir().join(format!("hs-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let template = format!("{}/r-%p.json", dir.display());
        write_report(template.as_bytes(), 42, &empty()).unwrap();
        let text = std::fs::read_to_string(dir.join("r-42.json")).unwrap();
        assert_eq!(LeakReport::from_json(&text).unwrap(), empty());
        let err = write_report(b"/nonexistent-dir/x.json", 1, &empty()).unwrap_err();
        assert!(err.contains("/nonexistent-dir/x.json"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
