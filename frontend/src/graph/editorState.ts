// The editor's state: the graph being edited with undo/redo history and a clipboard, changed
// only through `editorReducer` (a pure function, tested in test/editorState.test.ts). The
// document is derived from the graph (`graphToWorkflow`) when it is saved, validated or shown
// as JSON.

import {
  applyEdgeChanges,
  applyNodeChanges,
  type Connection,
  type EdgeChange,
  type NodeChange,
} from '@xyflow/react';
import {
  DEFAULT_IN,
  DEFAULT_OUT,
  freshNodeId,
  isTrigger,
  type Position,
  type WfNode,
  type Workflow,
} from '../model/workflow';
import {
  freshEdgeId,
  fromGraphNode,
  graphToWorkflow,
  NODE_TYPE,
  reconcileGraph,
  toGraphEdge,
  workflowToGraph,
  type GEdge,
  type GNode,
  type Graph,
} from './mapping';

export const HISTORY_LIMIT = 100;

export interface Clipboard {
  nodes: WfNode[];
  edges: { from: string; fromPort?: string; to: string; toPort?: string }[];
}

export interface EditorState {
  graph: Graph;
  past: Graph[];
  future: Graph[];
  clipboard: Clipboard | null;
  /** How many times the clipboard was pasted (each paste is offset a bit further). */
  pasteCount: number;
  /** Changed since loaded or saved. */
  dirty: boolean;
  /** Bumped on every change of the document (not on selection or measurement). */
  revision: number;
  /** A node drag is in progress (its start was recorded in the history). */
  dragging: boolean;
  /** The coalescing key of the last recorded edit (typing in one field is one undo step). */
  lastKey: string | null;
}

export type EditorAction =
  | { type: 'load'; workflow: Workflow }
  /** The document of `revision` was saved (edits made meanwhile stay unsaved). */
  | { type: 'saved'; revision: number }
  | { type: 'nodesChange'; changes: NodeChange<GNode>[] }
  | { type: 'edgesChange'; changes: EdgeChange<GEdge>[] }
  | { type: 'connect'; connection: Connection }
  | { type: 'addNode'; nodeType: string; position: Position; config?: Record<string, unknown> }
  | { type: 'updateNode'; id: string; patch: Partial<WfNode>; coalesce?: string }
  | { type: 'renameNode'; from: string; to: string }
  | { type: 'setMeta'; patch: Record<string, unknown>; coalesce?: string }
  | { type: 'deleteSelected' }
  | { type: 'deleteElements'; nodeIds: string[]; edgeIds: string[] }
  | { type: 'copy' }
  | { type: 'paste' }
  | { type: 'undo' }
  | { type: 'redo' }
  | { type: 'select'; nodeIds: string[]; edgeIds?: string[] }
  | { type: 'selectAll' }
  | { type: 'layout'; positions: Record<string, Position> }
  | { type: 'replaceDocument'; workflow: Workflow };

export function initEditor(workflow: Workflow): EditorState {
  return {
    graph: workflowToGraph(workflow),
    past: [],
    future: [],
    clipboard: null,
    pasteCount: 0,
    dirty: false,
    revision: 0,
    dragging: false,
    lastKey: null,
  };
}

/** The document the editor holds. */
export function editorWorkflow(s: EditorState): Workflow {
  return graphToWorkflow(s.graph);
}

/** Records `graph` as the new present (one undo step, unless coalesced with the last one). */
function commit(s: EditorState, graph: Graph, key: string | null = null): EditorState {
  const coalesce = key !== null && key === s.lastKey;
  const past = coalesce ? s.past : [...s.past, s.graph].slice(-HISTORY_LIMIT);
  return {
    ...s,
    graph,
    past,
    future: [],
    dirty: true,
    revision: s.revision + 1,
    lastKey: key,
  };
}

function setSelection(nodes: GNode[], ids: ReadonlySet<string>): GNode[] {
  return nodes.map((n) => {
    const want = ids.has(n.id);
    return !!n.selected === want ? n : { ...n, selected: want };
  });
}

function setEdgeSelection(edges: GEdge[], ids: ReadonlySet<string>): GEdge[] {
  return edges.map((e) => {
    const want = ids.has(e.id);
    return !!e.selected === want ? e : { ...e, selected: want };
  });
}

function withNode(g: Graph, id: string, f: (n: GNode) => GNode): Graph {
  return { ...g, nodes: g.nodes.map((n) => (n.id === id ? f(n) : n)) };
}

function removeElements(g: Graph, nodeIds: ReadonlySet<string>, edgeIds: ReadonlySet<string>): Graph {
  return {
    ...g,
    nodes: g.nodes.filter((n) => !nodeIds.has(n.id)),
    edges: g.edges.filter(
      (e) => !edgeIds.has(e.id) && !nodeIds.has(e.source) && !nodeIds.has(e.target),
    ),
  };
}

