//! Tests of stopping the world. While threads are stopped a test must not allocate (a
//! stopped thread may hold a heap's lock): results are copied into buffers reserved
//! beforehand and checked after `resume`.

use super::*;
use crate::leak::maps::{read_maps, Mapping};
use crate::platform::gettid;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64};
use std::sync::{mpsc, Arc};

/// A helper thread: its tid, a stack address in its outermost frame, its progress.
struct Helper {
    tid: Arc<AtomicI32>,
    local: Arc<AtomicUsize>,
    progress: Arc<AtomicU64>,
}

fn spawn_helper(
    handles: &mut Vec<std::thread::JoinHandle<()>>,
    body: impl FnOnce(&AtomicU64) + Send + 'static,
) -> Helper {
    let h = Helper { tid: Arc::default(), local: Arc::default(), progress: Arc::default() };
    let (tid, local, progress) = (h.tid.clone(), h.local.clone(), h.progress.clone());
    handles.push(std::thread::spawn(move || {
        let marker = 0u64;
        local.store(std::hint::black_box(&marker) as *const u64 as usize, SeqCst);
        tid.store(gettid(), SeqCst);
        body(&progress);
    }));
    while h.tid.load(SeqCst) == 0 {
        std::thread::yield_now();
    }
    h
}

fn mapping_of(maps: &MmapVec<Mapping>, addr: usize) -> Mapping {
    *maps.iter().find(|m| m.start <= addr && addr < m.end).expect("address is mapped")
}

