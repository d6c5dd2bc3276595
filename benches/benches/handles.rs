//! `Handle<T>` and its cycle collector against std `Rc<T>` and three cycle-collecting
//! crates (rust-cc, gcmodule, bacon_rajan_cc), in one run:
//!
//! ```sh
//! cargo bench -p benches --bench handles             # about a minute
//! cargo bench -p benches --bench handles -- --quick  # 10x fewer objects
//! ```
//!
//! Measures (N = 1M; every contender allocates through the same global allocator,
//! HeapSweep, and each (configuration, contender) pair runs in a process of its own):
//! - `alloc+drop`: `new(u64)` then drop, ns each (best of 7 rounds of N), and its ratio
//!   to std `Rc` measured in the same process (rounds alternate);
//! - `2-cycles`: build N garbage 2-cycles (`a -> b -> a`, each node a `RefCell<Option<_>>`)
//!   with automatic collection off, then one full collection; the build and the
//!   collection are timed apart (best of 3);
//! - `live+2-cycles`: the same, with N/2 live 2-cycles built first and kept (best of 3).
//!
//! The process runs itself once per contender, with HeapSweep's default 32-frame
//! allocation stacks and with `stack_depth=0`, and prints one table per configuration.

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

/// The figures of one contender; `None` where it does not apply (`Rc` collects nothing).
#[derive(Default)]
struct Figures {
    alloc_drop_ns: f64,
    /// std `Rc` in the same process, rounds interleaved with the contender's.
    rc_ns: f64,
    build_ms: Option<f64>,
    collect_ms: Option<f64>,
    live_collect_ms: Option<f64>,
}

/// One contender: how it allocates, builds 2-cycles and collects.
trait Contender {
    /// A handle to the first node of a 2-cycle.
    type Root;
    fn setup() {}
    fn alloc_drop(n: u64);
    fn cycle() -> Option<Self::Root>;
    /// Runs a full collection; returns the number of objects freed if the crate says.
    fn collect() -> Option<usize>;
}

mod heapsweep_handle {
    use alloc_core::{gc, Handle, Trace};
    use std::cell::RefCell;
    use std::hint::black_box;

    #[derive(Trace)]
    pub struct Node {
        other: RefCell<Option<Handle<Node>>>,
    }

    pub struct C;
    impl super::Contender for C {
        type Root = Handle<Node>;
        fn setup() {
            gc::set_threshold(0, 10, 10);
        }
        fn alloc_drop(n: u64) {
            for i in 0..n {
                black_box(Handle::new(i));
            }
        }
        fn cycle() -> Option<Handle<Node>> {
            let a = Handle::new(Node { other: RefCell::new(None) });
            let b = Handle::new(Node { other: RefCell::new(Some(a.clone())) });
            *a.other.borrow_mut() = Some(b);
            Some(a)
        }
        fn collect() -> Option<usize> {
            Some(gc::collect(2))
        }
    }
}

mod rust_cc_crate {
    use rust_cc::{Cc, Context, Finalize, Trace};
    use std::cell::RefCell;
    use std::hint::black_box;

    pub struct Node {
        other: RefCell<Option<Cc<Node>>>,
    }
    // SAFETY: visits the one `Cc` a node owns.
    unsafe impl Trace for Node {
        fn trace(&self, ctx: &mut Context<'_>) {
            self.other.trace(ctx);
        }
    }
    impl Finalize for Node {}

    pub struct C;
    impl super::Contender for C {
        type Root = Cc<Node>;
        fn setup() {
            rust_cc::config::config(|c| c.set_auto_collect(false)).expect("rust-cc config");
        }
        fn alloc_drop(n: u64) {
            for i in 0..n {
                black_box(Cc::new(i));
            }
        }
        fn cycle() -> Option<Cc<Node>> {
            let a = Cc::new(Node { other: RefCell::new(None) });
            let b = Cc::new(Node { other: RefCell::new(Some(a.clone())) });
            *a.other.borrow_mut() = Some(b);
            Some(a)
        }
        fn collect() -> Option<usize> {
            rust_cc::collect_cycles();
            None
        }
    }
}

