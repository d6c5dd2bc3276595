//! `zero_new`: a stale pointer in bytes a program never wrote must not hide a leak.
//!
//! The child makes the stale word on purpose: a block `H` holding the address of a block
//! `L`, both freed; then `H'` (same size, so the same address: the free list is last in,
//! first out) written only in its first word and kept, and `L'` (the same address as `L`)
//! leaked; then a whole-process check. `H'`'s unwritten bytes still hold `L`'s address
//! unless new blocks start zeroed. (A scope's own blocks never take a freed block's
//! address, so the leak is made outside any scope: inside one it would not meet the stale
//! word at all.)

use std::alloc::{alloc, dealloc, Layout};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::SeqCst};

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

mod common;

const HIDE: usize = 0x5a5a_5a5a_5a5a_5a5a;
/// `H'`, kept reachable.
static KEPT: AtomicPtr<usize> = AtomicPtr::new(std::ptr::null_mut());
/// `L`'s address, hidden from the scan.
static LEAK_AT: AtomicUsize = AtomicUsize::new(0);

fn holder() -> Layout {
    Layout::from_size_align(96, 8).unwrap()
}

fn leaked() -> Layout {
    Layout::from_size_align(200, 8).unwrap()
}

/// Leaves `L`'s address at word 6 of a freed block of `H`'s size, and keeps `H'`.
#[inline(never)]
fn plant_stale_word() {
    // SAFETY: non-zero layouts; each block freed once with its layout; `h` has 12 words.
    unsafe {
        let l = alloc(leaked());
        let h = alloc(holder()).cast::<usize>();
        assert!(!l.is_null() && !h.is_null());
        h.add(6).write(l as usize);
        LEAK_AT.store(l as usize ^ HIDE, SeqCst);
        dealloc(h.cast(), holder());
        dealloc(l, leaked());
        let h2 = alloc(holder()).cast::<usize>();
        assert_eq!(h2, h, "the free list hands the last freed block back first");
        h2.write(1);
        KEPT.store(h2, SeqCst);
    }
}

/// Leaks `L'`, at `L`'s address (in a frame of its own, gone before the check).
#[inline(never)]
fn leak_at_the_stale_address() {
    // SAFETY: a non-zero layout; the block is leaked on purpose.
    let l2 = unsafe { alloc(leaked()) };
    assert_eq!(l2 as usize ^ HIDE, LEAK_AT.load(SeqCst), "the leak reuses L's address");
}

/// Leaks `L'` after planting the stale word; prints what a whole-process check found
/// of it.
#[test]
fn zero_new_child() {
    if std::env::var_os("ZERO_NEW_CHILD").is_none() {
        return;
    }
    alloc_core::config::set_check_at_exit(false);
    if std::env::var_os("SCOPE_FIRST").is_some() {
        let ((), r) = alloc_core::check_scope(|| ());
        assert!(r.is_clean());
    }
    plant_stale_word();
    leak_at_the_stale_address();
    let r = alloc_core::check();
    let found: u64 = r.leaks.iter().filter(|g| g.bytes == 200 * g.blocks).map(|g| g.blocks).sum();
    let kept = KEPT.load(SeqCst);
    // SAFETY: `H'` is live (kept above) and 12 words long.
    let stale = unsafe { kept.add(6).read() } ^ HIDE == LEAK_AT.load(SeqCst);
    println!("leaked_blocks={found} stale_word_kept={stale}");
}

/// A scope's blocks never take a freed block's address: the leak made inside a scope
/// right after the stale word was planted lies elsewhere, and is found.
#[test]
fn a_scope_leak_does_not_reuse_the_stale_address_child() {
    if std::env::var_os("ZERO_NEW_CHILD").is_none() {
        return;
    }
    alloc_core::config::set_check_at_exit(false);
    plant_stale_word();
    let ((), r) = alloc_core::check_scope(|| {
        // SAFETY: a non-zero layout; the block is leaked on purpose.
        let l2 = unsafe { alloc(leaked()) };
        assert_ne!(l2 as usize ^ HIDE, LEAK_AT.load(SeqCst), "a scope's block at a freed block's address");
    });
    let kept = KEPT.load(SeqCst);
    // SAFETY: `H'` is live (kept above) and 12 words long.
    let stale = unsafe { kept.add(6).read() } ^ HIDE == LEAK_AT.load(SeqCst);
    println!("leaked_blocks={} stale_word_kept={stale}", r.summary.leaked_blocks);
}

