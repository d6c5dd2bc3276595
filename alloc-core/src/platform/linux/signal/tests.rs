use super::super::{getpid, gettid, set_signal_blocked, set_signal_handler, tgkill, BlockWhileHandling, SignalHandler};
use super::*;
use core::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// SIGSTKFLT: unused by Linux on x86-64 and by every other test of the crate.
const SIG: i32 = libc::SIGSTKFLT;

/// Serializes the tests that install a handler for [`SIG`].
static SERIAL: Mutex<()> = Mutex::new(());

static SEEN: AtomicUsize = AtomicUsize::new(0);
static MARK: AtomicUsize = AtomicUsize::new(0);

extern "C" fn record(_sig: i32, info: *mut SigInfo, _ctx: *mut c_void) {
    // SAFETY: `info` is this SA_SIGINFO handler's own argument.
    let mark = unsafe { marked_value(info) };
    MARK.store(mark.unwrap_or(usize::MAX), SeqCst);
    SEEN.fetch_add(1, SeqCst);
}

fn wait_seen(n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while SEEN.load(SeqCst) < n && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(SEEN.load(SeqCst), n);
}

#[test]
fn a_marked_signal_carries_its_value_and_others_carry_none() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    SEEN.store(0, SeqCst);
    // SAFETY: the handler only reads its siginfo and stores atomics.
    let saved = unsafe { set_signal_handler(SIG, SignalHandler::WithContext(record), BlockWhileHandling::Nothing) };
    let saved = saved.unwrap();
    queue_marked_signal(gettid(), SIG, 0x1234_5678_9abc).unwrap();
    wait_seen(1);
    assert_eq!(MARK.load(SeqCst), 0x1234_5678_9abc);
    tgkill(getpid(), gettid(), SIG).unwrap();
    wait_seen(2);
    assert_eq!(MARK.load(SeqCst), usize::MAX, "a tgkill has no mark");
    assert_eq!(current_handler(SIG).unwrap(), Some(record as *const () as usize));
    assert_eq!(
        current_handler(SIG).map(|_| saved.forward_target()),
        Ok(Forward::DefaultAction),
        "SIGSTKFLT ends the process by default"
    );
    super::super::restore_signal_action(&saved).unwrap();
    assert_eq!(current_handler(SIG).unwrap(), None);
    assert_eq!(queue_marked_signal(99_999_999, SIG, 1), Err(Errno(libc::ESRCH)));
}

#[test]
fn a_blocked_signal_is_seen_pending_until_it_is_taken() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    SEEN.store(0, SeqCst);
    // SAFETY: as above.
    let saved = unsafe { set_signal_handler(SIG, SignalHandler::WithContext(record), BlockWhileHandling::Nothing) };
    let (tid_tx, tid_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let helper = std::thread::spawn(move || {
        set_signal_blocked(SIG, true);
        tid_tx.send(gettid()).unwrap();
        go_rx.recv().unwrap();
        set_signal_blocked(SIG, false);
    });
    let tid = tid_rx.recv().unwrap();
    assert_eq!(thread_has_pending(tid, SIG), Ok(false));
    queue_marked_signal(tid, SIG, 7).unwrap();
    assert_eq!(thread_has_pending(tid, SIG), Ok(true));
    assert_eq!(thread_has_pending(gettid(), SIG), Ok(false), "pending at the helper only");
    go_tx.send(()).unwrap();
    helper.join().unwrap();
    wait_seen(1);
    assert_eq!(MARK.load(SeqCst), 7);
    assert_eq!(thread_has_pending(tid, SIG), Ok(false), "the thread is gone");
    super::super::restore_signal_action(&saved.unwrap()).unwrap();
}

extern "C" fn plain(_sig: i32) {}

#[test]
fn forward_targets_follow_the_saved_action() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the handler does nothing.
    let first = unsafe { set_signal_handler(SIG, SignalHandler::Plain(plain), BlockWhileHandling::Nothing) }.unwrap();
    // SAFETY: as above.
    let mut second =
        unsafe { set_signal_handler(SIG, SignalHandler::Plain(plain), BlockWhileHandling::Nothing) }.unwrap();
    assert_eq!(
        second.forward_target(),
        Forward::Handler { address: plain as *const () as usize, with_info: false, once: false }
    );
    second.reset_to_default();
    assert_eq!(second.forward_target(), Forward::DefaultAction);
    assert_eq!(second.signal(), SIG);
    super::super::restore_signal_action(&first).unwrap();
    assert!(default_action_ignores(libc::SIGWINCH) && !default_action_ignores(libc::SIGPWR));
}

#[test]
fn status_paths_and_pending_masks_parse() {
    let mut buf = [0u8; 48];
    assert_eq!(status_path(&mut buf, 4_194_304), Some(c"/proc/self/task/4194304/status"));
    assert_eq!(status_path(&mut buf, 7), Some(c"/proc/self/task/7/status"));
    assert_eq!(status_path(&mut buf, -1), None);
    let status = b"Name:\tx\nShdPnd:\t0000000000000001\nSigPnd:\t0000000020000200\nSigBlk:\t0\n";
    assert_eq!(pending_mask(status), Some(0x2000_0200));
    assert_eq!(pending_mask(b"Name:\tx\n"), None);
}

#[test]
fn the_standard_signal_table_has_linux_numbers() {
    assert_eq!(STANDARD_SIGNALS.len(), 31);
    for (i, &(_, n)) in STANDARD_SIGNALS.iter().enumerate() {
        assert_eq!(n, i as i32 + 1);
    }
    assert!(rt_signal_min() > STANDARD_SIGNALS.len() as i32 + 1, "glibc keeps 32 and 33");
}
