// Workflow document ↔ React Flow graph. Pure functions: a document mapped to a graph and back
// is the same document (test/mapping.test.ts runs every example through it).
//
// Each graph node keeps its document node (`data.wf`) verbatim; the canvas position lives in
// the React Flow node and is written back only when it differs from the document's (or, for a
// node without a position, from the one the mapping made up). Each edge keeps the edge it came
// from (`data.orig`), written back as is while its ends are unchanged, so defaulted ports stay
// omitted.

import type { Edge, Node } from '@xyflow/react';
import {
  DEFAULT_IN,
  DEFAULT_OUT,
  type Position,
  type WfEdge,
  type WfNode,
  type Workflow,
} from '../model/workflow';

export interface CmNodeData extends Record<string, unknown> {
  /** The document node (its `position` may be stale: the graph node's position is current). */
  wf: WfNode;
  /** The position the mapping made up for a node without one. */
  synthetic?: Position;
}

export interface CmEdgeData extends Record<string, unknown> {
  orig?: WfEdge;
}

export type GNode = Node<CmNodeData, 'cm'>;
export type GEdge = Edge<CmEdgeData>;

/** The document without its nodes and edges; `keys` keeps the document's key order. */
export interface WorkflowMeta {
  keys: string[];
  fields: Record<string, unknown>;
}

export interface Graph {
  nodes: GNode[];
  edges: GEdge[];
  meta: WorkflowMeta;
}

export const NODE_TYPE = 'cm';

/** Grid spacing of made-up positions for nodes without one. */
const GRID_X = 250;
const GRID_Y = 150;

export function edgeKey(from: string, port: string, to: string): string {
  return `e:${from}:${port}:${to}`;
}

/** An edge id not in `taken` (duplicate edges get `#2`, `#3`…). */
export function freshEdgeId(from: string, port: string, to: string, taken: ReadonlySet<string>): string {
  const base = edgeKey(from, port, to);
  if (!taken.has(base)) return base;
  let i = 2;
  while (taken.has(`${base}#${i}`)) i += 1;
  return `${base}#${i}`;
}

export function toGraphNode(wf: WfNode, index: number): GNode {
  const p = wf.position;
  if (p && typeof p.x === 'number' && typeof p.y === 'number') {
    return { id: wf.id, type: NODE_TYPE, position: { x: p.x, y: p.y }, data: { wf } };
  }
  const synthetic = { x: (index % 6) * GRID_X, y: Math.floor(index / 6) * GRID_Y };
  return { id: wf.id, type: NODE_TYPE, position: { ...synthetic }, data: { wf, synthetic } };
}

export function toGraphEdge(e: WfEdge, id: string): GEdge {
  return {
    id,
    source: e.from,
    target: e.to,
    sourceHandle: e.fromPort ?? DEFAULT_OUT,
    targetHandle: e.toPort ?? DEFAULT_IN,
    data: { orig: e },
  };
}

export function workflowToGraph(wf: Workflow): Graph {
  const ids = new Set<string>();
  const nodes = (wf.nodes ?? []).map((n, i) => {
    const g = toGraphNode(n, i);
    // Duplicate ids (a validation error) still need distinct canvas ids.
    if (ids.has(g.id)) {
      let k = 2;
      while (ids.has(`${n.id}~${k}`)) k += 1;
      g.id = `${n.id}~${k}`;
    }
    ids.add(g.id);
    return g;
  });
  const taken = new Set<string>();
  const edges = (wf.edges ?? []).map((e) => {
    const id = freshEdgeId(e.from, e.fromPort ?? DEFAULT_OUT, e.to, taken);
    taken.add(id);
    return toGraphEdge(e, id);
  });
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(wf)) {
    if (k !== 'nodes' && k !== 'edges') fields[k] = v;
  }
  return { nodes, edges, meta: { keys: Object.keys(wf), fields } };
}

function samePos(a: Position | null | undefined, b: Position | null | undefined): boolean {
  return !!a && !!b && a.x === b.x && a.y === b.y;
}

export function fromGraphNode(n: GNode): WfNode {
  const wf = n.data.wf;
  const pos = n.position;
  if (samePos(wf.position, pos)) return wf;
  if (!wf.position && samePos(n.data.synthetic, pos)) return wf;
  return { ...wf, position: { x: pos.x, y: pos.y } };
}

export function fromGraphEdge(e: GEdge): WfEdge {
  const o = e.data?.orig;
  const port = e.sourceHandle ?? DEFAULT_OUT;
  const toPort = e.targetHandle ?? DEFAULT_IN;
  if (
    o &&
    o.from === e.source &&
    o.to === e.target &&
    (o.fromPort ?? DEFAULT_OUT) === port &&
    (o.toPort ?? DEFAULT_IN) === toPort
  ) {
    return o;
  }
  const out: WfEdge = port !== DEFAULT_OUT ? { from: e.source, fromPort: port, to: e.target } : { from: e.source, to: e.target };
  if (toPort !== DEFAULT_IN) out.toPort = toPort;
  return out;
}

export function graphToWorkflow(g: Graph): Workflow {
  const out: Record<string, unknown> = {};
  const nodes = g.nodes.map(fromGraphNode);
  const edges = g.edges.map(fromGraphEdge);
  const keys = [...g.meta.keys];
  for (const k of ['id', 'name', 'nodes', 'edges']) if (!keys.includes(k)) keys.push(k);
  for (const k of Object.keys(g.meta.fields)) if (!keys.includes(k)) keys.push(k);
  for (const k of keys) {
    if (k === 'nodes') out.nodes = nodes;
    else if (k === 'edges') {
      // A document without `edges` stays without while it has none.
      if (edges.length > 0 || g.meta.keys.includes('edges')) out.edges = edges;
    } else if (k in g.meta.fields && g.meta.fields[k] !== undefined) out[k] = g.meta.fields[k];
  }
  return out as unknown as Workflow;
}

/**
 * A graph for a new document, reusing the nodes and edges of `prev` that did not change, so
 * that the canvas re-renders only what a JSON edit touched.
 */
export function reconcileGraph(prev: Graph, wf: Workflow): Graph {
  const next = workflowToGraph(wf);
  const oldNodes = new Map(prev.nodes.map((n) => [n.id, n]));
  const nodes = next.nodes.map((n) => {
    const old = oldNodes.get(n.id);
    if (!old) return n;
    const oldWf = fromGraphNode(old);
    if (JSON.stringify(oldWf) === JSON.stringify(n.data.wf) && samePos(old.position, n.position)) {
      return old;
    }
    return { ...n, selected: old.selected };
  });
  const oldEdges = new Map(prev.edges.map((e) => [e.id, e]));
  const edges = next.edges.map((e) => {
    const old = oldEdges.get(e.id);
    if (old && JSON.stringify(fromGraphEdge(old)) === JSON.stringify(e.data?.orig)) return old;
    return e;
  });
  return { nodes, edges, meta: next.meta };
}
