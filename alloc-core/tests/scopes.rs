//! Leak checks scoped to one test: `check_scope` and `assert_no_leaks`.
//!
//! The first sixteen tests run in parallel (the harness's threads), half of them leaking
//! on purpose, some from threads they spawn; each checks its own scope twenty times in a
//! row and must get exactly its own leaks every time, whatever the others allocate, leak
//! and check meanwhile. A seventeenth, which leaks a large block, is a stress test run
//! with `--ignored` (see its reason). The tests after them pin the scope's rules down one
//! by one.

use alloc_core::report::model::LeakKind;
use alloc_core::{check_scope, LeakReport};
use std::sync::Mutex;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

mod common;

/// Blocks kept reachable on purpose, from a global: never leaks.
static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// What one round leaks: `own` blocks of `size` bytes from the test's thread, `spawned`
/// from a thread it spawns, and one Rc two-cycle when `cycle`.
#[derive(Clone, Copy)]
struct Plan {
    size: usize,
    own: usize,
    spawned: usize,
    cycle: bool,
}

impl Plan {
    fn leaked_blocks(&self) -> u64 {
        (self.own + self.spawned) as u64 + if self.cycle { 2 } else { 0 }
    }
    fn leaked_bytes(&self) -> u64 {
        ((self.own + self.spawned) * self.size) as u64 + if self.cycle { 2 * rc_node_bytes() } else { 0 }
    }
}

struct Node {
    _next: std::cell::RefCell<Option<std::rc::Rc<Node>>>,
}

/// What an `Rc<Node>` allocation requests: two counts and the node.
fn rc_node_bytes() -> u64 {
    (2 * std::mem::size_of::<usize>() + std::mem::size_of::<Node>()) as u64
}

/// Where the stress tests' leaks are, to explain a round that missed one: the round's tag
/// and the block's address, hidden from the scan (`^ HIDE`). A ring: a round's entries are
/// read right after the round.
mod made {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    const HIDE: usize = 0x5a5a_5a5a_5a5a_5a5a;
    const SLOTS: usize = 1024;
    static TAGS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
    static ADDRS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
    static NEXT: AtomicUsize = AtomicUsize::new(0);

    thread_local! {
        /// The round this thread leaks for (0: none).
        pub static ROUND: Cell<usize> = const { Cell::new(0) };
    }

    pub fn record(p: *const u8) {
        let tag = ROUND.with(Cell::get);
        if tag != 0 {
            let i = NEXT.fetch_add(1, SeqCst) % SLOTS;
            TAGS[i].store(tag, SeqCst);
            ADDRS[i].store(p as usize ^ HIDE, SeqCst);
        }
    }

    /// What keeps each leak of round `tag` alive, for a failure message.
    pub fn explain(tag: usize) -> String {
        let mut out = String::new();
        for i in 0..SLOTS {
            if TAGS[i].load(SeqCst) == tag {
                let p = (ADDRS[i].load(SeqCst) ^ HIDE) as *const u8;
                match alloc_core::retained_by(p) {
                    Ok(chain) => out.push_str(&format!("a leak looked reachable: {chain}\n")),
                    Err(e) => out.push_str(&format!("leak {p:?}: {e}\n")),
                }
            }
        }
        out
    }
}

#[inline(never)]
fn leak_blocks(n: usize, size: usize) {
    for _ in 0..n {
        let v = std::mem::ManuallyDrop::new(vec![0xa5u8; size]);
        made::record(v.as_ptr());
    }
}

#[inline(never)]
fn leak_cycle() {
    let a = std::rc::Rc::new(Node { _next: std::cell::RefCell::new(None) });
    let b = std::rc::Rc::new(Node { _next: std::cell::RefCell::new(Some(a.clone())) });
    made::record(std::rc::Rc::as_ptr(&a).cast());
    made::record(std::rc::Rc::as_ptr(&b).cast());
    *a._next.borrow_mut() = Some(b);
}

