//! Planning: turning an arbitrary DAG into a tree of sequences, parallel groups and condition
//! dispatches that ASL can express, plus the activation analysis that decides which nodes need
//! a run-time guard.
//!
//! # Strategy (see ARCHITECTURE.md, "Compiling arbitrary DAGs")
//! A set of nodes `S` (always convex: no path leaves and re-enters it) is split recursively:
//! 1. one node → the node;
//! 2. several weakly connected components → `Par` of the components (they are independent);
//! 3. nodes comparable with every other node of `S` ("articulations") → `Seq` of the segments
//!    between them, which keeps every dependency and adds none;
//! 4. otherwise (a non-series-parallel region such as the "N" a→c, a→d, b→d) → `Seq` of the
//!    region's sources and the rest. This is the only step that adds ordering that the graph did
//!    not ask for (c waits for b above): it never drops an edge, it may cost parallelism.
//!
//! Conditions do not make control jump: a node runs when one of its incoming edges is *active*
//! (its source ran and took that port). Nodes whose activation is not implied by where they sit
//! get a guard Choice that checks `$.nodes.<pred>.port`; when every branch of a parallel group is
//! owned by one port of one condition, the group becomes a `Dispatch` (a plain Choice jump).

use crate::graph::{BitSet, Graph};
use std::collections::BTreeSet;

/// A literal: "node `c` took port `p`" (node index, port).
pub(crate) type Lit = (usize, String);

/// Activation of a node in disjunctive normal form over literals. `None` = too large to track
/// (the node then always gets a guard, which is correct, only slower).
pub(crate) type Dnf = Option<BTreeSet<BTreeSet<Lit>>>;

const MAX_TERMS: usize = 32;
const MAX_TERM_LEN: usize = 24;

/// The plan tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    Node(usize),
    Seq(Vec<Block>),
    Par(Vec<Block>),
    /// Branches guarded by ports of one branching node: (port, block) arms.
    Dispatch { cond: usize, arms: Vec<(String, Block)> },
}

pub(crate) struct Planner<'g, 'w> {
    pub g: &'g Graph<'w>,
    pub topo_pos: Vec<usize>,
    pub anc: Vec<BitSet>,
    pub desc: Vec<BitSet>,
    /// Activation formula of each node (filled scope by scope by `analyse`).
    pub act: Vec<Dnf>,
    /// Membership of the scope being planned (nodes outside it have already run).
    pub in_scope: Vec<bool>,
}

impl<'g, 'w> Planner<'g, 'w> {
    pub fn new(g: &'g Graph<'w>) -> Self {
        let n = g.len();
        let topo = g.topo_order();
        let mut topo_pos = vec![0; n];
        for (k, &v) in topo.iter().enumerate() {
            topo_pos[v] = k;
        }
        let anc = g.ancestors(&topo);
        let mut desc = vec![BitSet::new(n); n];
        for &v in topo.iter().rev() {
            let mut acc = BitSet::new(n);
            for w in g.succs(v) {
                acc.union_with(&desc[w]);
                acc.insert(w);
            }
            desc[v] = acc;
        }
        Planner {
            g,
            topo_pos,
            anc,
            desc,
            act: vec![None; n],
            in_scope: vec![false; n],
        }
    }

    /// Computes activation formulas for the nodes of one scope (in topological order).
    /// `in_scope[v]` marks the scope; edges from outside the scope count as always active
    /// (the scope's entry: the for-each whose body this is).
    pub fn analyse(&mut self, scope: &[usize], in_scope: &[bool]) {
        self.in_scope = in_scope.to_vec();
        for &v in scope {
            let mut dnf: Dnf = Some(BTreeSet::new());
            if self.g.inc[v].is_empty() {
                dnf = Some(BTreeSet::from([BTreeSet::new()]));
            }
            for &e in &self.g.inc[v] {
                let edge = &self.g.edges[e];
                let term_set: Dnf = if !in_scope[edge.from] {
                    Some(BTreeSet::from([BTreeSet::new()]))
                } else if self.g.is_branching(edge.from) {
                    self.act[edge.from].as_ref().and_then(|terms| {
                        let lit = (edge.from, edge.port.clone());
                        let out: BTreeSet<BTreeSet<Lit>> = terms
                            .iter()
                            .map(|t| {
                                let mut t = t.clone();
                                t.insert(lit.clone());
                                t
                            })
                            .collect();
                        out.iter().all(|t| t.len() <= MAX_TERM_LEN).then_some(out)
                    })
                } else {
                    self.act[edge.from].clone()
                };
                dnf = match (dnf, term_set) {
                    (Some(mut a), Some(b)) => {
                        a.extend(b);
                        Some(a)
                    }
                    _ => None,
                };
            }
            self.act[v] = dnf.and_then(|d| self.simplify(d));
        }
    }

