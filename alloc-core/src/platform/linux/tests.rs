//! Tests of the Linux wrappers, against the running process.

use super::*;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

const PAGE: usize = 4096;

#[test]
fn errno_is_per_thread_and_settable() {
    set_errno(libc::EAGAIN);
    assert_eq!(errno(), libc::EAGAIN);
    std::thread::spawn(|| set_errno(libc::EPERM)).join().unwrap();
    assert_eq!(errno(), libc::EAGAIN);
}

#[test]
fn anonymous_memory_is_zeroed_discarded_and_unmapped() {
    for reserve in [Reserve::Lazily, Reserve::Committed] {
        let p = mmap_anonymous(2 * PAGE, reserve).unwrap().as_ptr();
        assert_eq!(p as usize % PAGE, 0);
        // SAFETY: `p` maps two writable pages, ours alone.
        unsafe {
            assert_eq!(*p.add(PAGE), 0);
            p.add(PAGE).write(7);
            madvise_dontneed(p.add(PAGE), PAGE).unwrap();
            assert_eq!(*p.add(PAGE), 0, "discarded pages read as zero");
            munmap(p, 2 * PAGE).unwrap();
        }
    }
    assert_eq!(mmap_anonymous(0, Reserve::Lazily), Err(Errno(libc::EINVAL)));
}

#[test]
fn remapping_keeps_contents_and_can_target_an_address() {
    let p = mmap_anonymous(PAGE, Reserve::Lazily).unwrap().as_ptr();
    // SAFETY: `p` maps one page; after each move only the new address is used.
    unsafe {
        p.write(42);
        let q = mremap_maymove(p, PAGE, 64 * PAGE).unwrap().as_ptr();
        assert_eq!(*q, 42);
        q.add(63 * PAGE).write(1);
        let target = mmap_anonymous(128 * PAGE, Reserve::Lazily).unwrap().as_ptr();
        let r = mremap_fixed(q, 64 * PAGE, 128 * PAGE, target).unwrap().as_ptr();
        assert_eq!(r, target);
        assert_eq!((*r, *r.add(63 * PAGE), *r.add(127 * PAGE)), (42, 1, 0));
        munmap(r, 128 * PAGE).unwrap();
    }
}

#[test]
fn writes_reach_a_pipe_and_bad_descriptors_fail() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    assert_eq!(write(writer.as_raw_fd(), b"hello"), Ok(5));
    drop(writer);
    let mut got = String::new();
    reader.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello");
    assert_eq!(write(-1, b"x"), Err(Errno(libc::EBADF)));
}

#[test]
fn pipes_and_bad_descriptors_are_not_terminals() {
    let (reader, _writer) = std::io::pipe().unwrap();
    assert!(!isatty(-1) && !isatty(reader.as_raw_fd()));
}

#[test]
fn getenv_agrees_with_std() {
    let ours = getenv(c"PATH", |b| b.to_vec());
    let std = std::env::var_os("PATH").map(std::os::unix::ffi::OsStringExt::into_vec);
    assert_eq!(ours, std);
    assert_eq!(getenv(c"HEAPSWEEP_TEST_SURELY_UNSET_8d1f", |b| b.len()), None);
}

#[test]
fn thread_ids_and_signals_to_threads() {
    let (pid, me) = (getpid(), gettid());
    assert_eq!(pid as u32, std::process::id());
    assert_ne!(std::thread::spawn(gettid).join().unwrap(), me);
    assert_eq!(tgkill(pid, me, 0), Ok(()));
    // No thread id reaches i32::MAX (pid_max is at most 2^22).
    assert_eq!(tgkill(pid, i32::MAX, 0), Err(Errno(libc::ESRCH)));
}

#[test]
fn futex_waits_return_on_mismatch_timeout_and_wake() {
    let word = AtomicU32::new(1);
    futex_wait(&word, 0, Duration::from_secs(10)); // the word is not 0: returns at once
                                                   // The wait ends on its timeout, or earlier when a signal arrives (another test
                                                   // stopping the world): then it waits again. A timeout that never fired would hang here.
    let t = std::time::Instant::now();
    while t.elapsed() < Duration::from_millis(4) {
        futex_wait(&word, 1, Duration::from_millis(5));
    }
    static WORD: AtomicU32 = AtomicU32::new(0);
    let waiter = std::thread::spawn(|| {
        while WORD.load(Ordering::SeqCst) == 0 {
            futex_wait(&WORD, 0, Duration::from_secs(10));
        }
    });
    std::thread::sleep(Duration::from_millis(5));
    WORD.store(1, Ordering::SeqCst);
    futex_wake_all(&WORD);
    waiter.join().unwrap();
    sched_yield();
}

#[test]
fn the_monotonic_clock_moves_forward() {
    let a = monotonic_ns();
    std::thread::sleep(Duration::from_millis(2));
    assert!(monotonic_ns() >= a + 1_000_000);
}

