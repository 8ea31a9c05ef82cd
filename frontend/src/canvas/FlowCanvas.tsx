import { memo, useCallback, type DragEvent } from 'react';
import {
  Background,
  BackgroundVariant,
  Controls,
  MiniMap,
  ReactFlow,
  useReactFlow,
  useStore,
  type Connection,
  type EdgeChange,
  type NodeChange,
  type NodeMouseHandler,
  type EdgeMouseHandler,
} from '@xyflow/react';
import type { GEdge, GNode } from '../graph/mapping';
import type { ViewNode } from '../graph/decorate';
import { nodeTypes } from './CmNode';

/** The drag-and-drop payload type of palette items. */
export const DND_TYPE = 'application/x-concertmaster-node-type';

const defaultEdgeOptions = { type: 'default' } as const;
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

const miniMapColor = (n: { data: unknown }) => {
  const d = n.data as { problem?: string; status?: string; category?: string };
  if (d.status === 'failed' || d.problem === 'error') return '#e5484d';
  if (d.status === 'succeeded') return '#30a46c';
  if (d.status === 'running') return '#0091ff';
  return '#9aa4b2';
};

/** `performance.mark('cm:canvas-ready')` on React Flow's `onInit` (its viewport is ready). */
const markReady = () => {
  performance.mark('cm:canvas-ready');
};

const zoomedOut = (s: { transform: [number, number, number] }) => s.transform[2] < 0.6;

function FlowCanvasView(props: FlowCanvasProps) {
  const { nodes, edges, readOnly, onNodesChange, onEdgesChange, onConnect, isValidConnection, onDropType, onNodeClick, onEdgeClick, onPaneClick, testId } = props;
  const rf = useReactFlow();
  // Far out, node text is unreadable anyway: hide it (one subscription, not one per node).
  const far = useStore(zoomedOut);

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

  const nodeClick = useCallback<NodeMouseHandler>((_, n) => onNodeClick?.(n.id), [onNodeClick]);
  const edgeClick = useCallback<EdgeMouseHandler>((_, e) => onEdgeClick?.(e.id), [onEdgeClick]);

  return (
    <div className={far ? 'flow-wrap zoom-far' : 'flow-wrap'} data-testid={testId ?? 'canvas'} onDragOver={onDragOver} onDrop={onDrop}>
      <ReactFlow<ViewNode, GEdge>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        defaultEdgeOptions={defaultEdgeOptions}
        onNodesChange={onNodesChange as ((c: NodeChange<ViewNode>[]) => void) | undefined}
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
        fitView
        fitViewOptions={fitViewOptions}
        minZoom={0.05}
        maxZoom={2}
        proOptions={proOptions}
        onInit={markReady}
      >
        <Background variant={BackgroundVariant.Dots} gap={20} size={1} />
        <MiniMap pannable zoomable nodeColor={miniMapColor} data-testid="minimap" />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}

export const FlowCanvas = memo(FlowCanvasView);