    /// Applies `T∧(c=p1) ∨ … ∨ T∧(c=pk) = T` (all ports of c covered) and absorption until
    /// nothing changes; gives up (None) when the formula grows past the limits.
    fn simplify(&self, mut d: BTreeSet<BTreeSet<Lit>>) -> Dnf {
        loop {
            // Absorption: drop terms that are supersets of another term.
            let terms: Vec<BTreeSet<Lit>> = d.iter().cloned().collect();
            d = terms
                .iter()
                .filter(|t| !terms.iter().any(|o| o != *t && o.is_subset(t)))
                .cloned()
                .collect();
            if d.len() > MAX_TERMS {
                return None;
            }
            let mut added = None;
            'search: for t in &d {
                for (c, _) in t {
                    let covered = self.g.run_ports(*c).all(|p| {
                        let mut variant = t.clone();
                        variant.retain(|(n, _)| n != c);
                        variant.insert((*c, p.name.clone()));
                        d.iter().any(|o| o.is_subset(&variant))
                    });
                    if covered {
                        let mut reduced = t.clone();
                        reduced.retain(|(n, _)| n != c);
                        if !d.contains(&reduced) {
                            added = Some(reduced);
                            break 'search;
                        }
                    }
                }
            }
            match added {
                Some(t) => {
                    d.insert(t);
                }
                None => return Some(d),
            }
        }
    }

    /// Whether the node's activation is implied by the known literals.
    pub fn implied(&self, v: usize, known: &BTreeSet<Lit>) -> bool {
        self.act[v]
            .as_ref()
            .is_some_and(|terms| terms.iter().any(|t| t.is_subset(known)))
    }

    /// Plans a convex node set (sorted in any order).
    pub fn decompose(&self, nodes: &[usize]) -> Block {
        let mut s = nodes.to_vec();
        s.sort_by_key(|&v| self.topo_pos[v]);
        self.decompose_sorted(&s)
    }

    fn decompose_sorted(&self, s: &[usize]) -> Block {
        if let [v] = s {
            return Block::Node(*v);
        }
        let n = self.g.len();
        let mut mask = BitSet::new(n);
        for &v in s {
            mask.insert(v);
        }
        let comps = self.components(s, &mask);
        if comps.len() > 1 {
            let blocks: Vec<(Block, Vec<usize>)> = comps
                .into_iter()
                .map(|c| (self.decompose_sorted(&c), c))
                .collect();
            return self.parallel(blocks, &mask);
        }
        let totals: Vec<bool> = s
            .iter()
            .map(|&v| self.anc[v].union_count_within(&self.desc[v], &mask) == s.len() - 1)
            .collect();
        let mut seq = Vec::new();
        if totals.iter().any(|&t| t) {
            let mut segment = Vec::new();
            for (k, &v) in s.iter().enumerate() {
                if totals[k] {
                    if !segment.is_empty() {
                        seq.push(self.decompose_sorted(&segment));
                        segment.clear();
                    }
                    seq.push(Block::Node(v));
                } else {
                    segment.push(v);
                }
            }
            if !segment.is_empty() {
                seq.push(self.decompose_sorted(&segment));
            }
        } else {
            let (sources, rest): (Vec<usize>, Vec<usize>) = s
                .iter()
                .partition(|&&v| !self.g.preds(v).any(|p| mask.contains(p)));
            seq.push(self.decompose_sorted(&sources));
            seq.push(self.decompose_sorted(&rest));
        }
        flatten_seq(seq)
    }

    /// Weakly connected components of `s` (each sorted topologically), ordered by first node.
    fn components(&self, s: &[usize], mask: &BitSet) -> Vec<Vec<usize>> {
        let mut parent: std::collections::HashMap<usize, usize> = s.iter().map(|&v| (v, v)).collect();
        fn find(p: &mut std::collections::HashMap<usize, usize>, v: usize) -> usize {
            let mut r = v;
            while p[&r] != r {
                r = p[&r];
            }
            let mut x = v;
            while p[&x] != r {
                let next = p[&x];
                p.insert(x, r);
                x = next;
            }
            r
        }
        for &v in s {
            for w in self.g.succs(v) {
                if mask.contains(w) {
                    let (a, b) = (find(&mut parent, v), find(&mut parent, w));
                    if a != b {
                        parent.insert(a, b);
                    }
                }
            }
        }
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut root_slot: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        for &v in s {
            let r = find(&mut parent, v);
            let slot = *root_slot.entry(r).or_insert_with(|| {
                groups.push((r, Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push(v);
        }
        groups.into_iter().map(|(_, g)| g).collect()
    }

    /// A parallel group, or a dispatch when every branch belongs to one port of one node.
    fn parallel(&self, branches: Vec<(Block, Vec<usize>)>, _mask: &BitSet) -> Block {
        if let Some((cond, ports)) = self.dispatch_owner(&branches) {
            let mut arms: Vec<(String, Vec<Block>)> = Vec::new();
            for ((block, _), port) in branches.into_iter().zip(ports) {
                match arms.iter_mut().find(|(p, _)| *p == port) {
                    Some((_, blocks)) => blocks.push(block),
                    None => arms.push((port, vec![block])),
                }
            }
            // Arms in the node's port order, for stable output.
            let order: Vec<&str> = self.g.ports[cond].iter().map(|p| p.name.as_str()).collect();
            arms.sort_by_key(|(p, _)| order.iter().position(|o| o == p).unwrap_or(usize::MAX));
            let arms = arms
                .into_iter()
                .map(|(p, mut blocks)| {
                    let block = if blocks.len() == 1 {
                        blocks.pop().unwrap_or(Block::Seq(vec![]))
                    } else {
                        Block::Par(blocks)
                    };
                    (p, block)
                })
                .collect();
            return Block::Dispatch { cond, arms };
        }
        Block::Par(branches.into_iter().map(|(b, _)| b).collect())
    }

    /// If every edge entering every branch from outside comes from the same branching node, and
    /// each branch is entered through a single port, that node and the port of each branch.
    fn dispatch_owner(&self, branches: &[(Block, Vec<usize>)]) -> Option<(usize, Vec<String>)> {
        let mut cond: Option<usize> = None;
        let mut ports = Vec::with_capacity(branches.len());
        for (_, nodes) in branches {
            let members: BTreeSet<usize> = nodes.iter().copied().collect();
            let mut port: Option<&str> = None;
            for &v in nodes {
                for &e in &self.g.inc[v] {
                    let edge = &self.g.edges[e];
                    if members.contains(&edge.from) {
                        continue;
                    }
                    if !self.in_scope[edge.from]
                        || !self.g.is_branching(edge.from)
                        || *cond.get_or_insert(edge.from) != edge.from
                    {
                        return None;
                    }
                    if *port.get_or_insert(&edge.port) != edge.port {
                        return None;
                    }
                }
            }
            ports.push(port?.to_owned());
        }
        cond.map(|c| (c, ports))
    }
}

fn flatten_seq(items: Vec<Block>) -> Block {
    let mut out = Vec::with_capacity(items.len());
    for b in items {
        match b {
            Block::Seq(inner) => out.extend(inner),
            other => out.push(other),
        }
    }
    if out.len() == 1 {
        out.pop().unwrap_or(Block::Seq(vec![]))
    } else {
        Block::Seq(out)
    }
}
