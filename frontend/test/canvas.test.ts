// The canvas's performance levers that are plain functions: the first viewport fitted before
// rendering, decoration that keeps `data` when a node only moves, far-out edges as one path.

import { applyNodeChanges, getViewportForBounds, type InternalNode } from '@xyflow/react';
import { describe, expect, it } from 'vitest';
import { farEdgePaths } from '../src/canvas/FarEdges';
import { miniMapPaths } from '../src/canvas/MiniMap';
import { Decorator, type ViewNode } from '../src/graph/decorate';
import { workflowToGraph, type GNode } from '../src/graph/mapping';
import { estimatedSize, fitViewport, NODE_WIDTH } from '../src/graph/viewport';
import { tiny } from './helpers';

const fit = { padding: 0.15, minZoom: 0.05, maxZoom: 1.2 };

describe('first viewport', () => {
  it('fits the document positions with estimated sizes, as fitView would', () => {
    const nodes = [
      { position: { x: 0, y: 0 } },
      { position: { x: 1000, y: 500 }, data: { ports: [{}, {}] } },
    ];
    const v = fitViewport(nodes, 800, 600, fit)!;
    const h = estimatedSize(nodes[1]!).height;
    expect(h).toBeGreaterThan(estimatedSize(nodes[0]!).height);
    expect(v).toEqual(getViewportForBounds({ x: 0, y: 0, width: 1000 + NODE_WIDTH, height: 500 + h }, 800, 600, 0.05, 1.2, 0.15));
    expect(v.zoom).toBeLessThan(1);
  });

  it('prefers measured sizes, caps the zoom, and gives up without a pane', () => {
    expect(estimatedSize({ position: { x: 0, y: 0 }, measured: { width: 300, height: 90 } })).toEqual({ width: 300, height: 90 });
    expect(fitViewport([{ position: { x: 10, y: 10 } }], 1600, 1000, fit)!.zoom).toBe(1.2);
    expect(fitViewport([{ position: { x: 0, y: 0 } }], 0, 0, fit)).toBeNull();
    expect(fitViewport([], 800, 600, fit)).toEqual({ x: 0, y: 0, zoom: 1 });
  });
});

describe('decoration across moves and measurements', () => {
  it('keeps the data object (the node component does not render again) while only position, size or selection change', () => {
    const registry = new Map();
    const ctx = { registry, problemsByNode: new Map(), problemsByEdge: new Map() };
    const g = workflowToGraph(tiny);
    const d = new Decorator();
    const a = d.decorateNodes(g.nodes, g.edges, ctx);
    const moved = applyNodeChanges<GNode>(
      [
        { type: 'position', id: 'check', position: { x: 300, y: 20 } },
        { type: 'dimensions', id: 'yes', dimensions: { width: 180, height: 50 } },
        { type: 'select', id: 'start', selected: true },
      ],
      g.nodes,
    );
    const b = d.decorateNodes(moved, g.edges, ctx);
    for (let i = 0; i < 3; i += 1) {
      expect(b[i]).not.toBe(a[i]);
      expect(b[i]!.data).toBe(a[i]!.data);
    }
    expect(b[1]!.position).toEqual({ x: 300, y: 20 });
    expect(b[0]!.selected).toBe(true);
    // An edit of the document node makes new data.
    const edited = moved.map((n) => (n.id === 'yes' ? { ...n, data: { ...n.data, wf: { ...n.data.wf, name: 'Yes!' } } } : n));
    const c = d.decorateNodes(edited, g.edges, ctx);
    expect(c[2]!.data).not.toBe(b[2]!.data);
    expect(c[2]!.data.label).toBe('Yes!');
    expect(c[0]).toBe(b[0]);
  });
});

describe('measured sizes', () => {
  it('stay out of the state: changes without them go on, new node objects carry the last size', () => {
    const registry = new Map();
    const ctx = { registry, problemsByNode: new Map(), problemsByEdge: new Map() };
    const g = workflowToGraph(tiny);
    const d = new Decorator();
    const a = d.decorateNodes(g.nodes, g.edges, ctx);
    expect(a[0]!.measured).toBeUndefined();
    const { rest, measured } = d.noteDimensions<GNode>([
      { type: 'dimensions', id: 'start', dimensions: { width: 180, height: 46 } },
      { type: 'select', id: 'check', selected: true },
    ]);
    expect(measured).toBe(true);
    expect(rest).toEqual([{ type: 'select', id: 'check', selected: true }]);
    expect(d.sizeOf('start')).toEqual({ width: 180, height: 46 });
    // Unchanged nodes keep their objects (React Flow keeps what it measured for them) …
    expect(d.decorateNodes(g.nodes, g.edges, ctx)[0]).toBe(a[0]);
    // … a moved node gets a new object with the size.
    const moved = applyNodeChanges<GNode>([{ type: 'position', id: 'start', position: { x: 5, y: 5 } }], g.nodes);
    expect(d.decorateNodes(moved, g.edges, ctx)[0]!.measured).toEqual({ width: 180, height: 46 });
    expect(d.noteDimensions<GNode>([{ type: 'select', id: 'check', selected: false }]).measured).toBe(false);
  });
});