#[test]
fn the_current_stack_holds_a_local() {
    let local = 0u64;
    let at = core::hint::black_box(&local) as *const u64 as usize;
    let (lo, hi) = current_thread_stack().unwrap();
    assert!(lo < at && at < hi, "{lo:#x}..{hi:#x} does not hold {at:#x}");
    let (lo, hi) = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| current_thread_stack().unwrap())
        .unwrap()
        .join()
        .unwrap();
    assert!(hi - lo >= 256 << 10 && hi - lo < 1 << 20, "{lo:#x}..{hi:#x}");
}

#[test]
fn tasks_include_the_calling_thread() {
    let me = gettid();
    let mut seen = false;
    for_each_task(|t| seen |= t == me).unwrap();
    assert!(seen);
}

#[test]
fn an_unreadable_task_directory_is_an_error_not_an_empty_list() {
    let mut called = false;
    assert_eq!(for_each_task_in(c"/proc/self/no-such-dir", |_| called = true), Err(Errno(libc::ENOENT)));
    assert_eq!(for_each_task_in(c"/proc/self/maps", |_| called = true), Err(Errno(libc::ENOTDIR)));
    assert!(!called);
}

#[test]
fn dirent_records_are_walked_and_dot_entries_skipped() {
    fn record(name: &[u8]) -> Vec<u8> {
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        let mut r = vec![0u8; reclen];
        r[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
        r[19..19 + name.len()].copy_from_slice(name);
        r
    }
    let buf: Vec<u8> = [&b"."[..], b"..", b"1234", b"99x", b"7"].iter().flat_map(|n| record(n)).collect();
    let mut got = Vec::new();
    for_each_dirent(&buf, &mut |t| got.push(t));
    assert_eq!(got, vec![1234, 7]);
    // A truncated record ends the walk instead of reading past the buffer.
    got.clear();
    for_each_dirent(&buf[..buf.len() - 3], &mut |t| got.push(t));
    assert_eq!(got, vec![1234]);
}

#[test]
fn proc_self_maps_reads_and_missing_files_fail() {
    let mut fd = open_proc_self_maps().unwrap();
    let mut buf = [0u8; 256];
    let n = fd.read(&mut buf).unwrap();
    assert!(n > 0 && buf[..n].contains(&b'-'), "{:?}", &buf[..n]);
    assert_eq!(ReadOnlyFd::open(c"/proc/self/no-such-file", 0).unwrap_err(), Errno(libc::ENOENT));
}

static WINCHES: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_winch(_sig: i32) {
    WINCHES.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn a_handler_runs_when_its_signal_arrives_and_bad_signals_are_refused() {
    // SIGWINCH: ignored by default, and used by nothing else in these tests.
    let sig = libc::SIGWINCH;
    // SAFETY: the handler only increments an atomic.
    let saved = unsafe { set_signal_handler(sig, SignalHandler::Plain(count_winch), BlockWhileHandling::Nothing) };
    assert_eq!(saved.unwrap().previous_handler(), None);
    tgkill(getpid(), gettid(), sig).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while WINCHES.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(WINCHES.load(Ordering::SeqCst), 1);
    // SAFETY: as above; the handler stays (it only counts).
    let again = unsafe { set_signal_handler(sig, SignalHandler::Plain(count_winch), BlockWhileHandling::AllButFaults) };
    assert_eq!(again.unwrap().previous_handler(), Some(count_winch as *const () as usize));
    // SAFETY: signal 0 is no signal: sigaction refuses it.
    let bad = unsafe { set_signal_handler(0, SignalHandler::Plain(count_winch), BlockWhileHandling::Nothing) };
    assert_eq!(bad.unwrap_err(), Errno(libc::EINVAL));
}

extern "C" fn ignore_urg(_sig: i32) {}

#[test]
fn a_replaced_action_is_restored() {
    // SIGURG: ignored by default, and used by nothing else in these tests.
    let sig = libc::SIGURG;
    // SAFETY: the handler does nothing.
    let saved = unsafe { set_signal_handler(sig, SignalHandler::Plain(ignore_urg), BlockWhileHandling::Nothing) };
    let saved = saved.unwrap();
    assert_eq!(saved.previous_handler(), None, "{saved:?}");
    restore_signal_action(&saved).unwrap();
    // SAFETY: as above.
    let again = unsafe { set_signal_handler(sig, SignalHandler::Plain(ignore_urg), BlockWhileHandling::Nothing) };
    assert_eq!(again.unwrap().previous_handler(), None, "the default action was restored");
    restore_signal_action(&saved).unwrap();
}

#[test]
fn the_signal_name_table_has_linux_numbers() {
    let number = |name: &str| SIGNAL_NAMES.iter().find(|(n, _)| *n == name).map(|&(_, s)| s);
    assert_eq!(
        (number("HUP"), number("USR1"), number("USR2"), number("PROF")),
        (Some(1), Some(10), Some(12), Some(27))
    );
    for forbidden in ["SEGV", "KILL", "STOP", "PWR", "ABRT", "BUS"] {
        assert_eq!(number(forbidden), None, "{forbidden}");
    }
}

#[test]
fn loaded_objects_list_the_executable_first_then_libc() {
    let here = loaded_objects_list_the_executable_first_then_libc as *const () as usize;
    let mut names = Vec::new();
    let mut holds_here = Vec::new();
    for_each_loaded_object(|o| {
        names.push(o.name.to_string_lossy().into_owned());
        holds_here.push(o.program_headers.iter().any(|ph| {
            let start = o.load_bias + ph.p_vaddr as usize;
            ph.p_type == PT_LOAD && start <= here && here < start + ph.p_memsz as usize
        }));
    });
    assert_eq!(names[0], "", "the executable has no name: {names:?}");
    assert!(holds_here[0], "{names:?}");
    assert!(names.iter().any(|n| n.contains("libc.so")), "{names:?}");
}

#[test]
fn dladdr_names_the_object_holding_an_address() {
    let getpid_at = libc::getpid as *const () as usize;
    let name = dladdr_file_name(getpid_at, |n| n.to_string_lossy().into_owned());
    assert!(name.as_deref().is_some_and(|n| n.contains("libc.so")), "{name:?}");
    assert_eq!(dladdr_file_name(8, |_| ()), None);
}

static DESTROYED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn record_destroyed(value: *mut c_void) {
    DESTROYED.store(value as usize, Ordering::SeqCst);
}

#[test]
fn a_thread_key_destructor_runs_at_thread_exit_with_the_value() {
    // A key of its own: the process's one thread-exit key belongs to the heap.
    let key = key_create(record_destroyed).unwrap();
    std::thread::spawn(move || key_set(key, 0x1234 as *mut c_void).unwrap()).join().unwrap();
    assert_eq!(DESTROYED.load(Ordering::SeqCst), 0x1234);
    key_delete(key);
    assert_eq!(key_set(key, core::ptr::null_mut()), Err(Errno(libc::EINVAL)), "a deleted key");
}

#[test]
fn there_is_one_thread_exit_key() {
    extern "C" fn ignore(_: *mut c_void) {}
    // The first call made it, here or (once the heap uses it) at the heap's set-up.
    let first = thread_exit_key_create(ignore);
    assert!(matches!(first, Ok(()) | Err(Errno(libc::EEXIST))), "{first:?}");
    assert_eq!(thread_exit_key_create(ignore), Err(Errno(libc::EEXIST)));
}

/// Forks; the child exits at once (`exit_now`) with the code `child` returns, and the
/// parent returns the child's exit status.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `child`, which reads an atomic at most, then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", errno());
    if pid == 0 {
        exit_now(child());
    }
    let mut status = 0;
    // SAFETY: waiting for our own child into a local.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "status {status:#x}");
    libc::WEXITSTATUS(status)
}

#[test]
fn exit_now_ends_the_process_with_the_code() {
    assert_eq!(in_child(|| 7), 7);
}

static PREPARED: AtomicI32 = AtomicI32::new(0);
static IN_PARENT: AtomicI32 = AtomicI32::new(0);
static IN_CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_prepare() {
    PREPARED.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn on_parent() {
    IN_PARENT.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn on_child() {
    IN_CHILD.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn fork_handlers_run_in_the_parent_and_the_child() {
    // SAFETY: the handlers only increment atomics.
    unsafe { atfork(on_prepare, on_parent, on_child) }.unwrap();
    let child_count = in_child(|| IN_CHILD.load(Ordering::SeqCst));
    assert_eq!(child_count, 1, "the child handler ran once, in the child");
    assert!(PREPARED.load(Ordering::SeqCst) >= 1 && IN_PARENT.load(Ordering::SeqCst) >= 1);
    assert_eq!(IN_CHILD.load(Ordering::SeqCst), 0, "never in the parent");
}

static EXITING: AtomicBool = AtomicBool::new(false);

extern "C" fn note_exit() {
    EXITING.store(true, Ordering::SeqCst);
}

#[test]
fn atexit_and_flushing_c_stdio_succeed() {
    // The handler runs when this test binary exits; registering it is what can fail.
    atexit(note_exit).unwrap();
    assert!(!EXITING.load(Ordering::SeqCst));
    flush_c_stdio().unwrap();
}

#[test]
fn the_thread_count_is_the_number_of_threads_listed() {
    let started = std::sync::Arc::new(std::sync::Barrier::new(4));
    let hold = std::sync::Arc::new(std::sync::Barrier::new(4));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (started, hold) = (started.clone(), hold.clone());
            std::thread::spawn(move || {
                started.wait();
                hold.wait();
            })
        })
        .collect();
    started.wait();
    // Other tests start and end threads meanwhile: a listing between two equal counts.
    let agreed = (0..100).any(|_| {
        let before = thread_count().unwrap();
        let mut listed = 0;
        for_each_task(|_| listed += 1).unwrap();
        before == thread_count().unwrap() && listed == before && before >= 4
    });
    hold.wait();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert!(agreed, "the count never matched the listing (this thread and three more at least)");
}
