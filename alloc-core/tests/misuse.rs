//! Misuse the allocator can detect ends the process with a message naming the address
//! and the block's allocation site: each case runs in a child process (this same test
//! binary, re-run with `HEAPSWEEP_MISUSE_CASE` set).

use std::alloc::{GlobalAlloc, Layout};
mod common;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn allocate_victim() -> *mut u8 {
    // SAFETY: non-zero size; the write (not in tail position) keeps this frame on the
    // stack during the allocation, so it shows in the allocation site.
    unsafe {
        let p = GLOBAL.alloc(Layout::from_size_align(40, 8).unwrap());
        p.write(1);
        p
    }
}

fn run_case(case: &str) {
    let layout = Layout::from_size_align(40, 8).unwrap();
    let p = allocate_victim();
    // SAFETY: each case misuses the allocator on purpose; the allocator must detect it
    // and abort before any harm.
    unsafe {
        match case {
            "double_free" => {
                GLOBAL.dealloc(p, layout);
                GLOBAL.dealloc(p, layout);
            }
            "double_free_remote" => {
                let addr = p as usize;
                std::thread::spawn(move || GLOBAL.dealloc(addr as *mut u8, layout)).join().unwrap();
                std::thread::spawn(move || GLOBAL.dealloc(addr as *mut u8, layout)).join().unwrap();
                // The owner finds the block twice on the page's list when it collects.
                for _ in 0..100_000 {
                    let q = GLOBAL.alloc(layout);
                    std::hint::black_box(q);
                }
            }
            "abandoned_freed_by_a_thread_without_a_heap" => {
                // A thread that ended with its block live: the block's page is abandoned.
                let addr = std::thread::spawn(|| allocate_victim() as usize).join().unwrap();
                // A thread of no heap of its own (a raw thread that never allocates) frees
                // it: its heap slot and the page's owner must not be taken for each other.
                extern "C" fn free_it(arg: *mut libc::c_void) -> *mut libc::c_void {
                    // SAFETY: `arg` is a live 40-byte block of this allocator, given up here.
                    unsafe { GLOBAL.dealloc(arg.cast(), Layout::from_size_align(40, 8).unwrap()) };
                    std::ptr::null_mut()
                }
                let mut thread: libc::pthread_t = 0;
                let made = libc::pthread_create(&mut thread, std::ptr::null(), free_it, addr as *mut libc::c_void);
                assert_eq!(made, 0);
                assert_eq!(libc::pthread_join(thread, std::ptr::null_mut()), 0);
                GLOBAL.dealloc(p, layout);
            }
            "interior" => GLOBAL.dealloc(p.add(8), layout),
            "foreign" => {
                let q = std::alloc::System.alloc(layout);
                GLOBAL.dealloc(q, layout);
            }
            _ => {}
        }
    }
    std::process::exit(0);
}

fn child(case: &str) -> (Option<i32>, String) {
    let out = common::run_child("misuse_child_entry", &[("HEAPSWEEP_MISUSE_CASE", case)]);
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn misuse_child_entry() {
    if let Ok(case) = std::env::var("HEAPSWEEP_MISUSE_CASE") {
        run_case(&case);
    }
}

#[test]
fn a_double_free_is_reported_with_the_allocation_site() {
    let (code, err) = child("double_free");
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("double free") && err.contains("free(0x"), "{err}");
    assert!(err.contains("allocate_victim"), "no allocation site: {err}");
}

#[test]
fn a_double_free_from_other_threads_is_caught_when_the_owner_collects() {
    let (code, err) = child("double_free_remote");
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("double free"), "{err}");
}

#[test]
fn a_thread_without_a_heap_frees_a_block_of_an_abandoned_page() {
    let (code, err) = child("abandoned_freed_by_a_thread_without_a_heap");
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn an_interior_pointer_and_a_foreign_pointer_are_rejected() {
    let (code, err) = child("interior");
    assert_ne!(code, Some(0));
    assert!(err.contains("middle of a block") && err.contains("allocate_victim"), "{err}");
    let (code, err) = child("foreign");
    assert_ne!(code, Some(0));
    assert!(err.contains("never handed out"), "{err}");
}
