// The first viewport of a canvas, computed from the document's positions before anything is
// drawn (pure). React Flow's `fitView` can only fit after it has rendered and measured the
// nodes at the default zoom, and then renders again at the fitted zoom: with hundreds of nodes
// that is two full passes (and a third after the measurements come back through the editor
// state). Fitting on estimated sizes lets the first pass be the last.

import { getViewportForBounds, type Viewport } from '@xyflow/react';

/** `.cm-node` is 180 px wide; a head and a sub line, plus a row per port when there are several. */
export const NODE_WIDTH = 180;
const NODE_HEIGHT = 50;
const PORT_ROW = 16;

export interface SizedNode {
  position: { x: number; y: number };
  measured?: { width?: number; height?: number };
  data?: { ports?: readonly unknown[] };
}

export function estimatedSize(n: SizedNode): { width: number; height: number } {
  const ports = n.data?.ports?.length ?? 1;
  return {
    width: n.measured?.width ?? NODE_WIDTH,
    height: n.measured?.height ?? NODE_HEIGHT + (ports > 1 ? 8 + ports * PORT_ROW : 0),
  };
}

export interface FitOptions {
  padding: number;
  minZoom: number;
  maxZoom: number;
}

/** The viewport `fitView` would pick for these nodes in a `width` × `height` pane; null when the pane has no size. */
export function fitViewport(nodes: readonly SizedNode[], width: number, height: number, o: FitOptions): Viewport | null {
  if (!(width > 0 && height > 0)) return null;
  if (nodes.length === 0) return { x: 0, y: 0, zoom: 1 };
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const n of nodes) {
    const s = estimatedSize(n);
    x0 = Math.min(x0, n.position.x);
    y0 = Math.min(y0, n.position.y);
    x1 = Math.max(x1, n.position.x + s.width);
    y1 = Math.max(y1, n.position.y + s.height);
  }
  return getViewportForBounds({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 }, width, height, o.minZoom, o.maxZoom, o.padding);
}
