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

/// A known fact where code is placed: "node `c` took one of these ports".
pub(crate) type Fact = (usize, Vec<String>);

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
    /// Branches entered only through ports of one branching node: (ports, block) arms, the
    /// port sets disjoint.
    Dispatch {
        cond: usize,
        arms: Vec<(Vec<String>, Block)>,
    },
}

impl Block {
    /// Ids of the nodes this block runs (loop bodies stay inside their for-each).
    pub fn node_ids(&self, g: &Graph<'_>) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(g, &mut out);
        out
    }

    fn collect(&self, g: &Graph<'_>, out: &mut Vec<String>) {
        match self {
            Block::Node(v) => out.push(g.id(*v).to_owned()),
            Block::Seq(items) | Block::Par(items) => items.iter().for_each(|b| b.collect(g, out)),
            Block::Dispatch { arms, .. } => arms.iter().for_each(|(_, b)| b.collect(g, out)),
        }
    }
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

    /// Whether the node's activation is implied by what is known where it is placed: each fact
    /// says "node `c` took one of these ports".
    pub fn implied(&self, v: usize, facts: &[Fact]) -> bool {
        let Some(terms) = self.act[v].as_ref() else {
            return false;
        };
        // Every combination of the facts' alternatives must satisfy some term.
        let combos: usize = facts.iter().map(|(_, ports)| ports.len().max(1)).product();
        if combos > 256 {
            return false;
        }
        (0..combos).all(|mut k| {
            let mut lits: BTreeSet<Lit> = BTreeSet::new();
            for (c, ports) in facts {
                lits.insert((*c, ports[k % ports.len()].clone()));
                k /= ports.len();
            }
            terms.iter().any(|t| t.is_subset(&lits))
        })
    }

    /// Whether, whenever `v` runs, `u` has run before it (u in the same scope, upstream).
    pub fn always_before(&self, u: usize, v: usize) -> Option<bool> {
        let tv = self.act[v].as_ref()?;
        let tu = self.act[u].as_ref()?;
        Some(tv.iter().all(|t| tu.iter().any(|o| o.is_subset(t))))
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
            return self.parallel(blocks);
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
        // Union-find over positions in `s`; `local` maps a node to its position.
        let mut local = vec![u32::MAX; self.g.len()];
        for (k, &v) in s.iter().enumerate() {
            local[v] = k as u32;
        }
        let mut parent: Vec<u32> = (0..s.len() as u32).collect();
        fn find(p: &mut [u32], mut x: u32) -> u32 {
            while p[x as usize] != x {
                let up = p[p[x as usize] as usize];
                p[x as usize] = up;
                x = up;
            }
            x
        }
        for (k, &v) in s.iter().enumerate() {
            for w in self.g.succs(v) {
                if mask.contains(w) {
                    let (a, b) = (find(&mut parent, k as u32), find(&mut parent, local[w]));
                    if a != b {
                        parent[a.max(b) as usize] = a.min(b);
                    }
                }
            }
        }
        let mut slot_of_root = vec![u32::MAX; s.len()];
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (k, &v) in s.iter().enumerate() {
            let r = find(&mut parent, k as u32) as usize;
            if slot_of_root[r] == u32::MAX {
                slot_of_root[r] = groups.len() as u32;
                groups.push(Vec::new());
            }
            groups[slot_of_root[r] as usize].push(v);
        }
        groups
    }