/// Runs `f` `levels` frames of 512 bytes below the caller. A thread's stack is reused by
/// later threads, and what its first frames left unwritten stays visible in the new
/// thread's live frames; the stack of a thread is cleared below its exit path when it
/// ends, so a leak made a few frames deep (as real leaks are) leaves nothing behind.
/// (A pointer to a leak left in the first few hundred bytes of a short-lived thread's
/// stack can still hide that leak from a check, rarely: see README.md.)
#[inline(never)]
fn deep(levels: usize, f: &dyn Fn()) {
    let pad = [levels as u8; 512];
    std::hint::black_box(&pad);
    if levels == 0 {
        f()
    } else {
        deep(levels - 1, f)
    }
}

/// Churn that must not show: blocks freed, blocks kept reachable, a thread that frees
/// what it made.
#[inline(never)]
fn busy_but_clean(round: usize) {
    let v: Vec<Box<[u64; 5]>> = (0..200).map(|i| Box::new([i; 5])).collect();
    drop(v);
    KEPT.lock().unwrap().push(vec![round as u8; 100]);
    std::thread::spawn(|| drop((0..50).map(|i| vec![i as u8; 33]).collect::<Vec<_>>())).join().unwrap();
}

/// A round's tag for [`made`]: unique per test (its size) and round.
fn tag(plan: Plan, round: usize) -> usize {
    plan.size << 8 | (round + 1)
}

fn one_round(plan: Plan, round: usize) -> LeakReport {
    let tag = tag(plan, round);
    made::ROUND.with(|r| r.set(tag));
    let ((), report) = check_scope(|| {
        busy_but_clean(round);
        leak_blocks(plan.own, plan.size);
        let size = plan.size;
        let spawned = plan.spawned;
        std::thread::spawn(move || {
            made::ROUND.with(|r| r.set(tag));
            deep(8, &|| leak_blocks(spawned, size))
        })
        .join()
        .unwrap();
        if plan.cycle {
            leak_cycle();
        }
    });
    report
}

fn stress(plan: Plan) {
    for round in 0..20 {
        let r = one_round(plan, round);
        let s = &r.summary;
        assert!(!r.check_failed(), "round {round}: {:?}", r.status);
        let why = || made::explain(tag(plan, round));
        assert_eq!(
            (s.leaked_blocks, s.leaked_bytes),
            (plan.leaked_blocks(), plan.leaked_bytes()),
            "round {round}: {}{:#?}",
            why(),
            r.leaks
        );
        let by_fn = |f: &str| r.groups_with_function(f).iter().map(|g| g.blocks).sum::<u64>();
        assert_eq!(by_fn("leak_blocks"), (plan.own + plan.spawned) as u64, "round {round}");
        assert_eq!(by_fn("leak_cycle"), if plan.cycle { 2 } else { 0 }, "round {round}");
        assert_eq!(s.cyclic_blocks, if plan.cycle { 2 } else { 0 }, "round {round}");
        assert!(r.leaks.iter().all(|g| g.kind == LeakKind::Direct || g.cyclic), "round {round}: {:#?}", r.leaks);
    }
}

macro_rules! parallel_tests {
    ($($(#[$attr:meta])* $name:ident: $size:expr, $own:expr, $spawned:expr, $cycle:expr;)*) => {
        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                alloc_core::config::set_check_at_exit(false);
                stress(Plan { size: $size, own: $own, spawned: $spawned, cycle: $cycle });
            }
        )*
    };
}

parallel_tests! {
    parallel_01_clean: 24, 0, 0, false;
    parallel_02_leaks_own: 40, 3, 0, false;
    parallel_03_clean: 56, 0, 0, false;
    parallel_04_leaks_spawned: 72, 0, 2, false;
    parallel_05_clean: 88, 0, 0, false;
    parallel_06_leaks_cycle: 104, 0, 0, true;
    parallel_07_clean: 120, 0, 0, false;
    parallel_08_leaks_all: 136, 2, 2, true;
    parallel_09_clean: 152, 0, 0, false;
    parallel_10_leaks_own_medium: 40_000, 1, 0, false;
    parallel_11_clean: 168, 0, 0, false;
    parallel_12_leaks_spawned_many: 184, 0, 7, false;
    parallel_13_clean: 200, 0, 0, false;
    parallel_14_leaks_own_many: 216, 9, 0, false;
    parallel_15_clean: 232, 0, 0, false;
    parallel_16_leaks_mixed: 248, 1, 1, false;
    #[ignore = "stress: run with --ignored; a stale copy of a freed large block's address in the test harness's queue of timeouts hides this leak in about 1 run in 150 on a loaded machine (README.md)"]
    parallel_17_leaks_own_large: 100_000, 1, 0, false;
}

