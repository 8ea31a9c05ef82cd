import { describe, expect, it } from 'vitest';
import { lineDiff } from '../src/model/diff';
import { defaultConfig, freshNodeId, jsonPointer, outputPorts, type NodeTypeDescriptor } from '../src/model/workflow';
import { buildUrl } from '../src/api/client';
import { autoLayout } from '../src/graph/layout';

const desc = (extra: Partial<NodeTypeDescriptor>): NodeTypeDescriptor => ({
  type: 't.x',
  version: 1,
  category: 'condition',
  title: 'X',
  description: '',
  configSchema: {},
  execution: { kind: 'native' },
  ...extra,
});

describe('ports', () => {
  it('uses the descriptor ports, switch cases, config-dependent ports and the error port', () => {
    const iff = desc({ outputPorts: [{ name: 'true', required: true }, { name: 'false' }] });
    expect(outputPorts({ id: 'a', type: 'condition.if' }, iff).map((p) => p.name)).toEqual(['true', 'false']);
    const sw = desc({
      outputPorts: [{ name: 'default' }],
      portRules: [{ kind: 'fromConfigArray', pointer: '/cases', nameField: 'port', required: true, append: [{ name: 'default' }] }],
    });
    expect(outputPorts({ id: 's', type: 'condition.switch', config: { cases: [{ port: 'gold' }, { port: 'silver' }] } }, sw).map((p) => p.name)).toEqual([
      'gold',
      'silver',
      'default',
    ]);
    const val = desc({ portRules: [{ kind: 'whenConfigEquals', pointer: '/onInvalid', equals: 'route', ports: [{ name: 'valid' }, { name: 'invalid' }] }] });
    expect(outputPorts({ id: 'v', type: 'transform.validate', config: { onInvalid: 'route' } }, val).map((p) => p.name)).toEqual(['valid', 'invalid']);
    expect(outputPorts({ id: 'v', type: 'transform.validate', config: { onInvalid: 'fail' } }, val).map((p) => p.name)).toEqual(['out']);
    expect(outputPorts({ id: 'h', type: 'action.http', onError: { action: 'route' } }, undefined).map((p) => p.name)).toEqual(['out', 'error']);
  });

  it('makes fresh ids and default configs', () => {
    expect(freshNodeId('action.http', new Set())).toBe('http_1');
    expect(freshNodeId('action.http', new Set(['http_1']))).toBe('http_2');
    expect(freshNodeId('enrich', new Set(['enrich']))).toBe('enrich_1');
    expect(freshNodeId('http_1', new Set(['http_1', 'http_2']))).toBe('http_3');
    expect(freshNodeId('plugin.text-stats', new Set())).toBe('text_stats_1');
    expect(defaultConfig({ properties: { method: { default: 'GET' }, url: { type: 'string' } } })).toEqual({ method: 'GET' });
    expect(jsonPointer({ a: [{ 'b/c': 1 }] }, '/a/0/b~1c')).toBe(1);
  });
});

describe('version diff', () => {
  it('shows added and removed lines', () => {
    const d = lineDiff('a\nb\nc\nd', 'a\nc\nd\ne');
    expect(d).toEqual([
      { kind: 'same', text: 'a' },
      { kind: 'del', text: 'b' },
      { kind: 'same', text: 'c' },
      { kind: 'same', text: 'd' },
      { kind: 'add', text: 'e' },
    ]);
    expect(lineDiff('x', 'x')).toEqual([{ kind: 'same', text: 'x' }]);
    expect(lineDiff('', 'a')).toEqual(expect.arrayContaining([{ kind: 'del', text: '' }, { kind: 'add', text: 'a' }]));
  });

  it('reconstructs both sides of a random edit', () => {
    const a = Array.from({ length: 300 }, (_, i) => `line ${i % 37}`);
    const b = a.filter((_, i) => i % 7 !== 0).map((l, i) => (i % 11 === 0 ? `${l}!` : l));
    const d = lineDiff(a.join('\n'), b.join('\n'));
    expect(d.filter((o) => o.kind !== 'add').map((o) => o.text)).toEqual(a);
    expect(d.filter((o) => o.kind !== 'del').map((o) => o.text)).toEqual(b);
  });
});

describe('api urls and layout', () => {
  it('fills path parameters and drops empty query values', () => {
    expect(buildUrl('/v1/workflows/{id}/versions/{version}', { id: 'a b', version: 3 })).toBe('/v1/workflows/a%20b/versions/3');
    expect(buildUrl('/v1/runs', undefined, { workflowId: 'w', status: '', cursor: undefined })).toBe('/v1/runs?workflowId=w');
  });

  it('lays a chain out left to right', () => {
    const p = autoLayout({ nodes: [{ id: 'a' }, { id: 'b' }, { id: 'c' }], edges: [{ source: 'a', target: 'b' }, { source: 'b', target: 'c' }] });
    expect(p.a!.x).toBeLessThan(p.b!.x);
    expect(p.b!.x).toBeLessThan(p.c!.x);
    expect(p.a!.y).toBe(p.b!.y);
  });
});

import { availableExpressions, inLoopBody, upstreamOf } from '../src/model/expressions';
import { examples, tiny } from './helpers';

describe('upstream outputs for expressions', () => {
  it('lists the nodes upstream, nearest first, with their output paths', () => {
    expect(upstreamOf(tiny, 'yes')).toEqual(['check', 'start']);
    const a = availableExpressions(tiny, 'yes');
    expect(a.upstream.map((u) => u.nodeId)).toEqual(['check', 'start']);
    expect(a.upstream[0]!.expressions).toEqual(['$.nodes.check.port']);
    expect(a.upstream[1]!.expressions[0]).toBe('$.nodes.start.output');
    expect(a.context).toContain('$.run.executionName');
    expect(availableExpressions(tiny, 'start').upstream).toEqual([]);
  });

  it('offers form fields and uses JSONata names in JSONata workflows', () => {
    const all = Object.fromEntries(examples());
    const exp = availableExpressions(all['expense-approval.json']!, 'payout');
    const form = exp.upstream.find((u) => u.nodeId === 'claim_form')!;
    expect(form.expressions).toContain('$.nodes.claim_form.output.employeeEmail');
    const jsonata = all['signup-triage-jsonata.json']!;
    const last = jsonata.nodes.at(-1)!.id;
    const j = availableExpressions(jsonata, last);
    expect(j.upstream.every((u) => u.expressions.every((e) => e.startsWith('$nodes.')))).toBe(true);
    expect(j.context[0]).toBe('$run.executionName');
  });

  it('knows for-each bodies', () => {
    const all = Object.fromEntries(examples());
    const sync = all['scheduled-sync.json']!;
    const each = sync.edges!.find((e) => e.fromPort === 'each')!;
    expect(inLoopBody(sync, each.to)).toBe(true);
    expect(availableExpressions(sync, each.to).context.slice(0, 2)).toEqual(['$.item', '$.index']);
    expect(inLoopBody(sync, sync.nodes[0]!.id)).toBe(false);
  });
});
