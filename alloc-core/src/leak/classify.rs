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
//!
//! # Who calls it
//! `leak::analyze`, with the world stopped, once marking is done.

use super::failure::Failure;
use super::view::{BlockDesc, HeapView, Walk};
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
    /// The block's place on the one cycle shown for its component (see `cycles`): the
    /// node index of the next member and the offset in this block of the word pointing
    /// into it; `NONE` when the block is on no shown cycle.
    pub(crate) cycle_next: u32,
    pub(crate) next_offset: u32,
    /// How many blocks the block's strongly connected component holds (1 for a block on
    /// a cycle only through a pointer to itself).
    pub(crate) component_blocks: u32,
}

impl LeakedBlock {
    fn new(id: u32, desc: BlockDesc) -> Self {
        let (cycle_next, next_offset, component_blocks) = (NONE, 0, 1);
        LeakedBlock { id, desc, kind: LeakKind::Direct, cyclic: false, cycle_next, next_offset, component_blocks }
    }
}

/// No node: no next member, or not visited yet.
pub(crate) const NONE: u32 = u32::MAX;

/// The leaked subgraph in compressed sparse rows: the edges of node `v` (an index into
/// `nodes`) are `targets[offsets[v]..offsets[v + 1]]`; `self_loop[v]` says one of them is
/// `v` itself.
pub(super) struct Graph {
    pub(super) nodes: MmapVec<LeakedBlock>,
    pub(super) offsets: MmapVec<u32>,
    pub(super) targets: MmapVec<u32>,
    pub(super) self_loop: MmapVec<bool>,
}

/// Where a leaked block's node is, by block id: a table over every id when the walk
/// visits every block (`0` if not leaked, else the node's index plus one: a fresh zeroed
/// mapping, whose pages cost nothing until a leaked block's id lands in them), else a
/// binary search of the nodes, which are in id order: a young sweep's few leaked blocks
/// need no table the size of the heap.
enum NodeIndex {
    Table(MmapVec<u32>),
    Search,
}

impl NodeIndex {
    /// The node of block `id`, if it is leaked.
    #[inline]
    fn node(&self, nodes: &[LeakedBlock], id: u32) -> Option<u32> {
        match self {
            NodeIndex::Table(t) => t[id as usize].checked_sub(1),
            NodeIndex::Search => nodes.binary_search_by_key(&id, |n| n.id).ok().map(|n| n as u32),
        }
    }
}

/// The leaked blocks, listed as a walk over the heap finds them (in increasing id
/// order): the first half of a classification, which a caller walking the heap for
/// reasons of its own feeds in the same walk (the check also promotes and counts).
pub(crate) struct LeakedList {
    nodes: MmapVec<LeakedBlock>,
    index: NodeIndex,
    /// False once out of memory.
    ok: bool,
}

impl LeakedList {
    /// An empty list for the blocks of `walk`.
    pub(crate) fn new(view: &impl HeapView, walk: Walk) -> Self {
        let (index, ok) = match walk {
            Walk::All => match MmapVec::zeroed(view.block_slots()) {
                Some(t) => (NodeIndex::Table(t), true),
                None => (NodeIndex::Search, false),
            },
            Walk::Young => (NodeIndex::Search, true),
        };
        LeakedList { nodes: MmapVec::new(), index, ok }
    }

    /// Adds block `id`, which must come after every block added before.
    #[inline]
    pub(crate) fn add(&mut self, id: u32, desc: BlockDesc) {
        if !self.ok {
            return;
        }
        debug_assert!(self.nodes.as_slice().last().is_none_or(|n: &LeakedBlock| n.id < id), "ids ascend");
        if let NodeIndex::Table(t) = &mut self.index {
            t[id as usize] = self.nodes.len() as u32 + 1;
        }
        self.ok &= self.nodes.push(LeakedBlock::new(id, desc));
    }
}

/// The leaked blocks among those of `walk`.
#[cfg(test)]
fn number_leaked(view: &impl HeapView, walk: Walk, is_leaked: &dyn Fn(u32, &BlockDesc) -> bool) -> LeakedList {
    let mut list = LeakedList::new(view, walk);
    view.walk(walk, &mut |id, desc| {
        if is_leaked(id, &desc) {
            list.add(id, desc);
        }
    });
    list
}

/// Scans each leaked block for pointers into other leaked blocks. On out of memory,
/// returns the nodes alone (all direct, none cyclic).
fn build_graph(
    view: &impl HeapView,
    nodes: MmapVec<LeakedBlock>,
    index: &NodeIndex,
) -> Result<Graph, MmapVec<LeakedBlock>> {
    let (mut offsets, mut targets, mut self_loop) = (MmapVec::new(), MmapVec::new(), MmapVec::new());
    let mut ok = offsets.reserve(nodes.len() + 1) && self_loop.reserve(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        ok &= offsets.push(targets.len() as u32);
        let mut looped = false;
        let mut p = n.desc.start;
        while ok && p + 8 <= n.desc.scan_end() {
            // SAFETY: inside a live block's requested bytes (`scan_end`), aligned.
            let word = unsafe { core::ptr::read_volatile(p as *const usize) };
            if let Some((tid, _)) = view.block_containing(word) {
                if let Some(t) = index.node(&nodes, tid) {
                    looped |= t == i as u32;
                    ok &= targets.push(t);
                }
            }
            p += 8;
        }
        ok &= self_loop.push(looped);
    }
    ok &= offsets.push(targets.len() as u32) && targets.len() <= u32::MAX as usize;
    if ok {
        Ok(Graph { nodes, offsets, targets, self_loop })
    } else {
        Err(nodes)
    }
}