    /// A parallel group, or a dispatch when the branches are entered only through ports of one
    /// node (branches sharing a port run together, as a parallel group inside their arm).
    fn parallel(&self, branches: Vec<(Block, Vec<usize>)>) -> Block {
        if let Some((cond, port_sets)) = self.dispatch_owner(&branches) {
            // Group branches whose port sets overlap.
            let mut arms: Vec<(BTreeSet<String>, Vec<Block>)> = Vec::new();
            for ((block, _), ports) in branches.into_iter().zip(port_sets) {
                let mut merged_ports = ports;
                let mut merged_blocks = vec![block];
                let mut k = 0;
                while k < arms.len() {
                    if arms[k].0.is_disjoint(&merged_ports) {
                        k += 1;
                    } else {
                        let (p, b) = arms.remove(k);
                        merged_ports.extend(p);
                        let mut b = b;
                        b.append(&mut merged_blocks);
                        merged_blocks = b;
                    }
                }
                arms.push((merged_ports, merged_blocks));
            }
            // Arms and their ports in the node's port order, for stable output.
            let order: Vec<&str> = self.g.ports[cond].iter().map(|p| p.name.as_str()).collect();
            let rank = |p: &str| order.iter().position(|o| *o == p).unwrap_or(usize::MAX);
            let mut arms: Vec<(Vec<String>, Block)> = arms
                .into_iter()
                .map(|(ports, mut blocks)| {
                    let mut ports: Vec<String> = ports.into_iter().collect();
                    ports.sort_by_key(|p| rank(p));
                    let block = if blocks.len() == 1 {
                        blocks.pop().unwrap_or(Block::Seq(vec![]))
                    } else {
                        Block::Par(blocks)
                    };
                    (ports, block)
                })
                .collect();
            arms.sort_by_key(|(ports, _)| ports.first().map_or(usize::MAX, |p| rank(p)));
            return Block::Dispatch { cond, arms };
        }
        Block::Par(branches.into_iter().map(|(b, _)| b).collect())
    }

    /// If every edge entering every branch from outside comes from the same in-scope branching
    /// node, that node and the set of ports through which each branch is entered.
    fn dispatch_owner(
        &self,
        branches: &[(Block, Vec<usize>)],
    ) -> Option<(usize, Vec<BTreeSet<String>>)> {
        let mut cond: Option<usize> = None;
        let mut port_sets = Vec::with_capacity(branches.len());
        for (_, nodes) in branches {
            let members: BTreeSet<usize> = nodes.iter().copied().collect();
            let mut ports: BTreeSet<String> = BTreeSet::new();
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
                    ports.insert(edge.port.clone());
                }
            }
            if ports.is_empty() {
                return None;
            }
            port_sets.push(ports);
        }
        cond.map(|c| (c, port_sets))
    }
}

/// The scopes of a valid graph: the innermost for-each owning each node (None: top level), and
/// each scope's nodes in topological order, scopes sorted (top level first).
pub(crate) type ScopeMembers = Vec<(Option<usize>, Vec<usize>)>;

pub(crate) fn scopes(g: &Graph<'_>) -> (Vec<Option<usize>>, ScopeMembers) {
    let bodies = g.foreach_bodies();
    let mut scope_of: Vec<Option<usize>> = vec![None; g.len()];
    let mut body_size: Vec<usize> = vec![usize::MAX; g.len()];
    for (f, body) in &bodies {
        let size = body.iter().filter(|b| **b).count();
        for (i, &inside) in body.iter().enumerate() {
            if inside && size < body_size[i] {
                body_size[i] = size;
                scope_of[i] = Some(*f);
            }
        }
    }
    let mut members: std::collections::BTreeMap<Option<usize>, Vec<usize>> =
        std::collections::BTreeMap::new();
    for v in g.topo_order() {
        members.entry(scope_of[v]).or_default().push(v);
    }
    (scope_of, members.into_iter().collect())
}

/// The last nodes of for-each `f`'s own body: nodes of its scope with no successor in it (a
/// nested for-each counts through its `done` edges only).
pub(crate) fn scope_sinks(g: &Graph<'_>, scope_of: &[Option<usize>], f: usize) -> Vec<usize> {
    (0..g.len())
        .filter(|&v| scope_of[v] == Some(f) && !g.succs(v).any(|w| scope_of[w] == Some(f)))
        .collect()
}

/// A planner with every scope's activation analysed (for validation checks).
pub(crate) fn analysed<'g, 'w>(g: &'g Graph<'w>) -> (Planner<'g, 'w>, Vec<Option<usize>>) {
    let mut planner = Planner::new(g);
    let (scope_of, members) = scopes(g);
    for (key, nodes) in &members {
        let in_scope: Vec<bool> = (0..g.len()).map(|i| scope_of[i] == *key).collect();
        planner.analyse(nodes, &in_scope);
    }
    (planner, scope_of)
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
