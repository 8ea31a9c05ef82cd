import { describe, expect, it } from 'vitest';
import { editorReducer, editorWorkflow, initEditor, type EditorAction, type EditorState } from '../src/graph/editorState';
import { examples, tiny } from './helpers';

const run = (s: EditorState, ...actions: EditorAction[]) => actions.reduce(editorReducer, s);

describe('graph edits', () => {
  it('adds a node with a fresh id, selected, as one undo step', () => {
    const s = run(initEditor(tiny), { type: 'addNode', nodeType: 'action.http', position: { x: 10.4, y: 20.6 }, config: { url: 'x' } });
    const wf = editorWorkflow(s);
    expect(wf.nodes.map((n) => n.id)).toEqual(['start', 'check', 'yes', 'http_1']);
    expect(wf.nodes[3]).toEqual({ id: 'http_1', type: 'action.http', config: { url: 'x' }, position: { x: 10, y: 21 } });
    expect(s.graph.nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(['http_1']);
    expect(s.dirty).toBe(true);
    const s2 = run(s, { type: 'addNode', nodeType: 'action.http', position: { x: 0, y: 0 } });
    expect(editorWorkflow(s2).nodes[4]!.id).toBe('http_2');
    expect(editorWorkflow(run(s2, { type: 'undo' }, { type: 'undo' }))).toEqual(tiny);
  });

  it('connects ports and refuses self-loops, edges into triggers and duplicates', () => {
    let s = run(initEditor(tiny), { type: 'addNode', nodeType: 'transform.set', position: { x: 0, y: 0 } });
    s = run(s, { type: 'connect', connection: { source: 'check', sourceHandle: 'false', target: 'set_1', targetHandle: 'in' } });
    expect(editorWorkflow(s).edges).toContainEqual({ from: 'check', fromPort: 'false', to: 'set_1' });
    const before = s;
    s = run(
      s,
      { type: 'connect', connection: { source: 'check', sourceHandle: 'false', target: 'set_1', targetHandle: 'in' } },
      { type: 'connect', connection: { source: 'set_1', sourceHandle: 'out', target: 'set_1', targetHandle: 'in' } },
      { type: 'connect', connection: { source: 'set_1', sourceHandle: 'out', target: 'start', targetHandle: 'in' } },
    );
    expect(s).toBe(before);
    s = run(s, { type: 'connect', connection: { source: 'yes', sourceHandle: 'out', target: 'set_1', targetHandle: 'in' } });
    expect(editorWorkflow(s).edges!.at(-1)).toEqual({ from: 'yes', to: 'set_1' });
  });

  it('removes selected nodes with their edges, and selected edges', () => {
    let s = run(initEditor(tiny), { type: 'select', nodeIds: ['check'] }, { type: 'deleteSelected' });
    let wf = editorWorkflow(s);
    expect(wf.nodes.map((n) => n.id)).toEqual(['start', 'yes']);
    expect(wf.edges).toEqual([]);
    s = run(s, { type: 'undo' });
    expect(editorWorkflow(s)).toEqual(tiny);
    const edgeId = s.graph.edges[1]!.id;
    s = run(s, { type: 'select', nodeIds: [], edgeIds: [edgeId] }, { type: 'deleteSelected' });
    wf = editorWorkflow(s);
    expect(wf.nodes).toHaveLength(3);
    expect(wf.edges).toEqual([{ from: 'start', to: 'check' }]);
  });

  it('selection alone is not an edit', () => {
    const s0 = initEditor(tiny);
    const s = run(s0, { type: 'select', nodeIds: ['yes'] }, { type: 'selectAll' });
    expect(s.past).toHaveLength(0);
    expect(s.dirty).toBe(false);
    const unchanged = run(s0, { type: 'deleteSelected' });
    expect(unchanged).toBe(s0);
  });

  it('undoes and redoes, and a new edit clears the redo stack', () => {
    let s = run(
      initEditor(tiny),
      { type: 'updateNode', id: 'yes', patch: { name: 'Yes!' } },
      { type: 'updateNode', id: 'yes', patch: { timeoutSeconds: 5 } },
    );
    expect(editorWorkflow(s).nodes[2]).toMatchObject({ name: 'Yes!', timeoutSeconds: 5 });
    s = run(s, { type: 'undo' });
    expect(editorWorkflow(s).nodes[2]).toMatchObject({ name: 'Yes!' });
    expect(editorWorkflow(s).nodes[2]!.timeoutSeconds).toBeUndefined();
    s = run(s, { type: 'redo' });
    expect(editorWorkflow(s).nodes[2]).toMatchObject({ timeoutSeconds: 5 });
    s = run(s, { type: 'undo' }, { type: 'undo' });
    expect(editorWorkflow(s)).toEqual(tiny);
    expect(s.future).toHaveLength(2);
    s = run(s, { type: 'updateNode', id: 'start', patch: { name: 'Go' } });
    expect(s.future).toHaveLength(0);
    expect(run(s, { type: 'redo' })).toBe(s);
  });

  it('coalesces typing in one field into one undo step', () => {
    let s = initEditor(tiny);
    for (const name of ['Y', 'Ye', 'Yes']) {
      s = run(s, { type: 'updateNode', id: 'yes', patch: { name }, coalesce: 'name' });
    }
    expect(s.past).toHaveLength(1);
    expect(editorWorkflow(run(s, { type: 'undo' }))).toEqual(tiny);
  });

  it('removes a field patched to undefined', () => {
    const s = run(initEditor(tiny), { type: 'updateNode', id: 'yes', patch: { config: undefined } });
    expect('config' in editorWorkflow(s).nodes[2]!).toBe(false);
  });

  it('records a drag as one undo step', () => {
    let s = initEditor(tiny);
    s = run(
      s,
      { type: 'nodesChange', changes: [{ type: 'position', id: 'yes', position: { x: 510, y: -90 }, dragging: true }] },
      { type: 'nodesChange', changes: [{ type: 'position', id: 'yes', position: { x: 600, y: 0 }, dragging: true }] },
      { type: 'nodesChange', changes: [{ type: 'position', id: 'yes', position: { x: 610, y: 10 }, dragging: false }] },
    );
    expect(editorWorkflow(s).nodes[2]!.position).toEqual({ x: 610, y: 10 });
    expect(s.past).toHaveLength(1);
    expect(editorWorkflow(run(s, { type: 'undo' }))).toEqual(tiny);
  });

  it('ignores measurement and remove changes from the canvas', () => {
    const s0 = initEditor(tiny);
    const s = run(s0, { type: 'nodesChange', changes: [{ type: 'dimensions', id: 'yes', dimensions: { width: 100, height: 50 } }] });
    expect(s.past).toHaveLength(0);
    expect(s.dirty).toBe(false);
    expect(run(s0, { type: 'nodesChange', changes: [{ type: 'remove', id: 'yes' }] })).toBe(s0);
  });

  it('copies and pastes nodes with fresh ids and their inner edges', () => {
    let s = run(initEditor(tiny), { type: 'select', nodeIds: ['check', 'yes'] }, { type: 'copy' });
    expect(s.past).toHaveLength(0);
    s = run(s, { type: 'paste' });
    let wf = editorWorkflow(s);
    expect(wf.nodes.map((n) => n.id)).toEqual(['start', 'check', 'yes', 'check_1', 'yes_1']);
    expect(wf.nodes[3]!.position).toEqual({ x: 290, y: 40 });
    expect(wf.nodes[3]!.config).toEqual(tiny.nodes[1]!.config);
    expect(wf.nodes[3]!.config).not.toBe(tiny.nodes[1]!.config);
    expect(wf.edges!.at(-1)).toEqual({ from: 'check_1', fromPort: 'true', to: 'yes_1' });
    expect(wf.edges).toHaveLength(3);
    expect(s.graph.nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(['check_1', 'yes_1']);
    s = run(s, { type: 'paste' });
    wf = editorWorkflow(s);
    expect(wf.nodes.map((n) => n.id).slice(5)).toEqual(['check_2', 'yes_2']);
    expect(wf.nodes[5]!.position).toEqual({ x: 330, y: 80 });
    s = run(s, { type: 'undo' }, { type: 'undo' });
    expect(editorWorkflow(s)).toEqual(tiny);
  });

  it('renames a node and rewires its edges', () => {
    let s = run(initEditor(tiny), { type: 'renameNode', from: 'check', to: 'gate' });
    const wf = editorWorkflow(s);
    expect(wf.nodes[1]!.id).toBe('gate');
    expect(wf.edges).toEqual([{ from: 'start', to: 'gate' }, { from: 'gate', fromPort: 'true', to: 'yes' }]);
    // Taken ids are refused.
    expect(run(s, { type: 'renameNode', from: 'gate', to: 'yes' })).toBe(s);
    s = run(s, { type: 'undo' });
    expect(editorWorkflow(s)).toEqual(tiny);
  });

  it('applies a layout as one step and a JSON edit as one step', () => {
    let s = run(initEditor(tiny), { type: 'layout', positions: { start: { x: 1, y: 2 }, yes: { x: 3, y: 4 } } });
    expect(editorWorkflow(s).nodes.map((n) => n.position)).toEqual([{ x: 1, y: 2 }, { x: 250, y: 0 }, { x: 3, y: 4 }]);
    const edited = { ...tiny, name: 'Renamed', nodes: tiny.nodes.slice(0, 2), edges: tiny.edges!.slice(0, 1) };
    s = run(s, { type: 'replaceDocument', workflow: edited });
    expect(editorWorkflow(s)).toEqual(edited);
    s = run(s, { type: 'undo' }, { type: 'undo' });
    expect(editorWorkflow(s)).toEqual(tiny);
  });

  it('edits workflow fields', () => {
    const s = run(initEditor(tiny), { type: 'setMeta', patch: { description: 'About' } }, { type: 'setMeta', patch: { name: 'T2' } });
    const wf = editorWorkflow(s);
    expect(wf.name).toBe('T2');
    expect(wf.description).toBe('About');
    expect(Object.keys(wf)).toEqual(['id', 'name', 'nodes', 'edges', 'description']);
  });

  it('keeps every example unchanged through load and a no-op edit cycle', () => {
    for (const [, wf] of examples()) {
      let s = initEditor(wf);
      s = run(s, { type: 'selectAll' }, { type: 'copy' }, { type: 'paste' }, { type: 'undo' });
      expect(editorWorkflow(s)).toEqual(wf);
    }
  });
});
