//! Renderers for HeapSweep's reports: the report model lives in
//! [`alloc_core::report::model`]; this crate re-exports it for the tools built on it.

pub use alloc_core::report::model::{Frame, LeakGroup, LeakKind, LeakReport, Summary};

/// Reads a JSON leak report, with an error that names the file and what is wrong.
pub fn read_report(path: &std::path::Path) -> Result<LeakReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    LeakReport::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_get_errors_naming_them() {
        let dir = std::env::temp_dir().join(format!("lr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.json");
        assert!(read_report(&missing).unwrap_err().contains("missing.json"));
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{ truncated").unwrap();
        let e = read_report(&bad).unwrap_err();
        assert!(e.contains("bad.json") && e.contains("not a HeapSweep leak report"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
