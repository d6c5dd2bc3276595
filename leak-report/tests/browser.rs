//! The HTML page in a real browser: headless Chromium loads each page, runs its script and
//! dumps the resulting DOM, which must hold the summary numbers, the groups (paged), the
//! cycle rings, the flame graph's boxes, the timeline for a profile, and no script error.
//!
//! Without Chromium the tests print a loud skip message, unless HEAPSWEEP_REQUIRE_BROWSER=1
//! (set by CI), which makes them fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// The DOM of `page#fragment` after its script ran; None (after a loud message) when there
/// is no browser and none is required.
fn rendered_dom(page: &Path, fragment: &str) -> Option<String> {
    let Some(browser) = chromium() else {
        if std::env::var_os("HEAPSWEEP_REQUIRE_BROWSER").is_some_and(|v| v == "1") {
            panic!("HEAPSWEEP_REQUIRE_BROWSER=1 but no chromium on PATH (Debian: apt-get install chromium)");
        }
        eprintln!("\n*** SKIPPED: browser test of the HTML report: chromium is not installed ***\n");
        return None;
    };
    let profile = page.with_extension("chromium-profile");
    let mut child = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--virtual-time-budget=5000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}{fragment}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s)
    });
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(90) {
            child.kill().unwrap();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(reader.join().unwrap().unwrap())
}

fn page(dir: &Path, name: &str, input: &leak_report::Input) -> PathBuf {
    let path = dir.join(format!("{name}.html"));
    std::fs::write(&path, leak_report::render_html(input)).unwrap();
    path
}

fn count(dom: &str, needle: &str) -> usize {
    dom.matches(needle).count()
}

/// Common checks: the script ran to its end and reported no error.
fn rendered_cleanly(dom: &str) {
    assert!(
        dom.contains("<pre id=\"js-errors\"></pre>"),
        "script errors: {}",
        &dom[dom.find("js-errors").unwrap_or(0)..][..400.min(dom.len())]
    );
    assert!(dom.contains("data-rendered=\"1\""), "the script did not finish");
}

#[test]
fn leak_report_page_renders() {
    let dir = common::scratch("browser-leaks");
    let Some(dom) = rendered_dom(&page(&dir, "leaks", &common::input("leaks.json")), "") else { return };
    rendered_cleanly(&dom);
    assert!(dom.contains("4344 bytes (4.2 KiB)") && dom.contains("10 blocks") && dom.contains(">6 groups<"), "summary");
    assert_eq!(count(&dom, "class=\"group\""), 6);
    assert_eq!(count(&dom, "class=\"cycle-ring\""), 2, "one ring per cyclic group");
    assert!(dom.contains("note: Rc with strong count 1, weak count 1"));
    assert!(count(&dom, "class=\"fg-box\"") >= 10, "flame graph boxes");
    assert!(dom.contains(">app::main</div>") && dom.contains(">app::cache::Cache::insert</div>"), "flame graph labels");
    assert!(dom.contains("page 1 of 1 (6 groups)"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn leaked_cycles_are_shown_once_with_their_members_in_order() {
    let dir = common::scratch("browser-cycles");
    let Some(dom) = rendered_dom(&page(&dir, "cycles", &common::input("cycles.json")), "") else { return };
    rendered_cleanly(&dom);
    assert!(dom.contains("<section id=\"cycles-section\">"), "the section is shown");
    assert_eq!(count(&dom, "class=\"cycle\""), 1, "the demo's two Rc nodes are one cycle");
    assert!(dom.contains("Cycle of 2 block(s)"));
    let first = dom.find("0x7f9c93450000 ").expect("the first member");
    let second = dom.find("0x7f9c93450030 ").expect("the second member");
    assert!(first < second, "in order");
    assert!(dom.contains("demo::make_cycle") && dom.contains("demo.rs:29"));
    assert_eq!(count(&dom, "pointer at +0x18"), 2);
    assert!(dom.contains("the first</span>"), "the last member points back to the first");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_failed_check_shows_its_banner_above_the_summary() {
    let dir = common::scratch("browser-check-failed");
    let Some(dom) = rendered_dom(&page(&dir, "failed", &common::input("check-failed-leaks.json")), "") else { return };
    rendered_cleanly(&dom);
    let banner = dom.find("id=\"check-failed\"").expect("the banner");
    assert!(banner < dom.find("id=\"summary\"").unwrap());
    assert!(dom.contains("could not run to the end (roots_unreadable)") && dom.contains("Too many open files"));
    assert_eq!(count(&dom, "class=\"group\""), 6, "the groups found before the failure are still shown");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn profile_page_renders_the_timeline() {
    let dir = common::scratch("browser-profile");
    let Some(dom) = rendered_dom(&page(&dir, "profile", &common::input("profile.json")), "") else { return };
    rendered_cleanly(&dom);
    assert!(dom.contains("1319912 bytes") && dom.contains("573440 bytes (560.0 KiB)"), "summary");
    assert!(dom.contains("id=\"timeline-svg\"") && dom.contains("peak 560.0 KiB"), "timeline");
    assert!(!dom.contains("id=\"timeline-section\" hidden"));
    assert_eq!(count(&dom, "class=\"group\""), 4);
    assert!(count(&dom, "class=\"fg-box\"") >= 4);
    assert!(dom.contains("<option value=\"1\">allocated bytes</option>"), "metric choice");
    assert!(dom.contains("id=\"retention-section\" hidden"), "no chains in a profile without them");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_profile_with_retention_chains_shows_them() {
    let dir = common::scratch("browser-retention");
    let input = common::input("profile-retention.json");
    let Some(dom) = rendered_dom(&page(&dir, "profile-retention", &input), "") else { return };
    rendered_cleanly(&dom);
    assert!(!dom.contains("id=\"retention-section\" hidden"));
    assert!(dom.contains("(in app::cache::CACHE+0x8)"), "the root's symbol");
    assert!(dom.contains("#0 0x7f3a5c010400 (48 bytes) app::cache::Cache::new"), "the chain's first block");
    assert!(dom.contains("it is leaked"), "a block without a chain says why");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn large_report_is_paged_largest_first() {
    let dir = common::scratch("browser-large");
    let report = leak_report::synthetic::leak_report(2500, 7);
    let largest = report.leaks[0].bytes;
    let path = page(&dir, "large", &leak_report::Input::Leaks(report));
    let Some(first) = rendered_dom(&path, "") else { return };
    rendered_cleanly(&first);
    assert_eq!(count(&first, "class=\"group\""), 100);
    assert!(first.contains("page 1 of 25 (2500 groups)"));
    assert!(first.contains(&format!("of {largest} byte(s)")), "the largest group comes first");
    let Some(last) = rendered_dom(&path, "#page=25") else { return };
    rendered_cleanly(&last);
    assert!(last.contains("page 25 of 25 (2500 groups)"));
    assert_eq!(count(&last, "class=\"group\""), 100);
    std::fs::remove_dir_all(dir).unwrap();
}
