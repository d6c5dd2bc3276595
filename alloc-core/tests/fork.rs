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
