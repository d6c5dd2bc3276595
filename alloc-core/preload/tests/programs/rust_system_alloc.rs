//! Test that a Rust program without a #[global_allocator] (std's System allocator, that is malloc) is checked under LD_PRELOAD: its leaks found, its statics, thread-locals and threads' blocks not.
//!
// EXPECT: leaked_blocks=3 leaked_bytes=96 direct_blocks=1 indirect_blocks=2
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=16 function~=rust_system_alloc::leak_vec
// EXPECT-GROUP: kind=indirect cyclic=false blocks=2 bytes=80 function~=rust_system_alloc::leak_vec::{{closure}}
// EXPECT-EXIT: 23
use std::collections::HashMap;
use std::sync::Mutex;

static CACHE: Mutex<Option<HashMap<u32, String>>> = Mutex::new(None);

thread_local! {
    static LOCAL: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A leaked Vec of two boxed 40-byte arrays: the slice (16 bytes) is direct, the
/// boxes indirect.
#[inline(never)]
fn leak_vec() {
    let v: Vec<Box<[u64; 5]>> = (0..2).map(|i| Box::new([i; 5])).collect();
    std::hint::black_box(Box::leak(v.into_boxed_slice()));
}

#[inline(never)]
fn clear_stack() {
    let mut buf = [0u8; 16384];
    std::hint::black_box(&mut buf);
}

fn main() {
    *CACHE.lock().unwrap() = Some((0..100).map(|i| (i, i.to_string())).collect());
    LOCAL.with(|l| l.borrow_mut().extend(0..100));
    let sum: usize = std::thread::spawn(|| (0..1000).map(|i| vec![i; 10].len()).sum()).join().unwrap();
    println!("{sum}");
    leak_vec();
    clear_stack();
}