mod gcmodule_crate {
    use gcmodule::{Cc, Trace, Tracer};
    use std::cell::RefCell;
    use std::hint::black_box;

    pub struct Node {
        other: RefCell<Option<Cc<Node>>>,
    }
    impl Trace for Node {
        fn trace(&self, t: &mut Tracer) {
            self.other.trace(t);
        }
        fn is_type_tracked() -> bool {
            true
        }
    }

    pub struct C;
    impl super::Contender for C {
        type Root = Cc<Node>;
        fn alloc_drop(n: u64) {
            for i in 0..n {
                black_box(Cc::new(i));
            }
        }
        fn cycle() -> Option<Cc<Node>> {
            let a = Cc::new(Node { other: RefCell::new(None) });
            let b = Cc::new(Node { other: RefCell::new(Some(a.clone())) });
            *a.other.borrow_mut() = Some(b);
            Some(a)
        }
        fn collect() -> Option<usize> {
            Some(gcmodule::collect_thread_cycles())
        }
    }
}

mod bacon_rajan_crate {
    use bacon_rajan_cc::{Cc, Trace, Tracer};
    use std::cell::RefCell;
    use std::hint::black_box;

    pub struct Node {
        other: RefCell<Option<Cc<Node>>>,
    }
    impl Trace for Node {
        fn trace(&self, t: &mut Tracer) {
            self.other.trace(t);
        }
    }

    pub struct C;
    impl super::Contender for C {
        type Root = Cc<Node>;
        fn alloc_drop(n: u64) {
            for i in 0..n {
                black_box(Cc::new(i));
            }
        }
        fn cycle() -> Option<Cc<Node>> {
            let a = Cc::new(Node { other: RefCell::new(None) });
            let b = Cc::new(Node { other: RefCell::new(Some(a.clone())) });
            *a.other.borrow_mut() = Some(b);
            Some(a)
        }
        fn collect() -> Option<usize> {
            bacon_rajan_cc::collect_cycles();
            None
        }
    }
}

mod std_rc {
    use std::hint::black_box;
    use std::rc::Rc;

    pub struct C;
    impl super::Contender for C {
        type Root = ();
        fn alloc_drop(n: u64) {
            for i in 0..n {
                black_box(Rc::new(i));
            }
        }
        fn cycle() -> Option<()> {
            None
        }
        fn collect() -> Option<usize> {
            None
        }
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn best(reps: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..reps).map(|_| f()).fold(f64::MAX, f64::min)
}

fn check_collected(freed: Option<usize>, expected: usize) {
    if let Some(freed) = freed {
        assert_eq!(freed, expected, "the collector freed a wrong number of objects");
    }
}

/// Builds `n` garbage 2-cycles, then collects: (build ms, collect ms).
fn garbage_cycles<C: Contender>(n: usize) -> (f64, f64) {
    let t = Instant::now();
    for _ in 0..n {
        drop(black_box(C::cycle()));
    }
    let build = ms(t);
    let t = Instant::now();
    let freed = C::collect();
    let collect = ms(t);
    check_collected(freed, 2 * n);
    (build, collect)
}

fn measure<C: Contender>(n: usize) -> Figures {
    C::setup();
    // Rounds of the contender and of std `Rc` alternate, so that both see the same load.
    let (mut c, mut rc) = (f64::MAX, f64::MAX);
    for _ in 0..7 {
        c = c.min(time_ns(n as u64, C::alloc_drop));
        rc = rc.min(time_ns(n as u64, std_rc::C::alloc_drop));
    }
    let mut f = Figures { alloc_drop_ns: c, rc_ns: rc, ..Figures::default() };
    if C::cycle().is_none() {
        return f;
    }
    C::collect();
    let runs: Vec<(f64, f64)> = (0..3).map(|_| garbage_cycles::<C>(n)).collect();
    f.build_ms = Some(runs.iter().map(|r| r.0).fold(f64::MAX, f64::min));
    f.collect_ms = Some(runs.iter().map(|r| r.1).fold(f64::MAX, f64::min));
    f.live_collect_ms = Some(best(3, || {
        let live: Vec<C::Root> = (0..n / 2).filter_map(|_| C::cycle()).collect();
        let (_, collect) = garbage_cycles::<C>(n);
        drop(black_box(live));
        C::collect();
        collect
    }));
    f
}

fn time_ns(n: u64, f: fn(u64)) -> f64 {
    let t = Instant::now();
    f(n);
    t.elapsed().as_nanos() as f64 / n as f64
}

const CONTENDERS: [&str; 5] = ["std Rc", "Handle", "rust-cc 0.6.2", "gcmodule 0.3.3", "bacon_rajan_cc 0.4.0"];

/// In a child: measure one contender and print its figures on one line.
fn child(name: &str, n: usize) {
    let f = match name {
        "std Rc" => measure::<std_rc::C>(n),
        "Handle" => measure::<heapsweep_handle::C>(n),
        "rust-cc 0.6.2" => measure::<rust_cc_crate::C>(n),
        "gcmodule 0.3.3" => measure::<gcmodule_crate::C>(n),
        "bacon_rajan_cc 0.4.0" => measure::<bacon_rajan_crate::C>(n),
        _ => panic!("unknown contender {name}"),
    };
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v}"));
    println!(
        "FIGURES {} {} {} {} {}",
        f.alloc_drop_ns,
        f.rc_ns,
        opt(f.build_ms),
        opt(f.collect_ms),
        opt(f.live_collect_ms)
    );
}

