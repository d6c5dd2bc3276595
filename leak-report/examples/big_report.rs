//! Writes a synthetic leak report with many groups, for measuring the renderers on large
//! inputs: `cargo run --release -p leak-report --example big_report -- 100000 /tmp/big.json`,
//! then `time target/release/leak-report html /tmp/big.json -o /tmp/big.html`.

fn main() {
    let mut args = std::env::args().skip(1);
    let groups: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let path = args.next().unwrap_or_else(|| "big-report.json".into());
    let report = leak_report::synthetic::leak_report(groups, 42);
    if let Err(e) = leak_report::output::write_file(path.as_ref(), report.to_json().as_bytes()) {
        eprintln!("{e}");
        std::process::exit(2);
    }
}
