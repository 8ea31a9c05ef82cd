// The canvas's minimap: React Flow's <MiniMap pannable zoomable> look and behaviour (drag to
// pan, wheel to zoom; the same viewport moves for the same input), drawn as one SVG path per
// node colour instead of one component and <rect> per node. React Flow's mounts a
// store-subscribed component for every node: a sixth of the first render of a 500-node workflow.

import { memo, useEffect, useMemo, useRef, type PointerEvent } from 'react';
import { Panel, useReactFlow, useStore, type ReactFlowState } from '@xyflow/react';
import type { ViewNode } from '../graph/decorate';
import { estimatedSize } from '../graph/viewport';

const WIDTH = 200;
const HEIGHT = 150;
/** Margin around the content, in minimap pixels (React Flow's offsetScale). */
const OFFSET = 5;

interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Node rectangles as one path `d` per fill colour, and their bounds. */
export function miniMapPaths(nodes: readonly ViewNode[], color: (n: ViewNode) => string): { paths: [string, string][]; bounds: Rect | null } {
  const byColor = new Map<string, string[]>();
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const n of nodes) {
    if (n.hidden) continue;
    const { width, height } = estimatedSize(n);
    const { x, y } = n.position;
    const c = color(n);
    let list = byColor.get(c);
    if (!list) byColor.set(c, (list = []));
    list.push(`M${x},${y}h${width}v${height}h${-width}z`);
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x + width);
    y1 = Math.max(y1, y + height);
  }
  const paths = [...byColor.entries()].map(([c, l]) => [c, l.join('')] as [string, string]);
  return { paths, bounds: Number.isFinite(x0) ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : null };
}

function union(a: Rect | null, b: Rect): Rect {
  if (!a) return b;
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, width: Math.max(a.x + a.width, b.x + b.width) - x, height: Math.max(a.y + a.height, b.y + b.height) - y };
}

const nodesOf = (s: ReactFlowState) => s.nodes as ViewNode[];
const txOf = (s: ReactFlowState) => s.transform[0];
const tyOf = (s: ReactFlowState) => s.transform[1];
const zoomOf = (s: ReactFlowState) => s.transform[2];
const widthOf = (s: ReactFlowState) => s.width;
const heightOf = (s: ReactFlowState) => s.height;
const zoomLimits = (s: ReactFlowState) => `${s.minZoom}:${s.maxZoom}`;

function MiniMapView({ nodeColor, measured }: { nodeColor: (n: ViewNode) => string; measured: number }) {
  const nodes = useStore(nodesOf);
  const tx = useStore(txOf);
  const ty = useStore(tyOf);
  const zoom = useStore(zoomOf);
  const w = useStore(widthOf);
  const h = useStore(heightOf);
  const limits = useStore(zoomLimits);
  const rf = useReactFlow();
  // `measured`: sizes are written into the node objects in place (graph/decorate.ts).
  const { paths, bounds } = useMemo(() => miniMapPaths(nodes, nodeColor), [nodes, nodeColor, measured]);

  const view: Rect = { x: -tx / zoom, y: -ty / zoom, width: w / zoom, height: h / zoom };
  const box = union(bounds, view);
  const viewScale = Math.max(box.width / WIDTH, box.height / HEIGHT) || 1;
  const offset = OFFSET * viewScale;
  const vbW = viewScale * WIDTH + offset * 2;
  const vbH = viewScale * HEIGHT + offset * 2;
  const vbX = box.x - (viewScale * WIDTH - box.width) / 2 - offset;
  const vbY = box.y - (viewScale * HEIGHT - box.height) / 2 - offset;

  // Drag to pan the view: the viewport rectangle follows the pointer.
  const scaleRef = useRef(viewScale);
  scaleRef.current = viewScale;
  const drag = useRef<{ x: number; y: number } | null>(null);
  const onPointerDown = (e: PointerEvent<SVGSVGElement>) => {
    if (e.button !== 0) return;
    e.currentTarget.setPointerCapture(e.pointerId);
    drag.current = { x: e.clientX, y: e.clientY };
  };
  const onPointerMove = (e: PointerEvent<SVGSVGElement>) => {
    const d = drag.current;
    if (!d) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    d.x = e.clientX;
    d.y = e.clientY;
    const vp = rf.getViewport();
    const k = scaleRef.current * vp.zoom;
    void rf.setViewport({ x: vp.x - dx * k, y: vp.y - dy * k, zoom: vp.zoom });
  };
  const onPointerUp = () => {
    drag.current = null;
  };

  // Wheel to zoom the view around its centre (a native listener: React's wheel listeners are passive).
  const svg = useRef<SVGSVGElement>(null);
  useEffect(() => {
    const el = svg.current;
    if (!el) return;
    const [min, max] = limits.split(':').map(Number);
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const z = rf.getZoom() * Math.pow(2, -e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.002));
      void rf.zoomTo(Math.min(max!, Math.max(min!, z)));
    };
    el.addEventListener('wheel', onWheel, { passive: false });
    return () => el.removeEventListener('wheel', onWheel);
  }, [rf, limits]);

  return (
    <Panel position="bottom-right" className="react-flow__minimap cm-minimap" data-testid="minimap">
      <svg
        ref={svg}
        width={WIDTH}
        height={HEIGHT}
        viewBox={`${vbX} ${vbY} ${vbW} ${vbH}`}
        className="react-flow__minimap-svg"
        role="img"
        aria-label="Mini map"
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={onPointerUp}
        onPointerCancel={() => (drag.current = null)}
      >
        {paths.map(([fill, d]) => (
          <path key={fill} className="cm-minimap-nodes" fill={fill} d={d} />
        ))}
        <path
          className="react-flow__minimap-mask"
          d={`M${vbX - offset},${vbY - offset}h${vbW + offset * 2}v${vbH + offset * 2}h${-vbW - offset * 2}z M${view.x},${view.y}h${view.width}v${view.height}h${-view.width}z`}
          fillRule="evenodd"
          pointerEvents="none"
        />
      </svg>
    </Panel>
  );
}

export const MiniMap = memo(MiniMapView);
