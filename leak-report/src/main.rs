//! `leak-report`: renders HeapSweep leak reports and heap profiles, compares runs, gates
//! CI on them (`check`), and symbolizes reports written without symbols. A thin command-line layer
//! over the `leak_report` library; it runs on the system allocator.
//!
//! Exit status: 0 success (and a passing `check`), 1 a failing `check`, 2 an error (bad input
//! file, unwritable output, bad arguments).

use clap::{Args, Parser, Subcommand};
use leak_report::gate::{render_gate, GateFormat, GateOptions};
use leak_report::output::{write_file, write_stdout};
use leak_report::{Input, Measure, Metric, Weight};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Renders HeapSweep leak reports (HEAPSWEEP=report=PATH) and heap profiles
/// (HEAPSWEEP=profile=PATH). Each FILE may be either; the "format" field tells them apart.
#[derive(Debug, Parser)]
#[command(name = "leak-report", version, about, long_about = None)]
#[command(after_help = "Exit status: 0 on success, 1 when `check` fails, 2 on errors (bad input, unwritable output).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a text report: leak groups with their stacks (leak report), or totals and the
    /// top allocation sites by live, allocated and at-peak bytes (profile).
    Show {
        #[command(flatten)]
        input: InputArgs,
        /// Leak groups, or sites per table, to show; 0 shows all.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// Write one self-contained HTML page: summary, leak groups (cycles drawn as rings),
    /// an interactive flame graph, and for a profile the timeline of live bytes.
    Html {
        #[command(flatten)]
        input: InputArgs,
        /// The page to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write a flame graph SVG of leaked bytes (leak report) or live/allocated/at-peak
    /// bytes (profile).
    Flamegraph {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        measure: MeasureArgs,
        /// The SVG to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print folded stacks (`root;...;leaf weight`), the input of flame graph tools.
    Folded {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        measure: MeasureArgs,
    },
    /// Write a gzipped pprof profile.proto (alloc_objects, alloc_space, inuse_objects,
    /// inuse_space; for a leak report both pairs count the leaked blocks).
    Pprof {
        #[command(flatten)]
        input: InputArgs,
        /// The .pb.gz file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write DHAT JSON (version 2) for Valgrind's dh_view.html or the Firefox Profiler;
    /// leaked (or live) bytes are the "at t-end" counts.
    Dhat {
        #[command(flatten)]
        input: InputArgs,
        /// The .json file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Compare two runs: leak groups (or profile sites) that are new, gone, grew or shrank,
    /// matched by kind and the function/file/line of their stacks, not by addresses. A run
    /// whose leak check could not run to the end is named first: its groups may be
    /// incomplete.
    Diff {
        /// The earlier report or profile.
        old: PathBuf,
        /// The later one, of the same kind.
        new: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
        format: DiffFormat,
    },
    /// Fail (exit status 1) when a leak report holds more leaked bytes than allowed, or when
    /// its leak check could not run to the end (whatever the limit and baseline), and point
    /// at the innermost frame of your own code for each leak.
    Check {
        /// The leak report to judge.
        file: PathBuf,
        /// Only leaks that are new or grew relative to this earlier report count.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Leaked bytes allowed before `check` fails.
        #[arg(long, default_value_t = 0)]
        max_leaked_bytes: u64,
        /// Output: text, GitHub workflow annotations, JUnit XML or SARIF 2.1.0.
        #[arg(long, value_enum, default_value_t = GateFormat::Text)]
        format: GateFormat,
    },
    /// Fill in function, file and line of a report written with HEAPSWEEP=...,symbolize=0
    /// from the binaries that ran (DWARF debug information, else the symbol table), then
    /// drop the allocator's and runtime's frames.
    Symbolize {
        /// The leak report or profile.
        file: PathBuf,
        /// A binary (executable or shared object) the program ran with; repeatable.
        #[arg(long, required = true)]
        binary: Vec<PathBuf>,
        /// Where to write the symbolized JSON (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct InputArgs {
    /// A leak report or heap profile (JSON).
    file: PathBuf,
    /// Symbolize frames recorded without symbols from this binary first; repeatable.
    #[arg(long)]
    binary: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct MeasureArgs {
    /// Weigh stacks by bytes or by blocks.
    #[arg(long, value_enum, default_value_t = Weight::Bytes)]
    weight: Weight,
    /// For a profile: live, allocated (total) or at-peak counts.
    #[arg(long, value_enum, default_value_t = Metric::Live)]
    metric: Metric,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DiffFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("leak-report: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Show { input, top } => {
            let opts = leak_report::TextOptions { color: leak_report::TextOptions::color_for_stdout(), top };
            write_stdout(rendering(load(&input)?, |i| leak_report::render_text(i, &opts)).as_bytes())?;
        }
        Command::Html { input, output } => {
            write_file(&output, rendering(load(&input)?, leak_report::render_html).as_bytes())?;
        }
        Command::Flamegraph { input, measure, output } => {
            let svg = rendering(load(&input)?, |i| leak_report::to_flamegraph_svg(i, measure.into()))?;
            write_file(&output, &svg)?;
        }
        Command::Folded { input, measure } => {
            write_stdout(rendering(load(&input)?, |i| leak_report::to_folded(i, measure.into())).as_bytes())?;
        }
        Command::Pprof { input, output } => write_file(&output, &rendering(load(&input)?, leak_report::to_pprof)?)?,
        Command::Dhat { input, output } => {
            write_file(&output, rendering(load(&input)?, leak_report::to_dhat).as_bytes())?;
        }
        Command::Diff { old, new, format } => {
            let d = leak_report::diff(&leak_report::read_input(&old)?, &leak_report::read_input(&new)?)?;
            let text = match format {
                DiffFormat::Text => leak_report::diff::render_diff_text(&d),
                DiffFormat::Json => serde_json::to_string_pretty(&d).map_err(|e| e.to_string())? + "\n",
            };
            write_stdout(text.as_bytes())?;
        }
        Command::Check { file, baseline, max_leaked_bytes, format } => {
            let report = leaks(&file)?;
            let baseline = baseline.as_deref().map(leaks).transpose()?;
            let opts = GateOptions { baseline, max_leaked_bytes, workdir: workdir() };
            let outcome = leak_report::gate(&report, &opts);
            write_stdout(render_gate(&outcome, format).as_bytes())?;
            return Ok(if outcome.passed { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        Command::Symbolize { file, binary, output } => {
            let input = load(&InputArgs { file, binary })?;
            let json = input.to_json() + "\n";
            match output {
                Some(path) => write_file(&path, json.as_bytes())?,
                None => write_stdout(json.as_bytes())?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the input and symbolizes it with the binaries given.
///
/// The input is kept until the process exits: freeing a large report's million strings one
/// by one would only delay the exit (a noticeable part of `html`'s time for 100 000 groups).
fn load(args: &InputArgs) -> Result<&'static Input, String> {
    let mut input = leak_report::read_input(&args.file)?;
    if !args.binary.is_empty() {
        let stats = leak_report::symbolize(&mut input, &args.binary, &workdir())?;
        for w in &stats.warnings {
            eprintln!("leak-report: warning: {w}");
        }
    }
    Ok(Box::leak(Box::new(input)))
}

/// Runs a renderer, with a spinner on a terminal for inputs of more than
/// [`BIG`](leak_report::progress::BIG) groups.
fn rendering<T>(input: &Input, render: impl FnOnce(&Input) -> T) -> T {
    let progress = leak_report::progress::Progress::spinner(input.len() > leak_report::progress::BIG, "rendering");
    let out = render(input);
    progress.finish();
    out
}

/// Reads a leak report; a profile is an error naming the file.
fn leaks(path: &Path) -> Result<leak_report::LeakReport, String> {
    match leak_report::read_input(path)? {
        Input::Leaks(r) => Ok(r),
        Input::Profile(_) => Err(format!("{}: a heap profile, where a leak report was expected", path.display())),
    }
}

fn workdir() -> PathBuf {
    std::env::current_dir().unwrap_or_default()
}

impl From<MeasureArgs> for Measure {
    fn from(m: MeasureArgs) -> Measure {
        Measure { weight: m.weight, metric: m.metric }
    }
}
