//! An indexed view of a workflow's graph, shared by validation and compilation.

use cm_model::{ErrorAction, Workflow};
use cm_registry::{Category, Execution, PortSpec, RegisteredType, Registry};
use std::collections::HashMap;
use std::sync::Arc;

/// A valid edge (both ends exist), by node index.
#[derive(Debug, Clone)]
pub(crate) struct GEdge {
    pub from: usize,
    pub to: usize,
    pub port: String,
}

/// Fixed-size bit set over node indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BitSet(Vec<u64>);

impl BitSet {
    pub fn new(n: usize) -> Self {
        BitSet(vec![0; n.div_ceil(64)])
    }
    pub fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    pub fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    pub fn union_with(&mut self, other: &BitSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
    /// |(self ∪ other) ∩ mask|
    pub fn union_count_within(&self, other: &BitSet, mask: &BitSet) -> usize {
        self.0
            .iter()
            .zip(&other.0)
            .zip(&mask.0)
            .map(|((a, b), m)| ((a | b) & m).count_ones() as usize)
            .sum()
    }
}

/// The workflow as indices: node `i` is `wf.nodes[i]`.
pub(crate) struct Graph<'w> {
    pub wf: &'w Workflow,
    /// First occurrence of each id.
    pub index: HashMap<&'w str, usize>,
    /// Edge indices (into `edges`) leaving / entering each node.
    pub out: Vec<Vec<usize>>,
    pub inc: Vec<Vec<usize>>,
    /// Valid edges; `edge_origin[k]` is the index in `wf.edges`.
    pub edges: Vec<GEdge>,
    pub edge_origin: Vec<usize>,
    /// Registry entry of each node (None: unknown type/version).
    pub types: Vec<Option<Arc<RegisteredType>>>,
    /// Output ports of each node (type's ports for its config, plus `error` when routed).
    pub ports: Vec<Vec<PortSpec>>,
}

impl<'w> Graph<'w> {
    pub fn new(wf: &'w Workflow, registry: &Registry) -> Self {
        let n = wf.nodes.len();
        let mut index = HashMap::with_capacity(n);
        for (i, node) in wf.nodes.iter().enumerate() {
            index.entry(node.id.as_str()).or_insert(i);
        }
        let types: Vec<_> = wf
            .nodes
            .iter()
            .map(|node| {
                registry
                    .get(&node.node_type, node.type_version)
                    .ok()
                    .cloned()
            })
            .collect();
        let ports = wf
            .nodes
            .iter()
            .zip(&types)
            .map(|(node, t)| {
                let mut ports = t
                    .as_ref()
                    .map(|t| t.descriptor().output_ports(&node.config))
                    .unwrap_or_default();
                if node
                    .on_error
                    .as_ref()
                    .is_some_and(|e| e.action == ErrorAction::Route)
                {
                    ports.push(PortSpec::required(cm_model::ERROR_PORT, "Error"));
                }
                ports
            })
            .collect();
        let mut g = Graph {
            wf,
            index,
            out: vec![Vec::new(); n],
            inc: vec![Vec::new(); n],
            edges: Vec::new(),
            edge_origin: Vec::new(),
            types,
            ports,
        };
        for (k, e) in wf.edges.iter().enumerate() {
            if let (Some(&from), Some(&to)) =
                (g.index.get(e.from.as_str()), g.index.get(e.to.as_str()))
            {
                let idx = g.edges.len();
                g.edges.push(GEdge {
                    from,
                    to,
                    port: e.from_port.clone(),
                });
                g.edge_origin.push(k);
                g.out[from].push(idx);
                g.inc[to].push(idx);
            }
        }
        g
    }

    pub fn len(&self) -> usize {
        self.wf.nodes.len()
    }

