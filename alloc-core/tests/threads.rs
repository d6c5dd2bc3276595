//! Threads under HeapSweep: frees from other threads, threads that exit with live blocks,
//! and a bounded stress run of 8 threads passing blocks around.

use std::sync::mpsc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

/// The tests measure the heap: run them one at a time.
mod common;
use common::serial;

/// A block with a checkable fill pattern.
struct Filled(Vec<u8>, u8);

impl Filled {
    fn new(len: usize, seed: u8) -> Self {
        Filled((0..len).map(|i| seed.wrapping_add(i as u8)).collect(), seed)
    }
    fn verify(&self) {
        for (i, &b) in self.0.iter().enumerate() {
            assert_eq!(b, self.1.wrapping_add(i as u8), "corrupted block of {} bytes at {i}", self.0.len());
        }
    }
}

#[test]
fn blocks_freed_by_another_thread_are_reused() {
    let _serial = serial();
    let (tx, rx) = mpsc::channel::<Vec<Filled>>();
    let consumer = std::thread::spawn(move || {
        let mut n = 0;
        for batch in rx {
            for b in &batch {
                b.verify();
            }
            n += batch.len();
        }
        n
    });
    for round in 0..200u32 {
        let batch: Vec<Filled> =
            (0..100).map(|i| Filled::new(16 + (i * 37 + round as usize) % 2000, i as u8)).collect();
        tx.send(batch).unwrap();
    }
    drop(tx);
    assert_eq!(consumer.join().unwrap(), 20_000);
    let s = alloc_core::stats();
    // 20k blocks went through, but the pages were reused: far fewer pages than blocks.
    let pages: usize = s.classes.iter().map(|c| c.pages).sum();
    assert!(pages < 2_000, "{pages} pages for 20k blocks");
}

#[test]
fn threads_that_exit_with_live_blocks_hand_them_on() {
    let _serial = serial();
    let mut survivors = Vec::new();
    for t in 0..16u8 {
        let handle =
            std::thread::spawn(move || (0..500).map(|i| Filled::new(8 + (i * 13) % 700, t)).collect::<Vec<_>>());
        survivors.push(handle.join().unwrap());
    }
    for batch in &survivors {
        for b in batch {
            b.verify();
        }
    }
    drop(survivors);
    // New threads adopt the abandoned pages instead of mapping new ones without bound.
    let before = alloc_core::stats().mapped_bytes;
    for _ in 0..16 {
        std::thread::spawn(|| drop((0..500).map(|i| Filled::new(8 + (i * 13) % 700, 1)).collect::<Vec<_>>()))
            .join()
            .unwrap();
    }
    let after = alloc_core::stats().mapped_bytes;
    assert!(after <= before + (16 << 20), "mapped grew from {before} to {after}");
}

/// xorshift64*: a tiny deterministic generator for the stress test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn stress_eight_threads_passing_blocks_for_a_bounded_time() {
    let _serial = serial();
    let deadline = Instant::now() + Duration::from_secs(3);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..8).map(|_| mpsc::channel::<Filled>()).unzip();
    let mut handles = Vec::new();
    for (id, rx) in rxs.into_iter().enumerate() {
        let txs = txs.clone();
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1));
            let mut mine: Vec<Filled> = Vec::new();
            let mut ops = 0u64;
            while Instant::now() < deadline {
                for _ in 0..64 {
                    let r = rng.next();
                    let size = match r % 100 {
                        0 => (r >> 8) as usize % (1 << 20),
                        1..=10 => (r >> 8) as usize % 65_536,
                        _ => (r >> 8) as usize % 1024,
                    };
                    match (r >> 40) % 4 {
                        0 | 1 => mine.push(Filled::new(size, r as u8)),
                        2 if !mine.is_empty() => {
                            let b = mine.swap_remove((r >> 20) as usize % mine.len());
                            b.verify();
                            let _ = txs[(r >> 50) as usize % 8].send(b);
                        }
                        _ if !mine.is_empty() => mine.swap_remove((r >> 20) as usize % mine.len()).verify(),
                        _ => {}
                    }
                    ops += 1;
                }
                while let Ok(b) = rx.try_recv() {
                    b.verify();
                    mine.push(b);
                }
                mine.truncate(2_000);
            }
            // Exit with live blocks half the time: the next owner frees them.
            if id % 2 == 0 {
                (ops, mine)
            } else {
                (ops, Vec::new())
            }
        }));
    }
    drop(txs);
    let mut total = 0;
    for h in handles {
        let (ops, left) = h.join().unwrap();
        for b in &left {
            b.verify();
        }
        total += ops;
    }
    assert!(total > 1_000, "only {total} operations");
}

