//! `check_scope` and `assert_no_leaks` when the scope's work panics, or leaks under
//! `assert_no_leaks`. Apart from the parallel stress tests of `scopes.rs`: a panic fills
//! std's backtrace cache, long-lived blocks whose pointers into files it mapped and later
//! unmapped can, once the kernel reuses those addresses for a new large block, keep that
//! block reachable (the conservative scan's known limit; see README.md).

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

use alloc_core::check_scope;

#[inline(never)]
fn leak_blocks(n: usize, size: usize) {
    for _ in 0..n {
        std::mem::forget(vec![0xa5u8; size]);
    }
}

#[test]
fn a_panic_in_the_scope_ends_it_and_the_next_scope_is_whole() {
    alloc_core::config::set_check_at_exit(false);
    let caught = std::panic::catch_unwind(|| check_scope(|| panic!("inside")));
    assert!(caught.is_err());
    let ((), r) = check_scope(|| leak_blocks(1, 392));
    assert_eq!(r.summary.leaked_blocks, 1);
}

#[test]
fn assert_no_leaks_passes_clean_work_and_panics_with_the_report() {
    alloc_core::config::set_check_at_exit(false);
    assert_eq!(alloc_core::assert_no_leaks(|| (1..=3).map(|i| vec![i; 4].len() as i32).sum::<i32>()), 12);
    let err = std::panic::catch_unwind(|| alloc_core::assert_no_leaks(|| leak_blocks(1, 408))).unwrap_err();
    let text = err.downcast_ref::<String>().unwrap();
    assert!(text.contains("408 byte(s) in 1 object(s)") && text.contains("leak_blocks"), "{text}");
}

#[alloc_core::leak_check]
#[test]
fn the_attribute_passes_a_test_that_frees_what_it_allocates() {
    alloc_core::config::set_check_at_exit(false);
    let v: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(v.len(), 100);
}

#[alloc_core::leak_check]
#[test]
fn the_attribute_keeps_result_tests_and_question_marks() -> Result<(), std::num::ParseIntError> {
    alloc_core::config::set_check_at_exit(false);
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

#[alloc_core::leak_check]
#[test]
#[should_panic(expected = "leaks inside assert_no_leaks")]
fn the_attribute_fails_a_test_that_leaks() {
    alloc_core::config::set_check_at_exit(false);
    leak_blocks(1, 456);
}
