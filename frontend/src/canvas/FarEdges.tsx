// Zoomed far out, every edge of the canvas as one SVG path (plus one per problem severity and
// one for the selection) instead of one React Flow edge component and <svg> element each.
// Hundreds of edge elements are most of what a fitted view of a large workflow costs to mount,
// and, as separate paint chunks, to pan: Chrome re-layerizes them on every frame. Far out an
// edge is a hairline nobody clicks; zoomed in (FlowCanvas switches at the same zoom as the
// nodes' level of detail) React Flow draws and handles them again.

import { memo, useMemo } from 'react';
import { EdgeLabelRenderer, getBezierPath, Position, useStore, useStoreApi, type InternalNode, type ReactFlowState } from '@xyflow/react';
import type { GEdge } from '../graph/mapping';

type Handle = NonNullable<NonNullable<InternalNode['internals']['handleBounds']>['source']>[number];

function anchor(node: InternalNode, handles: Handle[] | null | undefined, id: string | null | undefined, side: 'source' | 'target'): [number, number] | null {
  if (!handles || handles.length === 0) return null;
  const h = (id ? handles.find((x) => x.id === id) : undefined) ?? (id ? undefined : handles[0]);
  if (!h) return null;
  const p = node.internals.positionAbsolute;
  // React Flow's own anchors: the handle's outer side, vertically centred.
  const x = side === 'source' ? h.x + h.width : h.x;
  return [p.x + x, p.y + h.y + h.height / 2];
}

type EdgeClass = 'plain' | 'moving' | 'error' | 'warning' | 'selected';

/**
 * One `d` per class of edge: plain, error, warning, selected, and `moving` for the plain edges
 * of nodes being dragged (so while a node moves only that short path changes and is painted
 * again, not the one with every edge).
 */
export function farEdgePaths(edges: readonly GEdge[], lookup: ReadonlyMap<string, InternalNode>): Record<EdgeClass, string> {
  const out: Record<EdgeClass, string[]> = { plain: [], moving: [], error: [], warning: [], selected: [] };
  for (const e of edges) {
    if (e.hidden) continue;
    const s = lookup.get(e.source);
    const t = lookup.get(e.target);
    if (!s || !t) continue;
    const a = anchor(s, s.internals.handleBounds?.source, e.sourceHandle, 'source');
    const b = anchor(t, t.internals.handleBounds?.target, e.targetHandle, 'target');
    if (!a || !b) continue;
    const [d] = getBezierPath({ sourceX: a[0], sourceY: a[1], sourcePosition: Position.Right, targetX: b[0], targetY: b[1], targetPosition: Position.Left });
    const cls: EdgeClass = e.selected
      ? 'selected'
      : e.className === 'edge-error'
        ? 'error'
        : e.className === 'edge-warning'
          ? 'warning'
          : s.dragging || t.dragging
            ? 'moving'
            : 'plain';
    out[cls].push(d);
  }
  return { plain: out.plain.join(''), moving: out.moving.join(''), error: out.error.join(''), warning: out.warning.join(''), selected: out.selected.join('') };
}

// Re-draw when the nodes change (moves come back as a new `nodes` array) or were measured
// (`measured` counts React Flow's measurements), not on every pan or zoom.
const nodesOf = (s: ReactFlowState) => s.nodes;

function FarEdgesView({ edges, measured }: { edges: readonly GEdge[]; measured: number }) {
  const nodes = useStore(nodesOf);
  const store = useStoreApi();
  const d = useMemo(
    () => farEdgePaths(edges, store.getState().nodeLookup as ReadonlyMap<string, InternalNode>),
    // `nodes` and `measured` are not read: they say when the lookup (mutated in place) changed.
    [edges, nodes, measured, store],
  );
  return (
    <EdgeLabelRenderer>
      <svg className="cm-far-edges" data-testid="far-edges" aria-hidden>
        <path className="plain" d={d.plain} />
        {d.moving ? <path className="plain moving" d={d.moving} /> : null}
        {d.warning ? <path className="warning" d={d.warning} /> : null}
        {d.error ? <path className="error" d={d.error} /> : null}
        {d.selected ? <path className="selected" d={d.selected} /> : null}
      </svg>
    </EdgeLabelRenderer>
  );
}

export const FarEdges = memo(FarEdgesView);
