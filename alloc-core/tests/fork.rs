//! `fork` from a threaded program leaves a child that can allocate and free, including
//! blocks its parent allocated.

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[test]
fn fork_in_a_threaded_program_leaves_a_usable_child() {
    let parent_blocks: Vec<Vec<u64>> = (0..1000).map(|i| vec![i; 10]).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churners: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let v: Vec<String> = (0..100).map(|i| i.to_string()).collect();
                    std::hint::black_box(v);
                }
            })
        })
        .collect();
    for _ in 0..20 {
        // SAFETY: the child only allocates, frees and exits with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = std::panic::catch_unwind(|| {
                let mut v: Vec<Box<[u8]>> =
                    (0..10_000).map(|i| vec![i as u8; i % 300 + 1].into_boxed_slice()).collect();
                v.retain(|b| b.len() % 2 == 0);
                let sum: u64 = parent_blocks.iter().map(|b| b[3]).sum();
                drop(v);
                sum == (0..1000).sum::<u64>()
            });
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(if matches!(ok, Ok(true)) { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed: status {status}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in churners {
        t.join().unwrap();
    }
}

mod common;

/// The leak of a thread that starts and ends in a forked child, with sweeps on in the
/// child: the child's own sweeper finds it, and its at-exit check reports it too (as
/// already reported by a sweep). Runs in a child process of this binary (`HEAPSWEEP`
/// turns sweeps on and names the reports), which forks the process under test.
#[test]
fn a_short_lived_threads_leak_in_a_forked_child_is_swept_and_reported_at_exit() {
    if std::env::var_os("FORK_SWEEP_CHILD").is_some() {
        return;
    }
    let dir = common::scratch_dir("fork-sweep");
    let heapsweep = format!("sweep=100/10/10,exitcode=0,report={}/%p.json", dir.display());
    let out = common::run_child(
        "forked_child_sweeps_a_threads_leak",
        &[("FORK_SWEEP_CHILD", "1"), ("HEAPSWEEP", &heapsweep)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 passed"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Size of the block the forked child's thread leaks.
const FORKED_LEAK: u64 = 1237;

/// The leak's address, hidden from the scan (`^ HIDE`), for the failure's explanation.
static LEAKED_AT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const HIDE: usize = 0x5a5a_5a5a_5a5a_5a5a;

/// Blocks of [`FORKED_LEAK`] bytes the child's sweeps reported.
static SWEPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn count_forked_leak(g: &alloc_core::report::model::LeakGroup) {
    if g.bytes == g.blocks * FORKED_LEAK {
        SWEPT.fetch_add(g.blocks, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The forked child: a thread leaks and ends, then allocations (kept) pass the sweep
/// threshold until the sweeper reports the leak. Exit status 0 when it did within the
/// time allowed, 3 if not; its at-exit report is read by the parent.
fn forked_child() -> ! {
    alloc_core::sweep::on_leak(Some(count_forked_leak));
    alloc_core::sweep::enable();
    std::thread::spawn(|| {
        let leak = Box::into_raw(std::hint::black_box(Box::new([5u8; FORKED_LEAK as usize])));
        LEAKED_AT.store(leak as usize ^ HIDE, std::sync::atomic::Ordering::SeqCst);
    })
    .join()
    .unwrap();
    let mut kept: Vec<Box<u64>> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while SWEPT.load(std::sync::atomic::Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        kept.extend((0..200).map(Box::new));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let swept = SWEPT.load(std::sync::atomic::Ordering::SeqCst);
    if swept != 1 {
        let leak = (LEAKED_AT.load(std::sync::atomic::Ordering::SeqCst) ^ HIDE) as *const u8;
        match alloc_core::retained_by(leak) {
            Ok(chain) => eprintln!("the leak is reachable: {chain}"),
            Err(e) => eprintln!("{e}; sweeps run: {:?}", alloc_core::stats().sweeps),
        }
    }
    std::hint::black_box(&kept);
    // The at-exit check runs and writes this process's report.
    std::process::exit(if swept == 1 { 0 } else { 3 })
}

#[test]
fn forked_child_sweeps_a_threads_leak() {
    if std::env::var_os("FORK_SWEEP_CHILD").is_none() {
        return;
    }
    // Forked from a thread of its own (not the main one, nor the harness's test thread):
    // in the child, what only the other threads reached is unreachable.
    let (pid, status) = std::thread::spawn(|| {
        // SAFETY: the child allocates only through this allocator (the fork handlers
        // took its locks), starts threads and ends with `exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            forked_child();
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        (pid, status)
    })
    .join()
    .unwrap();
    assert!(libc::WIFEXITED(status), "the child: status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "the child's sweeps did not report its thread's leak");
    let report = std::env::var("HEAPSWEEP").unwrap();
    let dir = report.rsplit_once("report=").unwrap().1.trim_end_matches("/%p.json");
    let text = std::fs::read_to_string(format!("{dir}/{pid}.json")).expect("the child's at-exit report");
    let r = common::read_report(&text).unwrap();
    let group = r.leaks.iter().find(|g| g.bytes == g.blocks * FORKED_LEAK);
    let group = group.unwrap_or_else(|| panic!("the at-exit check missed the leak: {:#?}", r.leaks));
    assert_eq!((group.blocks, group.reported_by_sweep), (1, 1));
}
