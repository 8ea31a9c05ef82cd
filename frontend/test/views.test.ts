import { describe, expect, it } from 'vitest';
import { groupPalette } from '../src/canvas/Palette';
import { workflowShapeError, syntaxError } from '../src/editor/JsonTab';
import { Decorator } from '../src/graph/decorate';
import { workflowToGraph } from '../src/graph/mapping';
import { buildProblems } from '../src/graph/problems';
import { initialLive, reduceLive } from '../src/live/runState';
import { needsJsonField, prepareConfigForm, runInputSchema } from '../src/forms/schemaForm';
import type { NodeTypeDescriptor } from '../src/model/workflow';
import { tiny } from './helpers';

const types: NodeTypeDescriptor[] = [
  { type: 'trigger.manual', version: 1, category: 'trigger', title: 'Manual', description: 'Start by hand', configSchema: {}, execution: { kind: 'trigger' } },
  { type: 'condition.if', version: 1, category: 'condition', title: 'If', description: 'Branch', configSchema: {}, outputPorts: [{ name: 'true' }, { name: 'false' }], execution: { kind: 'native' } },
  { type: 'transform.set', version: 1, category: 'transform', title: 'Set fields', description: 'Build an object', configSchema: {}, execution: { kind: 'native' } },
  { type: 'action.http', version: 1, category: 'action', title: 'HTTP request', description: 'Call an API', configSchema: {}, execution: { kind: 'nodeRunner' } },
];
const registry = new Map(types.map((t) => [t.type, t]));

describe('palette', () => {
  it('groups by category in palette order and searches type, title and description', () => {
    expect(groupPalette(types, '').map(([c]) => c)).toEqual(['trigger', 'transform', 'condition', 'action']);
    expect(groupPalette(types, 'api').flatMap(([, l]) => l.map((t) => t.type))).toEqual(['action.http']);
    expect(groupPalette(types, 'BRANCH').flatMap(([, l]) => l.map((t) => t.type))).toEqual(['condition.if']);
    expect(groupPalette(types, 'zzz')).toEqual([]);
  });
});

describe('canvas decoration', () => {
  it('keeps unchanged nodes and edges identical across renders', () => {
    const g = workflowToGraph(tiny);
    const d = new Decorator();
    const ctx = { registry, problemsByNode: new Map(), problemsByEdge: new Map() };
    const a = d.decorateNodes(g.nodes, g.edges, ctx);
    expect(a[1]!.data.ports.map((p) => p.name)).toEqual(['true', 'false']);
    expect(a[0]!.data.trigger).toBe(true);
    expect(a[2]!.data.label).toBe('yes');
    const b = d.decorateNodes(g.nodes, g.edges, ctx);
    expect(b[0]).toBe(a[0]);
    // A finding on one node changes only that node.
    const problems = buildProblems([{ code: 'x', severity: 'error', nodeId: 'yes', path: '/nodes/2', message: 'bad' }], tiny, g.edges.map((e) => e.id));
    const c = d.decorateNodes(g.nodes, g.edges, { ...ctx, problemsByNode: problems.byNode });
    expect(c[0]).toBe(a[0]);
    expect(c[2]).not.toBe(a[2]);
    expect(c[2]!.data).toMatchObject({ problem: 'error', problemCount: 1 });
    // A run status on one node changes only that node.
    const live = reduceLive(initialLive('r'), { type: 'node.started', runId: 'r', workflowId: 'w', eventId: 1, atMs: 1, nodeId: 'check' });
    const e = d.decorateNodes(g.nodes, g.edges, { ...ctx, problemsByNode: problems.byNode, statuses: live.nodes });
    expect(e[2]).toBe(c[2]);
    expect(e[1]!.data.status).toBe('running');
  });

  it('draws ports that edges use but the type does not list, and marks problem edges', () => {
    const wf = { ...tiny, edges: [...tiny.edges!, { from: 'check', fromPort: 'maybe', to: 'yes' }] };
    const g = workflowToGraph(wf);
    const d = new Decorator();
    const problems = buildProblems([{ code: 'edge.unknown_port', severity: 'error', edge: 2, path: '/edges/2/fromPort', message: 'no port maybe' }], wf, g.edges.map((e) => e.id));
    const ctx = { registry, problemsByNode: problems.byNode, problemsByEdge: problems.byEdge };
    const nodes = d.decorateNodes(g.nodes, g.edges, ctx);
    expect(nodes[1]!.data.ports.map((p) => p.name)).toEqual(['true', 'false', 'maybe']);
    const edges = d.decorateEdges(g.edges, ctx);
    expect(edges[2]!.className).toBe('edge-error');
    expect(edges[0]).toBe(g.edges[0]);
  });
});

