//! Classification of the leaked blocks: direct or indirect, cyclic or not.
//!
//! # Definitions (CONTRACT.md)
//! On the subgraph of leaked blocks (edges: a word of one leaked block points into
//! another), compute the strongly connected components. A block in a component that no
//! other component points to is *direct*; every other leaked block is *indirect*. A block
//! in a component of more than one block, or with an edge to itself, is *cyclic*. So a
//! pure cycle has direct blocks (its members), and a list has one direct head.
//!
//! # Algorithm
//! Edges in CSR arrays, then Tarjan's algorithm made iterative with an explicit stack
//! of `(node, next edge)` frames: no recursion, so a million-block chain cannot overflow
//! the thread's stack. Everything lives in `MmapVec`s.

use super::view::{BlockDesc, HeapView};
use crate::os::MmapVec;

/// Direct or indirect (see the module note).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeakKind {
    Direct,
    Indirect,
}

/// One leaked block and its classification.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeakedBlock {
    /// The block's id in the check's numbering.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) id: u32,
    pub(crate) desc: BlockDesc,
    pub(crate) kind: LeakKind,
    pub(crate) cyclic: bool,
}

const NONE: u32 = u32::MAX;

/// The leaked subgraph in compressed sparse rows.
struct Graph {
    nodes: MmapVec<LeakedBlock>,
    offsets: MmapVec<u32>,
    targets: MmapVec<u32>,
    self_loop: MmapVec<bool>,
}

fn build_graph(view: &impl HeapView, is_leaked: &dyn Fn(u32, &BlockDesc) -> bool) -> Graph {
    let mut nodes = MmapVec::new();
    let mut index = MmapVec::new();
    index.resize(view.block_slots(), NONE);
    view.for_each_block(&mut |id, desc| {
        if is_leaked(id, &desc) {
            index[id as usize] = nodes.len() as u32;
            nodes.push(LeakedBlock { id, desc, kind: LeakKind::Direct, cyclic: false });
        }
    });
    let (mut offsets, mut targets, mut self_loop) = (MmapVec::new(), MmapVec::new(), MmapVec::new());
    for (i, n) in nodes.iter().enumerate() {
        offsets.push(targets.len() as u32);
        let mut looped = false;
        let mut p = n.desc.start;
        while p + 8 <= n.desc.start + n.desc.usable {
            // SAFETY: inside a live block's scannable bytes, aligned.
            let word = unsafe { core::ptr::read_volatile(p as *const usize) };
            if let Some((tid, _)) = view.block_containing(word) {
                let t = index[tid as usize];
                if t != NONE {
                    looped |= t == i as u32;
                    targets.push(t);
                }
            }
            p += 8;
        }
        self_loop.push(looped);
    }
    offsets.push(targets.len() as u32);
    Graph { nodes, offsets, targets, self_loop }
}

/// Strongly connected components: `comp[v]` for each node, iteratively.
fn tarjan(g: &Graph) -> MmapVec<u32> {
    let n = g.nodes.len();
    let (mut order, mut low, mut comp) = (MmapVec::new(), MmapVec::new(), MmapVec::new());
    order.resize(n, NONE);
    low.resize(n, 0u32);
    comp.resize(n, NONE);
    let mut on_stack = MmapVec::new();
    on_stack.resize(n, false);
    let mut stack: MmapVec<u32> = MmapVec::new();
    let mut calls: MmapVec<(u32, u32)> = MmapVec::new();
    let (mut next_order, mut next_comp) = (0u32, 0u32);
    for root in 0..n as u32 {
        if order[root as usize] != NONE {
            continue;
        }
        calls.push((root, g.offsets[root as usize]));
        order[root as usize] = next_order;
        low[root as usize] = next_order;
        next_order += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&(v, e)) = calls.as_slice().last() {
            let vi = v as usize;
            if e < g.offsets[vi + 1] {
                let top = calls.len() - 1;
                calls[top].1 = e + 1;
                let w = g.targets[e as usize];
                let wi = w as usize;
                if order[wi] == NONE {
                    order[wi] = next_order;
                    low[wi] = next_order;
                    next_order += 1;
                    stack.push(w);
                    on_stack[wi] = true;
                    calls.push((w, g.offsets[wi]));
                } else if on_stack[wi] {
                    low[vi] = low[vi].min(order[wi]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.as_slice().last() {
                low[parent as usize] = low[parent as usize].min(low[vi]);
            }
            if low[vi] == order[vi] {
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    comp[w as usize] = next_comp;
                    if w == v {
                        break;
                    }
                }
                next_comp += 1;
            }
        }
    }
    comp
}

/// Classifies every block `is_leaked` selects. Returns them with their kind and cycle flag.
pub(crate) fn classify(view: &impl HeapView, is_leaked: &dyn Fn(u32, &BlockDesc) -> bool) -> MmapVec<LeakedBlock> {
    let mut g = build_graph(view, is_leaked);
    let comp = tarjan(&g);
    let comps = comp.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let (mut size, mut pointed_to) = (MmapVec::new(), MmapVec::new());
    size.resize(comps, 0u32);
    pointed_to.resize(comps, false);
    for v in 0..g.nodes.len() {
        size[comp[v] as usize] += 1;
        for e in g.offsets[v]..g.offsets[v + 1] {
            let w = g.targets[e as usize] as usize;
            if comp[w] != comp[v] {
                pointed_to[comp[w] as usize] = true;
            }
        }
    }
    for v in 0..g.nodes.len() {
        let c = comp[v] as usize;
        g.nodes[v].kind = if pointed_to[c] { LeakKind::Indirect } else { LeakKind::Direct };
        g.nodes[v].cyclic = size[c] > 1 || g.self_loop[v];
    }
    g.nodes
}
