import { describe, expect, it } from 'vitest';
import { graphToWorkflow, reconcileGraph, workflowToGraph } from '../src/graph/mapping';
import { examples, tiny } from './helpers';

describe('workflow ↔ graph mapping', () => {
  const all = examples();

  it('finds the examples', () => {
    expect(all.length).toBeGreaterThanOrEqual(5);
  });

  for (const [file, wf] of all) {
    it(`${file} maps to a graph and back unchanged`, () => {
      const g = workflowToGraph(wf);
      expect(g.nodes).toHaveLength(wf.nodes.length);
      expect(g.edges).toHaveLength(wf.edges?.length ?? 0);
      const back = graphToWorkflow(g);
      expect(back).toEqual(wf);
      // Same key order too, so the JSON tab shows the document as written.
      expect(JSON.stringify(back)).toBe(JSON.stringify(wf));
    });
  }

  it('maps ports to handles', () => {
    const g = workflowToGraph(tiny);
    expect(g.edges[0]).toMatchObject({ source: 'start', target: 'check', sourceHandle: 'out', targetHandle: 'in' });
    expect(g.edges[1]).toMatchObject({ source: 'check', target: 'yes', sourceHandle: 'true' });
  });

  it('writes a moved node position back and keeps missing positions missing', () => {
    const wf = { id: 'p', name: 'P', nodes: [{ id: 'a', type: 'trigger.manual' }, { id: 'b', type: 'transform.set' }] };
    const g = workflowToGraph(wf);
    expect(graphToWorkflow(g)).toEqual(wf);
    g.nodes[1] = { ...g.nodes[1]!, position: { x: 5, y: 6 } };
    const back = graphToWorkflow(g);
    expect(back.nodes[0]).toEqual({ id: 'a', type: 'trigger.manual' });
    expect(back.nodes[1]).toEqual({ id: 'b', type: 'transform.set', position: { x: 5, y: 6 } });
  });

  it('gives duplicate node ids distinct canvas ids', () => {
    const wf = { id: 'd', name: 'D', nodes: [{ id: 'a', type: 'trigger.manual' }, { id: 'a', type: 'transform.set' }], edges: [] };
    const g = workflowToGraph(wf);
    expect(new Set(g.nodes.map((n) => n.id)).size).toBe(2);
    expect(graphToWorkflow(g)).toEqual(wf);
  });

  it('gives duplicate edges distinct ids', () => {
    const wf = { ...tiny, edges: [...tiny.edges!, { from: 'start', to: 'check' }] };
    const g = workflowToGraph(wf);
    expect(new Set(g.edges.map((e) => e.id)).size).toBe(3);
    expect(graphToWorkflow(g)).toEqual(wf);
  });

  it('reconciles a JSON edit keeping untouched nodes identical', () => {
    const g = workflowToGraph(tiny);
    const edited = structuredClone(tiny);
    edited.nodes[2]!.config = { fields: { a: 2 } };
    const next = reconcileGraph(g, edited);
    expect(next.nodes[0]).toBe(g.nodes[0]);
    expect(next.nodes[1]).toBe(g.nodes[1]);
    expect(next.nodes[2]).not.toBe(g.nodes[2]);
    expect(next.edges[0]).toBe(g.edges[0]);
    expect(graphToWorkflow(next)).toEqual(edited);
  });
});