/// As [`zero_new_child`] with the scope first, but the stale word and the leak are
/// another thread's, a thread whose heap was made before the scope opened: that heap is
/// told too.
#[test]
fn zero_new_other_thread_child() {
    if std::env::var_os("ZERO_NEW_CHILD").is_none() {
        return;
    }
    alloc_core::config::set_check_at_exit(false);
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        // This thread's heap, made before the scope opens.
        std::hint::black_box(Box::new(1u64));
        wait.recv().unwrap();
        plant_stale_word();
        leak_at_the_stale_address();
    });
    let ((), r) = alloc_core::check_scope(|| ());
    assert!(r.is_clean());
    go.send(()).unwrap();
    // Ended before the check: no word of its frames (the leak's address among them) is
    // left on a live stack.
    other.join().unwrap();
    let r = alloc_core::check();
    let found: u64 = r.leaks.iter().filter(|g| g.bytes == 200 * g.blocks).map(|g| g.blocks).sum();
    let kept = KEPT.load(SeqCst);
    // SAFETY: `H'` is live (kept by the other thread's plant) and 12 words long.
    let stale = unsafe { kept.add(6).read() } ^ HIDE == LEAK_AT.load(SeqCst);
    println!("leaked_blocks={found} stale_word_kept={stale}");
}

fn run(zero_new: &str, scope_first: bool) -> String {
    run_entry("zero_new_child", zero_new, scope_first)
}

fn run_entry(entry: &str, zero_new: &str, scope_first: bool) -> String {
    let mut env = vec![("ZERO_NEW_CHILD", "1"), ("HEAPSWEEP", zero_new)];
    if scope_first {
        env.push(("SCOPE_FIRST", "1"));
    }
    let out = common::run_child(entry, &env);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{zero_new}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn with_new_blocks_zeroed_a_stale_word_does_not_hide_a_leak() {
    let stdout = run("zero_new=1", false);
    assert!(stdout.contains("leaked_blocks=1 stale_word_kept=false"), "{stdout}");
}

#[test]
fn by_default_blocks_are_zeroed_once_a_scope_has_opened() {
    let stdout = run("", true);
    assert!(stdout.contains("leaked_blocks=1 stale_word_kept=false"), "{stdout}");
}

#[test]
fn by_default_a_stale_word_left_before_the_first_scope_still_hides_a_leak() {
    // The limit of `scopes`, shown happening: blocks allocated before it took effect keep
    // what the memory held.
    let stdout = run("", false);
    assert!(stdout.contains("leaked_blocks=0 stale_word_kept=true"), "{stdout}");
}

#[test]
fn without_zeroing_the_stale_word_hides_the_leak() {
    let stdout = run("zero_new=0", true);
    assert!(stdout.contains("leaked_blocks=0 stale_word_kept=true"), "{stdout}");
}

#[test]
fn a_scope_finds_its_leak_even_without_zeroing() {
    let stdout = run_entry("a_scope_leak_does_not_reuse_the_stale_address_child", "zero_new=0", false);
    assert!(stdout.contains("leaked_blocks=1 stale_word_kept=true"), "{stdout}");
}

#[test]
fn without_stacks_blocks_are_zeroed_once_a_scope_has_opened_on_every_thread() {
    // No stacks: allocations take the plain path, which each heap lets go once told.
    let stdout = run("stack_depth=0", true);
    assert!(stdout.contains("leaked_blocks=1 stale_word_kept=false"), "{stdout}");
    let stdout = run_entry("zero_new_other_thread_child", "stack_depth=0", false);
    assert!(stdout.contains("leaked_blocks=1 stale_word_kept=false"), "{stdout}");
    let stdout = run_entry("zero_new_other_thread_child", "", false);
    assert!(stdout.contains("leaked_blocks=1 stale_word_kept=false"), "{stdout}");
}
