//! The cycle shown for each leaked strongly connected component: its members in order,
//! with the offset of the pointer from each to the next.
//!
//! # What it owns
//! [`trace_cycles`], run by `classify` once components are known, with the world still
//! stopped (it reads the blocks). A component of several blocks may hold many cycles;
//! the one shown is a shortest cycle through its first block (lowest id), found by a
//! breadth-first search inside the component, of at least two blocks. A block alone in
//! its component that points to itself is a cycle of one. Blocks of a component off the
//! shown cycle keep `cycle_next == NONE`: the report counts them with the component.

use super::classify::{Graph, NONE};
use super::view::BlockDesc;
use crate::os::MmapVec;

/// Fills `cycle_next` and `next_offset` of the blocks on each component's shown cycle.
/// `comp[v]` is node `v`'s component and `size[c]` the size of component `c`. Returns
/// false when out of memory (the blocks then stay without order).
pub(super) fn trace_cycles(g: &mut Graph, comp: &[u32], size: &[u32]) -> bool {
    let n = g.nodes.len();
    for v in 0..n {
        if size[comp[v] as usize] == 1 && g.self_loop[v] {
            let d = g.nodes[v].desc;
            g.nodes[v].cycle_next = v as u32;
            g.nodes[v].next_offset = offset_to(&d, &d);
        }
    }
    let (mut parent, mut queue, mut done) = (MmapVec::new(), MmapVec::new(), MmapVec::new());
    if !(parent.resize(n, NONE) && queue.reserve(n) && done.resize(size.len(), false)) {
        return false;
    }
    for v0 in 0..n as u32 {
        let c = comp[v0 as usize];
        if size[c as usize] < 2 || done[c as usize] {
            continue;
        }
        done[c as usize] = true;
        let last = shortest_cycle(g, comp, v0, &mut parent, &mut queue);
        link_cycle(g, &parent, v0, last);
    }
    true
}

/// Breadth-first from `v0` inside its component until an edge leads back to `v0`; returns
/// the node of that edge (the cycle's last member). `parent[w]` is set to the node `w`
/// was reached from. A component of two or more blocks always has such an edge.
fn shortest_cycle(g: &Graph, comp: &[u32], v0: u32, parent: &mut MmapVec<u32>, queue: &mut MmapVec<u32>) -> u32 {
    let c = comp[v0 as usize];
    queue.clear();
    parent[v0 as usize] = v0;
    queue.push(v0); // cannot fail: `n` entries are reserved and each node is queued once
    let mut head = 0;
    while head < queue.len() {
        let u = queue[head];
        head += 1;
        for &w in &g.targets[g.offsets[u as usize] as usize..g.offsets[u as usize + 1] as usize] {
            if comp[w as usize] != c || (w == v0 && u == v0) {
                continue;
            }
            if w == v0 {
                return u;
            }
            if parent[w as usize] == NONE {
                parent[w as usize] = u;
                queue.push(w);
            }
        }
    }
    debug_assert!(false, "a component of two or more blocks has a cycle through each member");
    v0
}

/// Sets `cycle_next` along `v0 → ... → last → v0`, and each member's offset of the
/// pointer to its next.
fn link_cycle(g: &mut Graph, parent: &[u32], v0: u32, last: u32) {
    let mut x = last;
    g.nodes[last as usize].cycle_next = v0;
    while x != v0 {
        let p = parent[x as usize];
        g.nodes[p as usize].cycle_next = x;
        x = p;
    }
    let mut x = v0;
    loop {
        let next = g.nodes[x as usize].cycle_next;
        let (from, to) = (g.nodes[x as usize].desc, g.nodes[next as usize].desc);
        g.nodes[x as usize].next_offset = offset_to(&from, &to);
        x = next;
        if x == v0 {
            break;
        }
    }
}