#[test]
fn a_block_freed_outside_the_scope_is_not_a_leak_and_one_kept_is_not_reported() {
    alloc_core::config::set_check_at_exit(false);
    let (kept, r) = check_scope(|| Box::new([9u8; 64]));
    assert!(r.is_clean(), "{:#?}", r.leaks);
    assert_eq!(r.summary.reachable_blocks, 1, "the returned box is the scope's one reachable block");
    drop(kept);
    // Held only in a form no scan recognizes as a pointer: leaked at the scope's end, not
    // any more once freed afterwards (the next scope does not see it either way).
    const HIDE: usize = 0x5a5a_5a5a_5a5a_5a5a;
    let (hidden, r) = check_scope(|| Box::into_raw(Box::new([1u8; 80])) as usize ^ HIDE);
    assert_eq!(r.summary.leaked_blocks, 1, "a block held only as a hidden integer is leaked");
    // SAFETY: made by Box::into_raw above, freed once.
    drop(unsafe { Box::from_raw((hidden ^ HIDE) as *mut [u8; 80]) });
    let ((), r) = check_scope(|| ());
    assert!(r.is_clean());
}

#[test]
fn nested_scopes_report_inner_leaks_in_both() {
    alloc_core::config::set_check_at_exit(false);
    let tag = 312 << 8;
    made::ROUND.with(|r| r.set(tag));
    let (inner, outer) = check_scope(|| {
        leak_blocks(1, 312);
        check_scope(|| leak_blocks(2, 328)).1
    });
    made::ROUND.with(|r| r.set(0));
    let why = || made::explain(tag);
    assert_eq!((inner.summary.leaked_blocks, inner.summary.leaked_bytes), (2, 2 * 328), "{}", why());
    assert_eq!((outer.summary.leaked_blocks, outer.summary.leaked_bytes), (3, 312 + 2 * 328), "{}", why());
}

#[test]
fn a_thread_started_before_the_scope_is_not_in_it() {
    alloc_core::config::set_check_at_exit(false);
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let pool = std::thread::spawn(move || {
        for n in rx {
            leak_blocks(n, 344);
            done_tx.send(()).unwrap();
        }
    });
    let tag = 360 << 8;
    made::ROUND.with(|r| r.set(tag));
    let ((), r) = check_scope(|| {
        tx.send(2).unwrap();
        done_rx.recv().unwrap();
        leak_blocks(1, 360);
    });
    made::ROUND.with(|r| r.set(0));
    drop(tx);
    pool.join().unwrap();
    assert_eq!((r.summary.leaked_blocks, r.summary.leaked_bytes), (1, 360), "{}{:#?}", made::explain(tag), r.leaks);
}

#[test]
fn threads_of_threads_spawned_in_the_scope_are_in_it() {
    alloc_core::config::set_check_at_exit(false);
    let ((), r) = check_scope(|| {
        std::thread::spawn(|| std::thread::spawn(|| leak_blocks(3, 376)).join().unwrap()).join().unwrap();
    });
    assert_eq!((r.summary.leaked_blocks, r.summary.leaked_bytes), (3, 3 * 376));
}

#[test]
fn a_program_that_blocks_the_signals_gets_its_own_thread_only() {
    let out = common::run_child("blocked_signals_child", &[("SCOPES_CHILD", "1"), ("HEAPSWEEP", "check_at_exit=0")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("leak-check scopes cover their own thread only"), "{stderr}");
}

#[test]
fn blocked_signals_child() {
    if std::env::var_os("SCOPES_CHILD").is_none() {
        return;
    }
    // The program uses the highest real-time signal itself, and blocks it.
    // SAFETY: a zeroed sigset filled by sigemptyset/sigaddset, applied to this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGRTMAX());
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let ((), r) = check_scope(|| {
        leak_blocks(1, 424);
        std::thread::spawn(|| leak_blocks(1, 440)).join().unwrap();
    });
    assert_eq!((r.summary.leaked_blocks, r.summary.leaked_bytes), (1, 424), "only the scope's own thread");
}