#[test]
fn stops_spinning_sleeping_and_blocked_threads_a_hundred_times() {
    let _serial = test_serial();
    let quit = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut helpers = Vec::new();
    let q = quit.clone();
    helpers.push(spawn_helper(&mut handles, move |p| {
        while !q.load(Relaxed) {
            p.fetch_add(1, Relaxed);
        }
    }));
    let q = quit.clone();
    helpers.push(spawn_helper(&mut handles, move |p| {
        while !q.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
            p.fetch_add(1, Relaxed);
        }
    }));
    let (tx, rx) = mpsc::channel::<()>();
    helpers.push(spawn_helper(&mut handles, move |_| while rx.recv().is_ok() {}));
    let (mut pipe_reader, pipe_writer) = std::io::pipe().unwrap();
    helpers.push(spawn_helper(&mut handles, move |_| {
        let mut b = [0u8; 1];
        // A blocking read of one byte at a time, until the write end is closed.
        while pipe_reader.read(&mut b).is_ok_and(|n| n == 1) {}
    }));
    let mut maps = MmapVec::new();
    assert!(maps.reserve(4096) && read_maps(&mut maps).is_ok());
    let stacks: Vec<Mapping> = helpers.iter().map(|h| mapping_of(&maps, h.local.load(SeqCst))).collect();
    let mut seen: Vec<StoppedThread> = Vec::with_capacity(MAX_THREADS);
    for round in 0..100 {
        let mut world = stop_the_world(Duration::from_secs(10));
        let frozen = helpers[0].progress.load(Relaxed);
        if round % 10 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        let moved = helpers[0].progress.load(Relaxed) != frozen;
        seen.clear();
        seen.extend_from_slice(world.threads());
        let all = world.all_stopped();
        world.resume();
        assert!(all && !moved, "round {round}: all stopped {all}, spinning thread moved {moved}");
        for (h, stack) in helpers.iter().zip(&stacks) {
            let tid = h.tid.load(SeqCst);
            let t = seen.iter().find(|t| t.tid == tid).unwrap_or_else(|| panic!("thread {tid} not in the world"));
            assert!(t.stopped);
            let local = h.local.load(SeqCst);
            assert!(
                stack.start <= t.sp && t.sp <= local,
                "round {round}: sp {:#x} not in {stack:x?} below {local:#x}",
                t.sp
            );
            assert!(h.local.load(SeqCst) < t.tp && t.tp < stack.end, "tp {:#x} outside {stack:x?}", t.tp);
            assert_eq!(t.regs[platform::SP_REGISTER], t.sp);
        }
        assert!(seen.iter().all(|t| t.tid != gettid()), "the calling thread is never stopped");
        // Resumed: the spinning thread makes progress again (polled, not timed).
        let before = helpers[0].progress.load(Relaxed);
        while helpers[0].progress.load(Relaxed) == before {
            std::thread::yield_now();
        }
    }
    quit.store(true, Relaxed);
    drop(tx);
    // Closing the pipe's write end ends the reader's loop.
    drop(pipe_writer);
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn a_thread_blocking_the_signal_is_unstopped_then_released_when_it_unblocks() {
    let _serial = test_serial();
    // Phases of the helper: 1 signal blocked, 2 unblocking, 3 unblocked and running.
    let phase = Arc::new(AtomicU32::new(0));
    let go = Arc::new(AtomicU32::new(0));
    let mut handles = Vec::new();
    let (p, g) = (phase.clone(), go.clone());
    let h = spawn_helper(&mut handles, move |_| {
        let wait_go = |n| {
            while g.load(SeqCst) < n {
                std::thread::sleep(Duration::from_micros(100));
            }
        };
        platform::set_signal_blocked(stop_signal(), true);
        p.store(1, SeqCst);
        wait_go(1);
        p.store(2, SeqCst);
        // The pending stop signal is delivered here, inside the world stopped below.
        platform::set_signal_blocked(stop_signal(), false);
        p.store(3, SeqCst);
        wait_go(2);
    });
    while phase.load(SeqCst) != 1 {
        std::thread::yield_now();
    }
    let tid = h.tid.load(SeqCst);
    // The stop gives up on the thread after its timeout instead of waiting forever.
    let mut world = stop_the_world(Duration::from_millis(50));
    let t = world.threads().iter().find(|t| t.tid == tid).copied();
    let all = world.all_stopped();
    let failure = world.failure();
    // Now it unblocks (no allocation here: the world is stopped): its handler takes the
    // request still open and parks.
    go.store(1, SeqCst);
    while phase.load(SeqCst) < 2 {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(20));
    let ran_on = phase.load(SeqCst) == 3;
    world.resume();
    let t = t.expect("the blocking thread is listed");
    assert!(!t.stopped && t.sp == 0 && !all);
    assert_eq!(
        failure,
        Some(Failure::ThreadsNotStopped { first_tid: tid, count: 1, timeout_ms: 50 }),
        "the world says which thread did not stop"
    );
    assert!(!ran_on, "a thread that entered the handler late ran on before resume");
    while phase.load(SeqCst) != 3 {
        std::thread::yield_now();
    }
    // Its next stop is an ordinary one.
    let mut world = stop_the_world(Duration::from_secs(10));
    let t = world.threads().iter().find(|t| t.tid == tid).copied();
    world.resume();
    assert!(t.is_some_and(|t| t.stopped));
    go.store(2, SeqCst);
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn threads_created_and_exiting_during_stops_are_all_accounted_for() {
    let _serial = test_serial();
    let quit = Arc::new(AtomicBool::new(false));
    let q = quit.clone();
    let spawner = std::thread::spawn(move || {
        while !q.load(Relaxed) {
            let kids: Vec<_> = (0..4).map(|_| std::thread::spawn(std::thread::yield_now)).collect();
            kids.into_iter().for_each(|k| k.join().unwrap());
        }
    });
    let mut seen: Vec<StoppedThread> = Vec::with_capacity(MAX_THREADS);
    let mut listed: Vec<i32> = Vec::with_capacity(MAX_THREADS);
    for round in 0..50 {
        let mut world = stop_the_world(Duration::from_secs(10));
        seen.clear();
        seen.extend_from_slice(world.threads());
        listed.clear();
        let listing = platform::for_each_task(|t| {
            if listed.len() < listed.capacity() {
                listed.push(t)
            }
        });
        let failure = world.failure();
        world.resume();
        assert_eq!((listing, failure), (Ok(()), None), "round {round}");
        assert!(seen.iter().all(|t| t.stopped), "round {round}: {seen:?}");
        let me = gettid();
        for t in &listed {
            assert!(*t == me || seen.iter().any(|s| s.tid == *t), "round {round}: thread {t} escaped the stop");
        }
    }
    quit.store(true, Relaxed);
    spawner.join().unwrap();
}

#[test]
fn an_empty_world_has_no_threads_and_resumes_at_once() {
    let mut w = StoppedWorld::new();
    // Nothing is known of the other threads: their stacks will be scanned whole.
    assert!(w.threads().is_empty() && !w.all_stopped() && w.failure().is_none());
    w.resume();
}

#[test]
fn slot_words_pack_a_tid_and_a_state() {
    let w = pack(i32::MAX, DONE);
    assert_eq!((tid_of(w), state_of(w)), (i32::MAX, DONE));
    assert_eq!(pack(0, FREE), 0);
}