/// The offset in `from` of the first word pointing into `to` (0 if none, which the graph
/// the cycle was found in rules out).
fn offset_to(from: &BlockDesc, to: &BlockDesc) -> u32 {
    let mut p = from.start;
    while p + 8 <= from.scan_end() {
        // SAFETY: inside a live leaked block's requested bytes, 8-byte aligned; the world
        // is stopped and nobody frees a leaked block.
        let word = unsafe { core::ptr::read_volatile(p as *const usize) };
        if to.start <= word && word < to.start + to.usable {
            return (p - from.start) as u32;
        }
        p += 8;
    }
    debug_assert!(false, "an edge of the leaked graph has a word behind it");
    0
}

#[cfg(test)]
mod tests {
    use super::super::classify::LeakedBlock;
    use super::super::fake::FakeHeap;
    use super::NONE;

    /// The shown cycle from the first member, as (block id, offset) pairs.
    fn shown_cycle(leaked: &[LeakedBlock], first: u32) -> Vec<(u32, u32)> {
        let index = |id: u32| leaked.iter().position(|l| l.id == id).unwrap();
        let mut out = Vec::new();
        let mut i = index(first);
        loop {
            out.push((leaked[i].id, leaked[i].next_offset));
            i = leaked[i].cycle_next as usize;
            if leaked[i].id == first {
                return out;
            }
            assert!(out.len() <= leaked.len(), "the cycle closes");
        }
    }

    #[test]
    fn a_ring_is_shown_in_order_with_offsets() {
        let mut h = FakeHeap::new();
        let ids: Vec<u32> = (0..5).map(|_| h.add(4)).collect();
        for (i, &id) in ids.iter().enumerate() {
            h.link(id, i % 4, ids[(i + 1) % 5], 0);
        }
        let leaked = h.run(&[]);
        assert!(leaked.iter().all(|l| l.cyclic && l.component_blocks == 5));
        assert_eq!(shown_cycle(&leaked, ids[0]), vec![(0, 0), (1, 8), (2, 16), (3, 24), (4, 0)]);
    }

    #[test]
    fn the_shortest_cycle_through_the_first_block_is_shown() {
        // 0 → 1 → 2 → 0 and 0 → 3 → 0: the shown cycle is 0 → 3 → 0; 1 and 2 are off it.
        let mut h = FakeHeap::new();
        let [a, b, c, d] = [0; 4].map(|_| h.add(3));
        h.link(a, 0, b, 0);
        h.link(b, 0, c, 0);
        h.link(c, 0, a, 0);
        h.link(a, 2, d, 8);
        h.link(d, 1, a, 0);
        let leaked = h.run(&[]);
        assert_eq!(shown_cycle(&leaked, a), vec![(a, 16), (d, 8)]);
        for off in [b, c] {
            let l = leaked.iter().find(|l| l.id == off).unwrap();
            assert!(l.cyclic && l.cycle_next == NONE && l.component_blocks == 4);
        }
    }

    #[test]
    fn a_self_pointer_is_a_cycle_of_one_and_a_list_is_none() {
        let mut h = FakeHeap::new();
        let [s, x, y] = [0; 3].map(|_| h.add(3));
        h.link(s, 2, s, 0);
        h.link(x, 0, y, 0);
        let leaked = h.run(&[]);
        let me = leaked.iter().find(|l| l.id == s).unwrap();
        assert!(me.cyclic && me.component_blocks == 1);
        assert_eq!(shown_cycle(&leaked, s), vec![(s, 16)]);
        assert!(leaked.iter().filter(|l| l.id != s).all(|l| l.cycle_next == NONE && !l.cyclic));
    }

    #[test]
    fn a_pair_inside_a_bigger_component_is_not_a_self_loop() {
        // 0 ⇄ 1, and 0 also points to itself: the shown cycle has both blocks.
        let mut h = FakeHeap::new();
        let [a, b] = [0; 2].map(|_| h.add(2));
        h.link(a, 0, a, 0);
        h.link(a, 1, b, 0);
        h.link(b, 0, a, 0);
        let leaked = h.run(&[]);
        assert_eq!(shown_cycle(&leaked, a), vec![(a, 8), (b, 0)]);
        assert!(leaked.iter().all(|l| l.cyclic && l.component_blocks == 2));
    }
}