describe('JSON editing', () => {
  it('accepts workflow-shaped documents with the same id only', () => {
    expect(workflowShapeError(tiny, 'tiny')).toBeNull();
    expect(workflowShapeError(tiny, 'other')).toMatch(/id must stay/);
    expect(workflowShapeError([], 'tiny')).toMatch(/object/);
    expect(workflowShapeError({ ...tiny, nodes: {} }, 'tiny')).toMatch(/nodes/);
    expect(workflowShapeError({ ...tiny, nodes: [{ id: 'a' }] }, 'tiny')).toMatch(/nodes\[0\]\.type/);
    expect(workflowShapeError({ ...tiny, nodes: [{ id: 'a', type: 't', position: { x: 'no' } }] }, 'tiny')).toMatch(/position/);
    expect(workflowShapeError({ ...tiny, edges: [{ from: 'a' }] }, 'tiny')).toMatch(/edges\[0\]/);
  });

  it('locates syntax errors', () => {
    const text = '{\n  "a": ,\n}';
    let err: Error | null = null;
    try {
      JSON.parse(text);
    } catch (e) {
      err = e as Error;
    }
    expect(syntaxError(text, err!)).toMatch(/line 2/);
  });
});

describe('config forms', () => {
  it('sends free-form values to the JSON field and keeps plain fields', () => {
    expect(needsJsonField({})).toBe(true);
    expect(needsJsonField({ description: 'any' })).toBe(true);
    expect(needsJsonField({ type: 'object' })).toBe(true);
    expect(needsJsonField({ type: ['string', 'number'] })).toBe(true);
    expect(needsJsonField({ type: ['string', 'null'] })).toBe(false);
    expect(needsJsonField({ type: 'array', items: { $ref: '#/$defs/rule' } })).toBe(true);
    expect(needsJsonField({ type: 'array', items: { type: 'string' } })).toBe(false);
    expect(needsJsonField({ enum: ['a'] })).toBe(false);
    expect(needsJsonField({ type: 'string' })).toBe(false);
    const p = prepareConfigForm({
      type: 'object',
      properties: { url: { type: 'string' }, body: {}, seconds: { anyOf: [{ type: 'integer' }, { type: 'string' }], description: 'wait' }, auth: { type: 'object', properties: { secret: { type: 'string' }, extra: {} } } },
      oneOf: [{ required: ['url'] }, { required: ['body'] }],
    });
    expect(p.uiSchema.body).toEqual({ 'ui:field': 'cmJson' });
    expect(p.uiSchema.url).toBeUndefined();
    expect(p.uiSchema.auth).toEqual({ extra: { 'ui:field': 'cmJson' } });
    expect('oneOf' in p.schema).toBe(false);
    expect(p.uiSchema.seconds).toEqual({ 'ui:field': 'cmJson' });
    expect((p.schema.properties as Record<string, unknown>).seconds).toEqual({ title: 'seconds', description: 'wait' });
  });

  it('finds the run input schema of a trigger', () => {
    expect(runInputSchema('trigger.manual', { inputSchema: { type: 'object' } })).toEqual({ type: 'object' });
    expect(runInputSchema('trigger.form', { schema: { type: 'object', properties: {} } })).toEqual({ type: 'object', properties: {} });
    expect(runInputSchema('trigger.webhook', {})).toBeNull();
  });
});

import { jsonErrorOffset } from '../src/editor/JsonTab';

describe('JSON error offsets', () => {
  it('points at the first bad character', () => {
    expect(jsonErrorOffset('{"a": 1}')).toBe(-1);
    expect(jsonErrorOffset('{"a": ,}')).toBe(6);
    expect(jsonErrorOffset('[1, 2,]')).toBe(6);
    expect(jsonErrorOffset('{"a": tru}')).toBe(6);
    expect(jsonErrorOffset('{"a": 1} x')).toBe(9);
    expect(jsonErrorOffset('{"a": "x\\"y", "b": [true, null, -1.5e3, {}]}')).toBe(-1);
    expect(jsonErrorOffset('{"a": 1')).toBe(7);
  });
});