/** Whether a connection may be drawn (no self-loops, nothing into a trigger, no duplicate). */
export function canConnect(g: Graph, c: Connection): boolean {
  if (!c.source || !c.target || c.source === c.target) return false;
  const target = g.nodes.find((n) => n.id === c.target);
  if (!target || isTrigger(target.data.wf.type)) return false;
  const port = c.sourceHandle ?? DEFAULT_OUT;
  return !g.edges.some((e) => e.source === c.source && e.target === c.target && e.sourceHandle === port);
}

export function editorReducer(s: EditorState, a: EditorAction): EditorState {
  switch (a.type) {
    case 'load':
      return initEditor(a.workflow);

    case 'saved':
      return s.revision === a.revision ? { ...s, dirty: false } : s;

    case 'nodesChange': {
      const changes = a.changes.filter((c) => c.type !== 'remove' && c.type !== 'add' && c.type !== 'replace');
      if (changes.length === 0) return s;
      const nodes = applyNodeChanges(changes, s.graph.nodes);
      const graph = { ...s.graph, nodes };
      const moving = changes.some((c) => c.type === 'position' && c.dragging === true);
      const moved = changes.some((c) => c.type === 'position');
      if (moved && moving && !s.dragging) {
        // A drag starts: the position before it is one undo step.
        return { ...commit(s, graph), dragging: true };
      }
      if (moved && !moving) {
        // The end of a drag (or a programmatic move).
        return {
          ...s,
          graph,
          dragging: false,
          dirty: true,
          revision: s.revision + 1,
          past: s.dragging ? s.past : [...s.past, s.graph].slice(-HISTORY_LIMIT),
          future: s.dragging ? s.future : [],
          lastKey: null,
        };
      }
      if (moved) return { ...s, graph, revision: s.revision + 1, dirty: true };
      // Selection and measurement changes are not edits.
      return { ...s, graph };
    }

    case 'edgesChange': {
      const changes = a.changes.filter((c) => c.type === 'select');
      if (changes.length === 0) return s;
      return { ...s, graph: { ...s.graph, edges: applyEdgeChanges(changes, s.graph.edges) } };
    }

    case 'connect': {
      const c = a.connection;
      if (!canConnect(s.graph, c)) return s;
      const port = c.sourceHandle ?? DEFAULT_OUT;
      const wfEdge = port === DEFAULT_OUT ? { from: c.source, to: c.target } : { from: c.source, fromPort: port, to: c.target };
      const id = freshEdgeId(c.source, port, c.target, new Set(s.graph.edges.map((e) => e.id)));
      const edge: GEdge = { ...toGraphEdge(wfEdge, id), targetHandle: c.targetHandle ?? DEFAULT_IN };
      return commit(s, { ...s.graph, edges: [...s.graph.edges, edge] });
    }

    case 'addNode': {
      const id = freshNodeId(a.nodeType, new Set(s.graph.nodes.map((n) => n.id)));
      const wf: WfNode = {
        id,
        type: a.nodeType,
        config: a.config ?? {},
        position: { x: Math.round(a.position.x), y: Math.round(a.position.y) },
      };
      const node: GNode = { id, type: NODE_TYPE, position: { ...wf.position! }, data: { wf }, selected: true };
      const nodes = [...setSelection(s.graph.nodes, new Set()), node];
      return commit(s, { ...s.graph, nodes, edges: setEdgeSelection(s.graph.edges, new Set()) });
    }

    case 'updateNode': {
      const target = s.graph.nodes.find((n) => n.id === a.id);
      if (!target) return s;
      const graph = withNode(s.graph, a.id, (n) => {
        const wf: WfNode = { ...fromGraphNode(n), ...a.patch };
        for (const [k, v] of Object.entries(a.patch)) {
          if (v === undefined) delete (wf as unknown as Record<string, unknown>)[k];
        }
        return { ...n, data: { ...n.data, wf } };
      });
      return commit(s, graph, a.coalesce ? `node:${a.id}:${a.coalesce}` : null);
    }

    case 'renameNode': {
      if (a.from === a.to || s.graph.nodes.some((n) => n.id === a.to)) return s;
      const nodes = s.graph.nodes.map((n) =>
        n.id === a.from ? { ...n, id: a.to, data: { ...n.data, wf: { ...fromGraphNode(n), id: a.to } } } : n,
      );
      const taken = new Set(s.graph.edges.map((e) => e.id));
      const edges = s.graph.edges.map((e) => {
        if (e.source !== a.from && e.target !== a.from) return e;
        const source = e.source === a.from ? a.to : e.source;
        const target = e.target === a.from ? a.to : e.target;
        const id = freshEdgeId(source, e.sourceHandle ?? DEFAULT_OUT, target, taken);
        taken.add(id);
        return { ...e, id, source, target };
      });
      return commit(s, { ...s.graph, nodes, edges });
    }

    case 'setMeta': {
      const fields = { ...s.graph.meta.fields, ...a.patch };
      for (const [k, v] of Object.entries(a.patch)) if (v === undefined) delete fields[k];
      const keys = [...s.graph.meta.keys];
      for (const k of Object.keys(a.patch)) if (!keys.includes(k) && a.patch[k] !== undefined) keys.push(k);
      return commit(s, { ...s.graph, meta: { keys, fields } }, a.coalesce ? `meta:${a.coalesce}` : null);
    }

    case 'deleteSelected': {
      const nodeIds = new Set(s.graph.nodes.filter((n) => n.selected).map((n) => n.id));
      const edgeIds = new Set(s.graph.edges.filter((e) => e.selected).map((e) => e.id));
      if (nodeIds.size === 0 && edgeIds.size === 0) return s;
      return commit(s, removeElements(s.graph, nodeIds, edgeIds));
    }

    case 'deleteElements': {
      if (a.nodeIds.length === 0 && a.edgeIds.length === 0) return s;
      return commit(s, removeElements(s.graph, new Set(a.nodeIds), new Set(a.edgeIds)));
    }

    case 'copy': {
      const selected = s.graph.nodes.filter((n) => n.selected);
      if (selected.length === 0) return s;
      const ids = new Set(selected.map((n) => n.id));
      const nodes = selected.map((n) => {
        const wf = fromGraphNode(n);
        return { ...wf, position: { x: n.position.x, y: n.position.y } };
      });
      const edges = s.graph.edges
        .filter((e) => ids.has(e.source) && ids.has(e.target))
        .map((e) => {
          const port = e.sourceHandle ?? DEFAULT_OUT;
          return port === DEFAULT_OUT ? { from: e.source, to: e.target } : { from: e.source, fromPort: port, to: e.target };
        });
      return { ...s, clipboard: { nodes, edges }, pasteCount: 0 };
    }

    case 'paste': {
      const cb = s.clipboard;
      if (!cb || cb.nodes.length === 0) return s;
      const offset = 40 * (s.pasteCount + 1);
      const taken = new Set(s.graph.nodes.map((n) => n.id));
      const rename = new Map<string, string>();
      const added: GNode[] = cb.nodes.map((wf) => {
        const id = freshNodeId(wf.id, taken);
        taken.add(id);
        rename.set(wf.id, id);
        const position = { x: (wf.position?.x ?? 0) + offset, y: (wf.position?.y ?? 0) + offset };
        const copy: WfNode = { ...structuredClone(wf), id, position };
        return { id, type: NODE_TYPE, position: { ...position }, data: { wf: copy }, selected: true };
      });
      const edgeIds = new Set(s.graph.edges.map((e) => e.id));
      const addedEdges = cb.edges.map((e) => {
        const from = rename.get(e.from)!;
        const to = rename.get(e.to)!;
        const id = freshEdgeId(from, e.fromPort ?? DEFAULT_OUT, to, edgeIds);
        edgeIds.add(id);
        return toGraphEdge({ ...e, from, to }, id);
      });
      const graph: Graph = {
        ...s.graph,
        nodes: [...setSelection(s.graph.nodes, new Set()), ...added],
        edges: [...setEdgeSelection(s.graph.edges, new Set()), ...addedEdges],
      };
      return { ...commit(s, graph), pasteCount: s.pasteCount + 1 };
    }

    case 'undo': {
      const prev = s.past[s.past.length - 1];
      if (!prev) return s;
      return {
        ...s,
        graph: prev,
        past: s.past.slice(0, -1),
        future: [s.graph, ...s.future],
        dirty: true,
        revision: s.revision + 1,
        dragging: false,
        lastKey: null,
      };
    }

    case 'redo': {
      const next = s.future[0];
      if (!next) return s;
      return {
        ...s,
        graph: next,
        past: [...s.past, s.graph],
        future: s.future.slice(1),
        dirty: true,
        revision: s.revision + 1,
        dragging: false,
        lastKey: null,
      };
    }

    case 'select': {
      const ids = new Set(a.nodeIds);
      const nodes = setSelection(s.graph.nodes, ids);
      const edges = setEdgeSelection(s.graph.edges, new Set(a.edgeIds ?? []));
      return { ...s, graph: { ...s.graph, nodes, edges } };
    }

    case 'selectAll': {
      const ids = new Set(s.graph.nodes.map((n) => n.id));
      return { ...s, graph: { ...s.graph, nodes: setSelection(s.graph.nodes, ids) } };
    }

    case 'layout': {
      let changed = false;
      const nodes = s.graph.nodes.map((n) => {
        const p = a.positions[n.id];
        if (!p || (p.x === n.position.x && p.y === n.position.y)) return n;
        changed = true;
        return { ...n, position: { x: p.x, y: p.y } };
      });
      return changed ? commit(s, { ...s.graph, nodes }) : s;
    }

    case 'replaceDocument':
      return commit(s, reconcileGraph(s.graph, a.workflow));
  }
}

/** The selected graph nodes. */
export function selectedNodes(s: EditorState): GNode[] {
  return s.graph.nodes.filter((n) => n.selected);
}