describe('far-out edges', () => {
  const handle = (id: string, type: 'source' | 'target', x: number, y: number) => ({ id, type, nodeId: '', position: type === 'source' ? 'right' : 'left', x, y, width: 9, height: 9 });
  const node = (id: string, x: number, y: number, source: ReturnType<typeof handle>[], target: ReturnType<typeof handle>[]) =>
    [id, { id, position: { x, y }, data: {}, measured: { width: 180, height: 50 }, internals: { positionAbsolute: { x, y }, z: 0, userNode: {}, handleBounds: { source, target } } }] as const;

  it('draws every edge from its source handle to its target handle, by problem and selection', () => {
    const lookup = new Map<string, InternalNode>([
      node('a', 0, 0, [handle('out', 'source', 175, 20)], []),
      node('b', 300, 100, [handle('true', 'source', 175, 40), handle('false', 'source', 175, 56)], [handle('in', 'target', -4, 20)]),
      node('c', 600, 0, [], [handle('in', 'target', -4, 20)]),
    ] as unknown as [string, InternalNode][]);
    const edges = [
      { id: 'e1', source: 'a', target: 'b', sourceHandle: 'out', targetHandle: 'in' },
      { id: 'e2', source: 'b', target: 'c', sourceHandle: 'false', targetHandle: 'in', className: 'edge-error' },
      { id: 'e3', source: 'b', target: 'c', sourceHandle: 'true', targetHandle: 'in', selected: true },
      { id: 'e4', source: 'b', target: 'missing', sourceHandle: 'true', targetHandle: 'in' },
      { id: 'e5', source: 'a', target: 'c', sourceHandle: 'nope', targetHandle: 'in' },
    ];
    const d = farEdgePaths(edges, lookup);
    // a's `out` handle ends at x 0 + 175 + 9, centre y 0 + 20 + 4.5; b's target starts at 300 − 4.
    expect(d.plain.startsWith('M184,24.5 C')).toBe(true);
    expect(d.plain.endsWith('296,124.5')).toBe(true);
    expect(d.plain.match(/M/g)).toHaveLength(1);
    expect(d.error.startsWith('M484,160.5')).toBe(true);
    expect(d.selected.startsWith('M484,144.5')).toBe(true);
    expect(d.warning).toBe('');
    expect(d.moving).toBe('');
    // The edges of a node being dragged get their own path.
    const dragging = new Map(lookup);
    dragging.set('a', { ...lookup.get('a')!, dragging: true } as InternalNode);
    const m = farEdgePaths(edges, dragging);
    expect(m.plain).toBe('');
    expect(m.moving).toBe(d.plain);
  });
});

describe('minimap', () => {
  it('draws the nodes as one path per colour, with measured or estimated sizes, and their bounds', () => {
    const n = (id: string, x: number, y: number, status?: string, measured?: { width: number; height: number }) =>
      ({ id, position: { x, y }, measured, data: { ports: [{ name: 'out' }], status } }) as unknown as ViewNode;
    const nodes = [n('a', 0, 0), n('b', 300, 100, 'succeeded', { width: 200, height: 60 }), n('c', -100, 400), { ...n('d', 5000, 5000), hidden: true }];
    const { paths, bounds } = miniMapPaths(nodes, (x) => (x.data.status === 'succeeded' ? 'green' : 'grey'));
    expect(paths).toEqual([
      ['grey', 'M0,0h180v50h-180zM-100,400h180v50h-180z'],
      ['green', 'M300,100h200v60h-200z'],
    ]);
    expect(bounds).toEqual({ x: -100, y: 0, width: 600, height: 450 });
    expect(miniMapPaths([], () => 'grey')).toEqual({ paths: [], bounds: null });
  });
});