/// Words of the marker a thread leaves in its top frame.
const MARKS: usize = 64;
const MARK: usize = 0x6d61_726b_6d61_726b;

/// Runs, on a thread of `stack` bytes, a closure whose own frame holds `MARKS` marker
/// words; returns where they were (the thread has ended).
fn leave_marks(stack: usize) -> usize {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(|| {
            let mut marks = [MARK; MARKS];
            std::hint::black_box(&mut marks);
            // Something that allocates, so the thread has a heap (and an exit hook).
            std::hint::black_box(vec![1u8; 100]);
            marks.as_ptr() as usize
        })
        .unwrap()
        .join()
        .unwrap()
}

/// How many marker words remain at `at`, read by a thread on the same stack size (glibc
/// hands it the stack the last thread left when nothing else took it); `None` when the
/// new thread got another stack.
fn marks_left(stack: usize, at: usize) -> Option<usize> {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let here = 0u8;
            let sp = &here as *const u8 as usize;
            // The marks lie on this thread's stack, below this frame, if the stack is
            // the ended thread's (glibc rounds stacks to whole pages, same size).
            if at >= sp || sp - at > stack {
                return None;
            }
            // SAFETY: `[at, at + MARKS words)` lies on this thread's own stack, below its
            // live frames and above its guard page: mapped memory nothing uses now.
            Some((0..MARKS).filter(|&i| unsafe { ((at + 8 * i) as *const usize).read_volatile() } == MARK).count())
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn an_ended_thread_leaves_nothing_of_its_frames_on_its_stack() {
    // An unusual size: no other test's threads take these stacks.
    const STACK: usize = (3 << 20) + (52 << 10);
    let mut checked = 0;
    for _ in 0..20 {
        let at = leave_marks(STACK);
        if let Some(left) = marks_left(STACK, at) {
            assert_eq!(left, 0, "{left} of the ended thread's marker words are still on its stack");
            checked += 1;
        }
    }
    assert!(checked > 0, "glibc never handed an ended thread's stack to the next thread");
}

/// The pages of `block_size`'s class, by `stats()`.
fn pages_of_class(block_size: usize) -> usize {
    alloc_core::stats().classes.iter().filter(|c| c.block_size == block_size).map(|c| c.pages).sum()
}

#[test]
fn pages_an_ended_thread_left_go_back_once_another_thread_freed_their_blocks() {
    let _serial = serial();
    // 200 blocks of a size no other test here uses (3,000 bytes), made on a thread that
    // ends: its pages are abandoned with every block live. This thread frees them all
    // (onto the pages' thread-free lists), and nobody allocates that size again, so no
    // thread adopts those pages.
    let probe = vec![0u8; 3_000].into_boxed_slice();
    let block_size = alloc_core::usable_size(probe.as_ptr()).unwrap();
    let before = pages_of_class(block_size);
    let blocks: Vec<Box<[u8]>> =
        std::thread::spawn(|| (0..200).map(|i| vec![i as u8; 3_000].into_boxed_slice()).collect()).join().unwrap();
    let with = pages_of_class(block_size);
    assert!(with > before, "{before} pages of {block_size}-byte blocks before, {with} after");
    drop(blocks);
    // Allocations of another size take fresh pages; before each, a few abandoned pages are
    // looked at, and those with no live block left go back to the pool.
    let other: Vec<Box<[u8; 1000]>> = (0..32_000).map(|_| Box::new([7u8; 1000])).collect();
    let after = pages_of_class(block_size);
    drop((other, probe));
    assert!(
        after <= before,
        "{before} pages of {block_size}-byte blocks, {with} with the ended thread's, {after} left"
    );
}