fn run_child(exe: &str, name: &str, heapsweep: Option<&str>, quick: bool) -> Figures {
    let mut cmd = Command::new(exe);
    cmd.arg("--child").arg(name);
    if quick {
        cmd.arg("--quick");
    }
    match heapsweep {
        Some(v) => cmd.env("HEAPSWEEP", v),
        None => cmd.env_remove("HEAPSWEEP"),
    };
    let out = cmd.output().expect("run the bench child");
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("FIGURES ")).expect("a FIGURES line");
    let v: Vec<Option<f64>> = line.split(' ').map(|x| x.parse().ok()).collect();
    Figures {
        alloc_drop_ns: v[0].unwrap_or(f64::NAN),
        rc_ns: v[1].unwrap_or(f64::NAN),
        build_ms: v[2],
        collect_ms: v[3],
        live_collect_ms: v[4],
    }
}

fn cell(v: Option<f64>, base: Option<f64>) -> String {
    match (v, base) {
        (Some(v), Some(b)) => format!("{v:.1} ({:.2}x)", v / b),
        (Some(v), None) => format!("{v:.1}"),
        (None, _) => "-".to_string(),
    }
}

fn table(exe: &str, heapsweep: Option<&str>, quick: bool) {
    let rows: Vec<(&str, Figures)> = CONTENDERS.iter().map(|&c| (c, run_child(exe, c, heapsweep, quick))).collect();
    let handle = &rows[1].1;
    println!();
    println!("HEAPSWEEP={}", heapsweep.unwrap_or("(unset: 32-frame stacks)"));
    println!("| contender | alloc+drop ns (x std Rc) | build 1M 2-cycles ms | collect them ms (x Handle) | 500k live + 1M 2-cycles: collect ms (x Handle) |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, f) in &rows {
        println!(
            "| {name} | {:.1} ({:.2}x) | {} | {} | {} |",
            f.alloc_drop_ns,
            f.alloc_drop_ns / f.rc_ns,
            cell(f.build_ms, None),
            cell(f.collect_ms, handle.collect_ms),
            cell(f.live_collect_ms, handle.live_collect_ms),
        );
    }
}

fn main() {
    alloc_core::config::set_check_at_exit(false);
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let n = if quick { 100_000 } else { 1_000_000 };
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], n);
        return;
    }
    let exe = &args[0];
    table(exe, None, quick);
    table(exe, Some("stack_depth=0"), quick);
}
