import { memo, useCallback, useLayoutEffect, useRef, useState, type DragEvent } from 'react';
import {
  Background,
  BackgroundVariant,
  Controls,
  ReactFlow,
  useReactFlow,
  useStore,
  type Connection,
  type EdgeChange,
  type NodeChange,
  type NodeMouseHandler,
  type EdgeMouseHandler,
  type Viewport,
} from '@xyflow/react';
import type { GEdge, GNode } from '../graph/mapping';
import type { ViewNode } from '../graph/decorate';
import { fitViewport } from '../graph/viewport';
import { FarContext, nodeTypes } from './CmNode';
import { FarEdges } from './FarEdges';
import { MiniMap } from './MiniMap';

/** The drag-and-drop payload type of palette items. */
export const DND_TYPE = 'application/x-concertmaster-node-type';

const defaultEdgeOptions = { type: 'default' } as const;
const MIN_ZOOM = 0.05;
const fitViewOptions = { padding: 0.15, maxZoom: 1.2 } as const;
const proOptions = { hideAttribution: false } as const;

export interface FlowCanvasProps {
  nodes: ViewNode[];
  edges: GEdge[];
  readOnly: boolean;
  onNodesChange?: (changes: NodeChange<GNode>[]) => void;
  onEdgesChange?: (changes: EdgeChange<GEdge>[]) => void;
  onConnect?: (c: Connection) => void;
  isValidConnection?: (c: Connection | GEdge) => boolean;
  onDropType?: (type: string, position: { x: number; y: number }) => void;
  onNodeClick?: (id: string) => void;
  onEdgeClick?: (id: string) => void;
  onPaneClick?: () => void;
  testId?: string;
}

const miniMapColor = (n: ViewNode) => {
  const d = n.data;
  if (d.status === 'failed' || d.problem === 'error') return '#e5484d';
  if (d.status === 'succeeded') return '#30a46c';
  if (d.status === 'running') return '#0091ff';
  return '#9aa4b2';
};

/** `performance.mark('cm:canvas-ready')` on React Flow's `onInit` (its viewport is ready). */
const markReady = () => {
  performance.mark('cm:canvas-ready');
};

/** Below this zoom the canvas draws less: nodes without text (CmNode), edges as one path (FarEdges). */
export const FAR_ZOOM = 0.5;
const zoomedOut = (s: { transform: [number, number, number] }) => s.transform[2] < FAR_ZOOM;
const NO_EDGES: GEdge[] = [];

function FlowCanvasView(props: FlowCanvasProps) {
  const { nodes, edges, readOnly, onNodesChange, onEdgesChange, onConnect, isValidConnection, onDropType, onNodeClick, onEdgeClick, onPaneClick, testId } = props;
  const rf = useReactFlow();
  // Far out, text is unreadable and edges are hairlines: draw less (one subscription, not one
  // per node or edge).
  const far = useStore(zoomedOut);

  // The first viewport fits the document's positions (estimated node sizes) before the first
  // render, so React Flow renders the nodes once, at that zoom; `fitView` (render, measure,
  // fit, render again) only when the pane has no size yet (a hidden tab).
  const wrap = useRef<HTMLDivElement>(null);
  const [start, setStart] = useState<{ viewport: Viewport | null } | null>(null);
  useLayoutEffect(() => {
    if (start || !wrap.current) return;
    const { width, height } = wrap.current.getBoundingClientRect();
    setStart({ viewport: fitViewport(nodes, width, height, { ...fitViewOptions, minZoom: MIN_ZOOM }) });
  }, [start, nodes]);

  const onDragOver = useCallback(
    (e: DragEvent) => {
      if (readOnly || !onDropType) return;
      if (!Array.from(e.dataTransfer.types).includes(DND_TYPE)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'move';
    },
    [readOnly, onDropType],
  );

  const onDrop = useCallback(
    (e: DragEvent) => {
      if (readOnly || !onDropType) return;
      const type = e.dataTransfer.getData(DND_TYPE);
      if (!type) return;
      e.preventDefault();
      const p = rf.screenToFlowPosition({ x: e.clientX, y: e.clientY });
      onDropType(type, { x: p.x - 90, y: p.y - 30 });
    },
    [readOnly, onDropType, rf],
  );

  // Measurements do not come back as new nodes (the pages' Decorator writes sizes into the node
  // objects it made): after one, the minimap and, far out, the edges are drawn again (from the
  // sizes and the handles' measured places).
  const [measured, setMeasured] = useState(0);
  const nodesChange = useCallback(
    (changes: NodeChange<ViewNode>[]) => {
      (onNodesChange as ((c: NodeChange<ViewNode>[]) => void) | undefined)?.(changes);
      if (changes.some((c) => c.type === 'dimensions')) setMeasured((m) => m + 1);
    },
    [onNodesChange],
  );

  const nodeClick = useCallback<NodeMouseHandler>((_, n) => onNodeClick?.(n.id), [onNodeClick]);
  const edgeClick = useCallback<EdgeMouseHandler>((_, e) => onEdgeClick?.(e.id), [onEdgeClick]);

  return (
    <div ref={wrap} className={far ? 'flow-wrap zoom-far' : 'flow-wrap'} data-testid={testId ?? 'canvas'} onDragOver={onDragOver} onDrop={onDrop}>
      {start ? (
        <FarContext.Provider value={far}>
          <ReactFlow<ViewNode, GEdge>
            nodes={nodes}
            edges={far ? NO_EDGES : edges}
            nodeTypes={nodeTypes}
            defaultEdgeOptions={defaultEdgeOptions}
            onNodesChange={nodesChange}
            onEdgesChange={onEdgesChange}
            onConnect={readOnly ? undefined : onConnect}
            isValidConnection={isValidConnection}
            onNodeClick={nodeClick}
            onEdgeClick={edgeClick}
            onPaneClick={onPaneClick}
            nodesDraggable={!readOnly}
            nodesConnectable={!readOnly}
            edgesReconnectable={false}
            elementsSelectable
            deleteKeyCode={null}
            onlyRenderVisibleElements
            defaultViewport={start.viewport ?? undefined}
            fitView={!start.viewport}
            fitViewOptions={fitViewOptions}
            minZoom={MIN_ZOOM}
            maxZoom={2}
            proOptions={proOptions}
            onInit={markReady}
          >
            {far ? <FarEdges edges={edges} measured={measured} /> : null}
            <Background variant={BackgroundVariant.Dots} gap={20} size={1} />
            <MiniMap nodeColor={miniMapColor} measured={measured} />
            <Controls showInteractive={false} />
          </ReactFlow>
        </FarContext.Provider>
      ) : null}
    </div>
  );
}

export const FlowCanvas = memo(FlowCanvasView);
