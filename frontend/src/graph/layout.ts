// Auto-layout with dagre: left to right, one rank per step. Returns top-left positions (the
// React Flow convention) for every node.

import { Graph as DagreGraph, layout } from '@dagrejs/dagre';
import type { Position } from '../model/workflow';

export interface LayoutInput {
  nodes: { id: string; width?: number; height?: number }[];
  edges: { source: string; target: string }[];
}

export const DEFAULT_NODE_WIDTH = 180;
export const DEFAULT_NODE_HEIGHT = 64;

export function autoLayout(input: LayoutInput, direction: 'LR' | 'TB' = 'LR'): Record<string, Position> {
  const g = new DagreGraph({ multigraph: true });
  g.setGraph({ rankdir: direction, nodesep: 40, ranksep: 80, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  const ids = new Set<string>();
  for (const n of input.nodes) {
    ids.add(n.id);
    g.setNode(n.id, { width: n.width ?? DEFAULT_NODE_WIDTH, height: n.height ?? DEFAULT_NODE_HEIGHT });
  }
  input.edges.forEach((e, i) => {
    if (ids.has(e.source) && ids.has(e.target) && e.source !== e.target) {
      g.setEdge(e.source, e.target, {}, `e${i}`);
    }
  });
  layout(g);
  const out: Record<string, Position> = {};
  for (const n of input.nodes) {
    const p = g.node(n.id) as { x: number; y: number; width: number; height: number } | undefined;
    if (!p) continue;
    out[n.id] = { x: Math.round(p.x - p.width / 2), y: Math.round(p.y - p.height / 2) };
  }
  return out;
}