/// Tarjan's state. `order[v]` is `NONE` until `v` is visited; `stack` holds visited nodes
/// whose component is not known yet (`on_stack`); `calls` replaces the recursion: one
/// `(node, next edge to follow)` frame per active call. Both hold at most `n` entries and
/// are reserved up front, so pushing never fails.
struct Tarjan<'g> {
    g: &'g Graph,
    order: MmapVec<u32>,
    low: MmapVec<u32>,
    comp: MmapVec<u32>,
    on_stack: MmapVec<bool>,
    stack: MmapVec<u32>,
    calls: MmapVec<(u32, u32)>,
    next_order: u32,
    next_comp: u32,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: u32) {
        let vi = v as usize;
        (self.order[vi], self.low[vi]) = (self.next_order, self.next_order);
        self.next_order += 1;
        self.stack.push(v);
        self.on_stack[vi] = true;
        self.calls.push((v, self.g.offsets[vi]));
    }

    /// Runs the depth-first search from `root` to its end.
    fn search(&mut self, root: u32) {
        self.visit(root);
        while let Some(&(v, e)) = self.calls.as_slice().last() {
            let vi = v as usize;
            if e < self.g.offsets[vi + 1] {
                let top = self.calls.len() - 1;
                self.calls[top].1 = e + 1;
                let w = self.g.targets[e as usize];
                if self.order[w as usize] == NONE {
                    self.visit(w);
                } else if self.on_stack[w as usize] {
                    self.low[vi] = self.low[vi].min(self.order[w as usize]);
                }
            } else {
                self.finish(v);
            }
        }
    }

    /// Returns from `v`'s call: passes its low link up, and pops its component if `v`
    /// is the component's root.
    fn finish(&mut self, v: u32) {
        let vi = v as usize;
        self.calls.pop();
        if let Some(&(parent, _)) = self.calls.as_slice().last() {
            self.low[parent as usize] = self.low[parent as usize].min(self.low[vi]);
        }
        if self.low[vi] == self.order[vi] {
            while let Some(w) = self.stack.pop() {
                self.on_stack[w as usize] = false;
                self.comp[w as usize] = self.next_comp;
                if w == v {
                    break;
                }
            }
            self.next_comp += 1;
        }
    }
}

/// Strongly connected components: `comp[v]` for each node, numbered in reverse
/// topological order of the condensation. `None` when out of memory.
fn tarjan(g: &Graph) -> Option<MmapVec<u32>> {
    let n = g.nodes.len();
    let mut t = Tarjan {
        g,
        order: MmapVec::new(),
        low: MmapVec::new(),
        comp: MmapVec::new(),
        on_stack: MmapVec::new(),
        stack: MmapVec::new(),
        calls: MmapVec::new(),
        next_order: 0,
        next_comp: 0,
    };
    let ok = t.order.resize(n, NONE)
        && t.low.resize(n, 0)
        && t.comp.resize(n, NONE)
        && t.on_stack.resize(n, false)
        && t.stack.reserve(n)
        && t.calls.reserve(n);
    if !ok {
        return None;
    }
    for root in 0..n as u32 {
        if t.order[root as usize] == NONE {
            t.search(root);
        }
    }
    debug_assert!(t.comp.iter().all(|&c| c != NONE));
    Some(t.comp)
}

/// [`classify_listed`] for every block of `walk` that `is_leaked` selects (for tests:
/// the check and the sweeps list the blocks in a walk that does more).
#[cfg(test)]
pub(crate) fn classify(
    view: &impl HeapView,
    walk: Walk,
    is_leaked: &dyn Fn(u32, &BlockDesc) -> bool,
) -> Result<MmapVec<LeakedBlock>, Failure> {
    classify_listed(view, number_leaked(view, walk, is_leaked))
}

/// Classifies the blocks the caller listed. Returns them with their kind and cycle flag,
/// in increasing id order. Out of memory for the graph, every leaked block is returned as
/// direct and not cyclic (with a warning: the leaks are all there, their kinds are not);
/// with no memory even to list them, the check fails.
pub(crate) fn classify_listed(view: &impl HeapView, list: LeakedList) -> Result<MmapVec<LeakedBlock>, Failure> {
    let LeakedList { nodes, index, ok } = list;
    if !ok {
        return Err(Failure::OutOfMemory { what: "the list of leaked blocks" });
    }
    let mut g = match build_graph(view, nodes, &index) {
        Ok(g) => g,
        Err(nodes) => {
            warning!("out of memory classifying the leaked blocks; all reported as direct");
            return Ok(nodes);
        }
    };
    let Some(comp) = tarjan(&g) else {
        warning!("out of memory classifying the leaked blocks; all reported as direct");
        return Ok(g.nodes);
    };
    let comps = comp.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let (mut size, mut pointed_to) = (MmapVec::new(), MmapVec::new());
    if !size.resize(comps, 0u32) || !pointed_to.resize(comps, false) {
        warning!("out of memory classifying the leaked blocks; all reported as direct");
        return Ok(g.nodes);
    }
    for v in 0..g.nodes.len() {
        size[comp[v] as usize] += 1;
        for &w in &g.targets[g.offsets[v] as usize..g.offsets[v + 1] as usize] {
            if comp[w as usize] != comp[v] {
                pointed_to[comp[w as usize] as usize] = true;
            }
        }
    }
    for v in 0..g.nodes.len() {
        let c = comp[v] as usize;
        g.nodes[v].kind = if pointed_to[c] { LeakKind::Indirect } else { LeakKind::Direct };
        g.nodes[v].cyclic = size[c] > 1 || g.self_loop[v];
        g.nodes[v].component_blocks = size[c];
    }
    if !super::cycles::trace_cycles(&mut g, &comp, &size) {
        warning!("out of memory ordering the leaked cycles; their members are listed without order");
    }
    Ok(g.nodes)
}
