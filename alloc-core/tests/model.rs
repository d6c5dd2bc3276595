//! Model-based test: random sequences of alloc, realloc, free and free-on-another-thread,
//! checked against a simple model of the live blocks (each block carries a fill pattern
//! that must survive until it is freed, and no two live blocks may overlap).

use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::sync::mpsc;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[derive(Clone, Debug)]
enum Op {
    Alloc { size: usize, align_log: u32, zeroed: bool },
    Realloc { pick: usize, new_size: usize },
    Free { pick: usize },
    FreeRemote { pick: usize },
}

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..=256,
        3 => 257usize..=8192,
        2 => 8193usize..=70_000,
        1 => 70_001usize..=(3 << 20),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (size_strategy(), 0u32..=12, any::<bool>()).prop_map(|(size, align_log, zeroed)| Op::Alloc { size, align_log, zeroed }),
        2 => (any::<usize>(), size_strategy()).prop_map(|(pick, new_size)| Op::Realloc { pick, new_size }),
        2 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        1 => any::<usize>().prop_map(|pick| Op::FreeRemote { pick }),
    ]
}

struct Live {
    layout: Layout,
    seed: u8,
}

fn pattern(p: *mut u8, len: usize, seed: u8) {
    for i in 0..len {
        // SAFETY: the block holds len bytes.
        unsafe { p.add(i).write(seed ^ (i as u8).wrapping_mul(31)) };
    }
}

fn verify(p: *const u8, len: usize, seed: u8) -> bool {
    // SAFETY: the block holds len bytes.
    (0..len).all(|i| unsafe { p.add(i).read() } == seed ^ (i as u8).wrapping_mul(31))
}

/// A thread that frees what it is sent, acknowledging each free.
fn remote_freer() -> (mpsc::Sender<(usize, Layout)>, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel::<(usize, Layout)>();
    let (ack_tx, ack_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (p, layout) in rx {
            // SAFETY: the sender hands over a live block with its layout.
            unsafe { GLOBAL.dealloc(p as *mut u8, layout) };
            ack_tx.send(()).unwrap();
        }
    });
    (tx, ack_rx)
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let (remote, ack) = remote_freer();
    let mut live: BTreeMap<usize, Live> = BTreeMap::new();
    let mut seed = 0u8;
    for op in ops {
        seed = seed.wrapping_add(1);
        match *op {
            Op::Alloc { size, align_log, zeroed } => {
                let layout = Layout::from_size_align(size.max(1), 1 << align_log).unwrap();
                // SAFETY: non-zero size.
                let p = unsafe {
                    if zeroed {
                        GLOBAL.alloc_zeroed(layout)
                    } else {
                        GLOBAL.alloc(layout)
                    }
                };
                prop_assert!(!p.is_null());
                prop_assert_eq!(p as usize % layout.align(), 0);
                if zeroed {
                    // SAFETY: the block holds layout.size() bytes.
                    let bytes = unsafe { std::slice::from_raw_parts(p, layout.size()) };
                    prop_assert!(bytes.iter().all(|&b| b == 0), "zeroed block is not zero");
                }
                let addr = p as usize;
                if let Some((&prev, l)) = live.range(..=addr).next_back() {
                    prop_assert!(prev + l.layout.size() <= addr, "overlaps the block before");
                }
                if let Some((&next, _)) = live.range(addr..).next() {
                    prop_assert!(addr + layout.size() <= next, "overlaps the block after");
                }
                pattern(p, layout.size(), seed);
                live.insert(addr, Live { layout, seed });
            }
            Op::Realloc { pick, new_size } if !live.is_empty() => {
                let addr = *live.keys().nth(pick % live.len()).unwrap();
                let old = live.remove(&addr).unwrap();
                prop_assert!(verify(addr as *const u8, old.layout.size(), old.seed));
                let new_size = new_size.max(1);
                // SAFETY: live block with its layout; non-zero size.
                let p = unsafe { GLOBAL.realloc(addr as *mut u8, old.layout, new_size) };
                prop_assert!(!p.is_null());
                let kept = old.layout.size().min(new_size);
                prop_assert!(verify(p, kept, old.seed), "realloc lost contents");
                let layout = Layout::from_size_align(new_size, old.layout.align()).unwrap();
                pattern(p, new_size, seed);
                live.insert(p as usize, Live { layout, seed });
            }
            Op::Free { pick } | Op::FreeRemote { pick } if !live.is_empty() => {
                let addr = *live.keys().nth(pick % live.len()).unwrap();
                let l = live.remove(&addr).unwrap();
                prop_assert!(verify(addr as *const u8, l.layout.size(), l.seed), "block corrupted while live");
                prop_assert_eq!(
                    alloc_core::block_info(addr as *const u8).map(|b| b.requested_size),
                    Some(l.layout.size())
                );
                if matches!(op, Op::FreeRemote { .. }) {
                    remote.send((addr, l.layout)).unwrap();
                    ack.recv().unwrap();
                } else {
                    // SAFETY: live block with its layout.
                    unsafe { GLOBAL.dealloc(addr as *mut u8, l.layout) };
                }
            }
            _ => {}
        }
    }
    for (addr, l) in live {
        prop_assert!(verify(addr as *const u8, l.layout.size(), l.seed));
        // SAFETY: live block with its layout.
        unsafe { GLOBAL.dealloc(addr as *mut u8, l.layout) };
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_operation_sequences_match_the_model(ops in proptest::collection::vec(op_strategy(), 1..400)) {
        run(&ops)?;
    }
}
