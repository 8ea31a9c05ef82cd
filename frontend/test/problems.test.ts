import { describe, expect, it } from 'vitest';
import type { Finding } from '../src/api/types';
import { buildProblems, configErrorSchema, worst } from '../src/graph/problems';
import { workflowToGraph } from '../src/graph/mapping';
import { tiny } from './helpers';

const edgeIds = workflowToGraph(tiny).edges.map((e) => e.id);

describe('validation display', () => {
  it('places findings on nodes by nodeId or path', () => {
    const findings: Finding[] = [
      { code: 'node.invalid_config', severity: 'error', nodeId: 'yes', path: '/nodes/2/config', message: 'config: "fields" is a required property' },
      { code: 'trigger.invalid_config', severity: 'error', nodeId: 'start', path: '/config', message: 'bad cron' },
      { code: 'template.not_upstream', severity: 'warning', path: '/nodes/1/config/rules/0/field', message: 'not upstream' },
    ];
    const p = buildProblems(findings, tiny, edgeIds);
    expect(p.byNode.get('yes')!.map((x) => x.finding.code)).toEqual(['node.invalid_config']);
    expect(p.byNode.get('start')!.map((x) => x.finding.code)).toEqual(['trigger.invalid_config']);
    expect(p.byNode.get('check')![0]!.configPointer).toBe('/rules/0/field');
    expect(p.errors).toBe(2);
    expect(p.warnings).toBe(1);
    expect(worst(p.byNode.get('check'))).toBe('warning');
    expect(worst(p.byNode.get('yes'))).toBe('error');
    expect(worst(undefined)).toBeUndefined();
  });

  it('places edge findings on graph edges', () => {
    const p = buildProblems(
      [
        { code: 'edge.unknown_port', severity: 'error', edge: 1, path: '/edges/1/fromPort', message: 'no port' },
        { code: 'edge.duplicate', severity: 'warning', path: '/edges/0', message: 'twice' },
      ],
      tiny,
      edgeIds,
    );
    expect(p.byEdge.get(edgeIds[1]!)![0]!.finding.code).toBe('edge.unknown_port');
    expect(p.byEdge.get(edgeIds[0]!)![0]!.finding.code).toBe('edge.duplicate');
    expect(p.list[0]!.edgeId).toBe(edgeIds[1]);
  });

  it('marks every node of a cycle and focuses the first', () => {
    const p = buildProblems([{ code: 'graph.cycle', severity: 'error', path: '/edges', nodes: ['check', 'yes'], message: 'check -> yes -> check' }], tiny, edgeIds);
    expect(p.list[0]!.nodeId).toBe('check');
    expect(p.byNode.get('yes')).toHaveLength(1);
    expect(p.byNode.get('check')).toHaveLength(1);
  });

  it('finds the node of a parse finding in its message', () => {
    const p = buildProblems(
      [{ code: 'parse.shape', severity: 'error', path: '', message: 'nodes[2].bogus: unknown field `bogus` (line 1, column 71)' }],
      tiny,
      edgeIds,
    );
    expect(p.list[0]!.nodeId).toBe('yes');
  });

  it('lists errors before warnings and keeps general findings', () => {
    const p = buildProblems(
      [
        { code: 'asl.history_near_limit', severity: 'warning', path: '', message: 'w' },
        { code: 'graph.no_trigger', severity: 'error', path: '/nodes', message: 'e' },
      ],
      tiny,
      edgeIds,
    );
    expect(p.list.map((x) => x.severity)).toEqual(['error', 'warning']);
    expect(p.list[0]!.nodeId).toBeUndefined();
  });

  it('turns config findings into inline form errors', () => {
    const p = buildProblems(
      [
        { code: 'node.invalid_config', severity: 'error', nodeId: 'yes', path: '/nodes/2/config', message: 'config: "url" is a required property' },
        { code: 'node.invalid_config', severity: 'error', nodeId: 'yes', path: '/nodes/2/config/auth/secret', message: 'too short' },
        { code: 'node.unreachable', severity: 'error', nodeId: 'yes', path: '/nodes/2', message: 'unreachable' },
      ],
      tiny,
      edgeIds,
    );
    // Missing required fields are left to the form's own validation.
    expect(configErrorSchema(p.byNode.get('yes'))).toEqual({
      auth: { secret: { __errors: ['too short'] } },
    });
  });
});