    pub fn id(&self, i: usize) -> &'w str {
        &self.wf.nodes[i].id
    }

    pub fn category(&self, i: usize) -> Option<Category> {
        self.types[i].as_ref().map(|t| t.descriptor().category)
    }

    pub fn execution(&self, i: usize) -> Option<&Execution> {
        self.types[i].as_ref().map(|t| &t.descriptor().execution)
    }

    pub fn type_id(&self, i: usize) -> &'w str {
        &self.wf.nodes[i].node_type
    }

    /// Whether the node can take more than one output port (its successors depend on which).
    pub fn is_branching(&self, i: usize) -> bool {
        self.run_ports(i).count() > 1
    }

    /// Whether the node is a for-each (Map).
    pub fn is_foreach(&self, i: usize) -> bool {
        matches!(
            self.execution(i),
            Some(Execution::Native {
                state: cm_registry::NativeState::Map
            })
        )
    }

    /// Ports the node can finish on (a for-each's `each` port leads into its body instead).
    pub fn run_ports(&self, i: usize) -> impl Iterator<Item = &PortSpec> + '_ {
        let foreach = self.is_foreach(i);
        self.ports[i]
            .iter()
            .filter(move |p| !(foreach && p.name == "each"))
    }

    pub fn succs(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.out[i].iter().map(|&e| self.edges[e].to)
    }

    pub fn preds(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.inc[i].iter().map(|&e| self.edges[e].from)
    }

    /// Kahn's topological order of the nodes not on or behind a cycle.
    pub fn topo_order(&self) -> Vec<usize> {
        let n = self.len();
        let mut indeg: Vec<usize> = (0..n).map(|i| self.inc[i].len()).collect();
        let mut stack: Vec<usize> = (0..n).rev().filter(|&i| indeg[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(v) = stack.pop() {
            order.push(v);
            // Reverse so that, among ready nodes, lower indices come first (stable output).
            for &e in self.out[v].iter().rev() {
                let w = self.edges[e].to;
                indeg[w] -= 1;
                if indeg[w] == 0 {
                    stack.push(w);
                }
            }
        }
        order
    }

    /// Strongly connected components with a cycle (size > 1, or a self-loop), each given as a
    /// cycle path in edge order.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let n = self.len();
        // Iterative Tarjan.
        let mut index = vec![usize::MAX; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next = 0;
        let mut comps: Vec<Vec<usize>> = Vec::new();
        for root in 0..n {
            if index[root] != usize::MAX {
                continue;
            }
            let mut work: Vec<(usize, usize)> = vec![(root, 0)];
            while let Some(top) = work.last_mut() {
                let (v, pos) = *top;
                if pos < self.out[v].len() {
                    top.1 += 1;
                }
                if pos == 0 && index[v] == usize::MAX {
                    index[v] = next;
                    low[v] = next;
                    next += 1;
                    stack.push(v);
                    on_stack[v] = true;
                }
                if pos < self.out[v].len() {
                    let w = self.edges[self.out[v][pos]].to;
                    if index[w] == usize::MAX {
                        work.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                } else {
                    work.pop();
                    if let Some(&(parent, _)) = work.last() {
                        low[parent] = low[parent].min(low[v]);
                    }
                    if low[v] == index[v] {
                        let mut comp = Vec::new();
                        while let Some(w) = stack.pop() {
                            on_stack[w] = false;
                            comp.push(w);
                            if w == v {
                                break;
                            }
                        }
                        let self_loop = comp.len() == 1 && self.succs(v).any(|w| w == v);
                        if comp.len() > 1 || self_loop {
                            comps.push(comp);
                        }
                    }
                }
            }
        }
        // Turn each component into one concrete cycle: walk successors inside it until a
        // node repeats.
        let mut cycles: Vec<Vec<usize>> = comps
            .into_iter()
            .map(|comp| {
                let start = *comp.iter().min().unwrap_or(&0);
                let mut member = vec![false; n];
                for &c in &comp {
                    member[c] = true;
                }
                let mut path = vec![start];
                let mut seen_at = HashMap::from([(start, 0usize)]);
                let mut v = start;
                loop {
                    let w = self.succs(v).filter(|&w| member[w]).min().unwrap_or(start);
                    if let Some(&at) = seen_at.get(&w) {
                        let mut cycle = path.split_off(at);
                        cycle.push(w);
                        return cycle;
                    }
                    seen_at.insert(w, path.len());
                    path.push(w);
                    v = w;
                }
            })
            .collect();
        cycles.sort();
        cycles
    }

    /// Nodes reachable from `start` (including it).
    pub fn reachable_from(&self, start: usize) -> Vec<bool> {
        let mut seen = vec![false; self.len()];
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(v) = stack.pop() {
            for w in self.succs(v) {
                if !seen[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
        seen
    }

    /// Ancestor sets (strict) of every node, given a topological order of all nodes.
    pub fn ancestors(&self, topo: &[usize]) -> Vec<BitSet> {
        let n = self.len();
        let mut anc = vec![BitSet::new(n); n];
        for &v in topo {
            let mut acc = BitSet::new(n);
            for p in self.preds(v) {
                acc.union_with(&anc[p]);
                acc.insert(p);
            }
            anc[v] = acc;
        }
        anc
    }

    /// Nodes of each for-each's body: everything reachable from its `each` port.
    pub fn foreach_bodies(&self) -> Vec<(usize, Vec<bool>)> {
        (0..self.len())
            .filter(|&i| self.is_foreach(i))
            .map(|f| {
                let mut body = vec![false; self.len()];
                let mut stack: Vec<usize> = self.out[f]
                    .iter()
                    .filter(|&&e| self.edges[e].port == "each")
                    .map(|&e| self.edges[e].to)
                    .collect();
                while let Some(v) = stack.pop() {
                    if v == f || body[v] {
                        continue;
                    }
                    body[v] = true;
                    stack.extend(self.succs(v));
                }
                (f, body)
            })
            .collect()
    }
}
