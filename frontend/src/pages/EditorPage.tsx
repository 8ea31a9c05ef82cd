import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router';
import { ReactFlowProvider, useReactFlow, type Connection, type EdgeChange, type NodeChange } from '@xyflow/react';
import { api, ApiError } from '../api/client';
import { useNodeTypes } from '../api/hooks';
import type { Finding, Published, RunRecord, WorkflowDoc, WorkflowSummary } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { FlowCanvas } from '../canvas/FlowCanvas';
import { Palette } from '../canvas/Palette';
import { ErrorView, Loading } from '../components/common';
import { AslTab } from '../editor/AslTab';
import { JsonTab } from '../editor/JsonTab';
import { NodePanel } from '../editor/NodePanel';
import { ProblemsList } from '../editor/ProblemsList';
import { RunDialog } from '../editor/RunDialog';
import { RunsTab } from '../editor/RunsTab';
import { EdgePanel, WorkflowPanel } from '../editor/SidePanels';
import { VersionsTab } from '../editor/VersionsTab';
import { Decorator } from '../graph/decorate';
import { canConnect, editorReducer, editorWorkflow, initEditor } from '../graph/editorState';
import { autoLayout } from '../graph/layout';
import { fromGraphEdge, type GEdge, type GNode } from '../graph/mapping';
import { buildProblems } from '../graph/problems';
import { availableExpressions, type Available } from '../model/expressions';
import { defaultConfig, isTrigger, type NodeTypeDescriptor, type Settings, type WfNode, type Workflow } from '../model/workflow';
import '@xyflow/react/dist/style.css';

const TABS = ['canvas', 'json', 'asl', 'runs', 'versions'] as const;
type Tab = (typeof TABS)[number];
const TAB_LABELS: Record<Tab, string> = { canvas: 'Canvas', json: 'JSON', asl: 'ASL', runs: 'Runs', versions: 'Versions' };
const NO_AVAILABLE: Available = { upstream: [], context: [] };

export default function EditorPage() {
  const { id = '' } = useParams();
  const doc = useQuery({ queryKey: ['workflow', id], queryFn: () => api.getWorkflow(id), staleTime: Infinity, gcTime: 0 });
  const nt = useNodeTypes();
  if (doc.error || nt.error) {
    return (
      <div className="page">
        <ErrorView error={doc.error ?? nt.error} />
        <Link to="/">Back to the workflows</Link>
      </div>
    );
  }
  if (!doc.data || !nt.data) return <Loading />;
  performance.mark('cm:workflow-loaded');
  return (
    <ReactFlowProvider>
      <Editor key={id} initial={doc.data} types={nt.types} registry={nt.registry} />
    </ReactFlowProvider>
  );
}

function useStableArray<T>(arr: T[]): T[] {
  const ref = useRef(arr);
  const prev = ref.current;
  if (prev.length !== arr.length || arr.some((x, i) => x !== prev[i])) ref.current = arr;
  return ref.current;
}

function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el || !el.tagName) return false;
  return el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable;
}

/** `p`, moved down until it does not overlap a node (clicked-in nodes should not hide others). */
function freeSpot(nodes: readonly GNode[], p: { x: number; y: number }): { x: number; y: number } {
  const w = 190;
  const h = 80;
  const at = { ...p };
  for (let i = 0; i < 30; i += 1) {
    const hit = nodes.some((n) => Math.abs(n.position.x - at.x) < w && Math.abs(n.position.y - at.y) < h);
    if (!hit) return at;
    at.y += h;
  }
  return p;
}

interface ValidationView {
  findings: Finding[];
  doc: Workflow;
  edgeIds: string[];
}

/** The builder page of a published form: the server's `formPageUrl`, else this builder's. */
function formPageUrl(p: Published): string {
  if (p.formPageUrl) return p.formPageUrl;
  const url = p.formUrl ?? '';
  return `${window.location.origin}/forms/${url.slice(url.lastIndexOf('/') + 1)}`;
}

function Editor({ initial, types, registry }: { initial: WorkflowDoc; types: NodeTypeDescriptor[]; registry: ReadonlyMap<string, NodeTypeDescriptor> }) {
  const { canEdit } = useAuth();
  const readOnly = !canEdit;
  const id = initial.workflow.id;
  const rf = useReactFlow();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [params, setParams] = useSearchParams();
  const tab: Tab = (TABS as readonly string[]).includes(params.get('tab') ?? '') ? (params.get('tab') as Tab) : 'canvas';
  const setTab = useCallback(
    (t: Tab) =>
      setParams(
        (p) => {
          const n = new URLSearchParams(p);
          if (t === 'canvas') n.delete('tab');
          else n.set('tab', t);
          return n;
        },
        { replace: true },
      ),
    [setParams],
  );

  const [state, dispatch] = useReducer(editorReducer, initial.definition, initEditor);
  const stateRef = useRef(state);
  stateRef.current = state;
  const [summary, setSummaryState] = useState<WorkflowSummary>(initial.workflow);
  const summaryRef = useRef(summary);
  const setSummary = useCallback((s: WorkflowSummary) => {
    summaryRef.current = s;
    setSummaryState(s);
  }, []);

  // ------------------------------------------------------------ validation
  const [validation, setValidation] = useState<ValidationView>(() => ({
    findings: initial.findings,
    doc: initial.definition,
    edgeIds: state.graph.edges.map((e) => e.id),
  }));
  const [validating, setValidating] = useState(false);
  const validateSeq = useRef(0);
  const problems = useMemo(() => buildProblems(validation.findings, validation.doc, validation.edgeIds), [validation]);

  const showFindings = useCallback((findings: Finding[]) => {
    const s = stateRef.current;
    setValidation({ findings, doc: editorWorkflow(s), edgeIds: s.graph.edges.map((e) => e.id) });
  }, []);

  const runValidate = useCallback(async () => {
    const s = stateRef.current;
    const doc = editorWorkflow(s);
    const edgeIds = s.graph.edges.map((e) => e.id);
    const seq = ++validateSeq.current;
    setValidating(true);
    try {
      const v = await api.validate(doc);
      if (seq === validateSeq.current) setValidation({ findings: v.findings, doc, edgeIds });
    } catch (e) {
      if (seq === validateSeq.current) {
        if (e instanceof ApiError && e.findings.length > 0) setValidation({ findings: e.findings, doc, edgeIds });
        else setActionError(e);
      }
    } finally {
      if (seq === validateSeq.current) setValidating(false);
    }
  }, []);

  useEffect(() => {
    if (state.revision === 0 || state.dragging) return;
    const t = setTimeout(runValidate, 700);
    return () => clearTimeout(t);
  }, [state.revision, state.dragging, runValidate]);

  // ------------------------------------------------------------ actions
  const [busy, setBusy] = useState<string | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [published, setPublished] = useState<Published | null>(null);
  const [runOpen, setRunOpen] = useState(false);

  const save = useCallback(async (): Promise<WorkflowSummary> => {
    const s = stateRef.current;
    const doc = editorWorkflow(s);
    const res = await api.updateWorkflow(id, doc, summaryRef.current.latestVersion);
    setSummary(res.workflow);
    dispatch({ type: 'saved', revision: s.revision });
    setValidation({ findings: res.findings, doc, edgeIds: s.graph.edges.map((e) => e.id) });
    void qc.invalidateQueries({ queryKey: ['workflows'] });
    return res.workflow;
  }, [id, qc, setSummary]);

  const publish = useCallback(async (): Promise<Published> => {
    let wf = summaryRef.current;
    if (stateRef.current.dirty) wf = await save();
    const p = await api.publish(id, wf.latestVersion);
    setSummary(p.workflow);
    setPublished(p);
    return p;
  }, [id, save, setSummary]);

  const act = useCallback(
    async (name: string, f: () => Promise<unknown>) => {
      setBusy(name);
      setActionError(null);
      try {
        await f();
      } catch (e) {
        setActionError(e);
        if (e instanceof ApiError && e.findings.length > 0) showFindings(e.findings);
      } finally {
        setBusy(null);
      }
    },
    [showFindings],
  );

  const startRun = useCallback(
    async (input: unknown): Promise<RunRecord> => {
      try {
        let wf = summaryRef.current;
        if (stateRef.current.dirty) wf = await save();
        if (wf.publishedVersion !== wf.latestVersion) await publish();
      } catch (e) {
        if (e instanceof ApiError && e.findings.length > 0) showFindings(e.findings);
        throw e;
      }
      const run = await api.startRun(id, input);
      void qc.invalidateQueries({ queryKey: ['runs'] });
      navigate(`/runs/${run.id}`);
      return run;
    },
    [id, save, publish, navigate, qc, showFindings],
  );

  // Unsaved changes survive neither a reload nor closing the tab without a warning.
  useEffect(() => {
    if (!state.dirty) return;
    const h = (e: BeforeUnloadEvent) => {
      e.preventDefault();
    };
    window.addEventListener('beforeunload', h);
    return () => window.removeEventListener('beforeunload', h);
  }, [state.dirty]);

  // ------------------------------------------------------------ canvas
  const decorator = useState(() => new Decorator())[0];
  const ctx = useMemo(() => ({ registry, problemsByNode: problems.byNode, problemsByEdge: problems.byEdge }), [registry, problems]);
  const viewNodes = useMemo(() => decorator.decorateNodes(state.graph.nodes, state.graph.edges, ctx), [decorator, state.graph.nodes, state.graph.edges, ctx]);
  const viewEdges = useMemo(() => decorator.decorateEdges(state.graph.edges, ctx), [decorator, state.graph.edges, ctx]);

  // Sizes stay with the decorator (see graph/decorate.ts): a measurement is not an edit and must
  // not hand React Flow new objects for every node.
  const onNodesChange = useCallback(
    (changes: NodeChange<GNode>[]) => {
      const { rest } = decorator.noteDimensions(changes);
      if (rest.length > 0) dispatch({ type: 'nodesChange', changes: rest });
    },
    [decorator],
  );
  const onEdgesChange = useCallback((changes: EdgeChange<GEdge>[]) => dispatch({ type: 'edgesChange', changes }), []);
  const onConnect = useCallback((connection: Connection) => dispatch({ type: 'connect', connection }), []);
  const isValidConnection = useCallback((c: Connection | GEdge) => canConnect(stateRef.current.graph, c as Connection), []);

  const canvasArea = useRef<HTMLDivElement>(null);
  const addCount = useRef(0);
  const addNode = useCallback(
    (type: string, position?: { x: number; y: number }) => {
      if (readOnly) return;
      let p = position;
      if (!p) {
        const rect = canvasArea.current?.getBoundingClientRect();
        const center = rect ? rf.screenToFlowPosition({ x: rect.left + rect.width / 2, y: rect.top + rect.height / 2 }) : { x: 0, y: 0 };
        const k = addCount.current++ % 8;
        p = freeSpot(stateRef.current.graph.nodes, { x: center.x - 90 + k * 24, y: center.y - 30 + k * 24 });
      }
      dispatch({ type: 'addNode', nodeType: type, position: p, config: defaultConfig(registry.get(type)?.configSchema) });
    },
    [readOnly, rf, registry],
  );

  const focusNode = useCallback(
    (nodeId: string) => {
      setTab('canvas');
      dispatch({ type: 'select', nodeIds: [nodeId] });
      setTimeout(() => void rf.fitView({ nodes: [{ id: nodeId }], duration: 300, maxZoom: 1.2, padding: 0.8 }), 30);
    },
    [rf, setTab],
  );
  const focusEdge = useCallback(
    (edgeId: string) => {
      const e = stateRef.current.graph.edges.find((x) => x.id === edgeId);
      if (!e) return;
      setTab('canvas');
      dispatch({ type: 'select', nodeIds: [], edgeIds: [edgeId] });
      setTimeout(() => void rf.fitView({ nodes: [{ id: e.source }, { id: e.target }], duration: 300, maxZoom: 1.2, padding: 0.5 }), 30);
    },
    [rf, setTab],
  );

  const layout = useCallback(() => {
    const s = stateRef.current;
    const positions = autoLayout({
      nodes: s.graph.nodes.map((n) => ({ id: n.id, width: decorator.sizeOf(n.id)?.width, height: decorator.sizeOf(n.id)?.height })),
      edges: s.graph.edges,
    });
    dispatch({ type: 'layout', positions });
    setTimeout(() => void rf.fitView({ duration: 300, padding: 0.15 }), 30);
  }, [rf, decorator]);

  // Keyboard shortcuts (not while typing in a field).
  const doSave = useCallback(() => act('save', save), [act, save]);
  useEffect(() => {
    if (tab !== 'canvas') return;
    const h = (e: KeyboardEvent) => {
      if (isTyping(e.target)) return;
      const mod = e.ctrlKey || e.metaKey;
      const k = e.key.toLowerCase();
      if (mod && k === 's') {
        e.preventDefault();
        if (!readOnly) void doSave();
        return;
      }
      if (readOnly) return;
      if (!mod && (k === 'delete' || k === 'backspace')) {
        e.preventDefault();
        dispatch({ type: 'deleteSelected' });
      } else if (mod && k === 'c') dispatch({ type: 'copy' });
      else if (mod && k === 'x') {
        dispatch({ type: 'copy' });
        dispatch({ type: 'deleteSelected' });
      } else if (mod && k === 'v') dispatch({ type: 'paste' });
      else if (mod && k === 'z' && !e.shiftKey) {
        e.preventDefault();
        dispatch({ type: 'undo' });
      } else if (mod && (k === 'y' || (k === 'z' && e.shiftKey))) {
        e.preventDefault();
        dispatch({ type: 'redo' });
      } else if (mod && k === 'a') {
        e.preventDefault();
        dispatch({ type: 'selectAll' });
      }
    };
    window.addEventListener('keydown', h);
    return () => window.removeEventListener('keydown', h);
  }, [tab, readOnly, doSave]);

  // ------------------------------------------------------------ selection and side panel
  const selectedNodeIds = useMemo(() => state.graph.nodes.filter((n) => n.selected).map((n) => n.id), [state.graph.nodes]);
  const selectedId = selectedNodeIds.length === 1 ? selectedNodeIds[0] : undefined;
  const selectedWf = selectedId ? state.graph.nodes.find((n) => n.id === selectedId)?.data.wf : undefined;
  const selectedEdge = selectedNodeIds.length === 0 ? state.graph.edges.find((e) => e.selected) : undefined;
  const wfs = useStableArray(state.graph.nodes.map((n) => n.data.wf));
  const edgesDoc = useMemo(() => state.graph.edges.map(fromGraphEdge), [state.graph.edges]);
  const settings = state.graph.meta.fields.settings as Settings | undefined;
  const selectedWfId = selectedWf?.id;
  const available = useMemo(
    () => (selectedWfId ? availableExpressions({ id, name: '', nodes: wfs, edges: edgesDoc, settings }, selectedWfId) : NO_AVAILABLE),
    [id, wfs, edgesDoc, settings, selectedWfId],
  );
  const takenIds = useCallback(() => new Set(stateRef.current.graph.nodes.map((n) => n.id)), []);
  const trigger: WfNode | undefined = wfs.find((n) => isTrigger(n.type));
  const docNow = useCallback(() => editorWorkflow(stateRef.current), []);

  const name = (state.graph.meta.fields.name as string | undefined) ?? id;
  const upToDate = summary.publishedVersion === summary.latestVersion && !state.dirty;

  return (
    <div className="editor" data-testid="editor">
      <div className="editor-toolbar">
        <div className="editor-title">
          <Link to="/" className="muted">
            Workflows
          </Link>{' '}
          / <b data-testid="editor-name">{name}</b> <code className="muted">{id}</code>
          <span className="muted small" data-testid="editor-version">
            {' '}
            v{summary.latestVersion}
            {summary.publishedVersion ? ` · published v${summary.publishedVersion}` : ' · not published'}
          </span>
          {state.dirty ? (
            <span className="dirty" data-testid="editor-dirty">
              unsaved
            </span>
          ) : null}
          {readOnly ? (
            <span className="tag" data-testid="read-only">
              read-only
            </span>
          ) : null}
        </div>
        <div className="spacer" />
        {readOnly ? null : (
          <>
            <button type="button" data-testid="btn-undo" title="Undo (Ctrl+Z)" disabled={state.past.length === 0} onClick={() => dispatch({ type: 'undo' })}>
              ↶
            </button>
            <button type="button" data-testid="btn-redo" title="Redo (Ctrl+Shift+Z)" disabled={state.future.length === 0} onClick={() => dispatch({ type: 'redo' })}>
              ↷
            </button>
            <button type="button" data-testid="btn-layout" onClick={layout}>
              Auto-layout
            </button>
          </>
        )}
        <button type="button" data-testid="btn-fit" onClick={() => void rf.fitView({ duration: 200, padding: 0.15 })}>
          Fit view
        </button>
        <button type="button" data-testid="btn-validate" disabled={validating} onClick={() => void runValidate()}>
          Validate
        </button>
        {readOnly ? null : (
          <>
            <button type="button" data-testid="btn-save" className={state.dirty ? 'primary' : ''} disabled={busy !== null} onClick={() => void doSave()}>
              {busy === 'save' ? 'Saving…' : 'Save'}
            </button>
            <button type="button" data-testid="btn-publish" disabled={busy !== null} onClick={() => void act('publish', publish)} title={upToDate ? 'The latest version is published' : ''}>
              {busy === 'publish' ? 'Publishing…' : 'Publish'}
            </button>
            <button type="button" data-testid="btn-run" className="run" disabled={busy !== null || !trigger} onClick={() => setRunOpen(true)}>
              Run…
            </button>
          </>
        )}
      </div>
      {actionError ? (
        <div className="editor-messages">
          <ErrorView error={actionError} testId="action-error" onFinding={focusNode} />
          <button type="button" className="link" onClick={() => setActionError(null)}>
            dismiss
          </button>
        </div>
      ) : null}
      {published ? (
        <div className="notice" data-testid="publish-result">
          Published v{published.workflow.publishedVersion} as {published.executionType.toLowerCase()}.
          {published.formUrl ? (
            <>
              {' '}
              Form:{' '}
              <a href={formPageUrl(published)} data-testid="publish-form-link">
                {formPageUrl(published)}
              </a>
            </>
          ) : null}
          {published.hookUrl ? (
            <>
              {' '}
              Webhook: <code data-testid="publish-hook-url">{published.hookUrl}</code>
            </>
          ) : null}
          <button type="button" className="link" onClick={() => setPublished(null)}>
            dismiss
          </button>
        </div>
      ) : null}

      <div className="tabs" role="tablist">
        {TABS.map((t) => (
          <button key={t} type="button" role="tab" aria-selected={tab === t} className={tab === t ? 'tab active' : 'tab'} data-testid={`tab-${t}`} onClick={() => setTab(t)}>
            {TAB_LABELS[t]}
            {t === 'canvas' && problems.errors > 0 ? <span className="count error">{problems.errors}</span> : null}
          </button>
        ))}
      </div>

      <div className="editor-body">
        <div className={`canvas-layout ${readOnly ? 'read-only' : ''}`} style={{ display: tab === 'canvas' ? undefined : 'none' }}>
          {readOnly ? null : <Palette types={types} onAdd={addNode} />}
          <div className="canvas-area" ref={canvasArea}>
            <FlowCanvas
              nodes={viewNodes}
              edges={viewEdges}
              readOnly={readOnly}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onConnect={onConnect}
              isValidConnection={isValidConnection}
              onDropType={addNode}
            />
          </div>
          <aside className="side-panel">
            {selectedWf ? (
              <NodePanel
                key={selectedWf.id}
                wf={selectedWf}
                desc={registry.get(selectedWf.type)}
                problems={problems.byNode.get(selectedWf.id)}
                available={available}
                readOnly={readOnly}
                takenIds={takenIds}
                dispatch={dispatch}
                onFocusNode={focusNode}
              />
            ) : selectedEdge ? (
              <EdgePanel edge={selectedEdge} problems={problems.byEdge.get(selectedEdge.id)} readOnly={readOnly} dispatch={dispatch} onFocusNode={focusNode} />
            ) : selectedNodeIds.length > 1 ? (
              <div className="node-panel">
                <div className="panel-title">{selectedNodeIds.length} nodes selected</div>
                <p className="muted small">Ctrl+C / Ctrl+V copies them, Delete removes them.</p>
                {readOnly ? null : (
                  <button type="button" className="danger" onClick={() => dispatch({ type: 'deleteSelected' })}>
                    Delete {selectedNodeIds.length} nodes
                  </button>
                )}
              </div>
            ) : (
              <WorkflowPanel meta={state.graph.meta} readOnly={readOnly} dispatch={dispatch} />
            )}
          </aside>
          <div className="problems-area">
            <ProblemsList problems={problems} onFocusNode={focusNode} onFocusEdge={focusEdge} validating={validating} />
          </div>
        </div>
        {tab === 'json' ? (
          <div className="tab-body">
            <JsonTab doc={docNow} revision={state.revision} readOnly={readOnly} dispatch={dispatch} />
            <ProblemsList problems={problems} onFocusNode={focusNode} onFocusEdge={focusEdge} validating={validating} />
          </div>
        ) : null}
        {tab === 'asl' ? (
          <div className="tab-body">
            <AslTab workflowId={id} version={summary.latestVersion} dirty={state.dirty} onFocusNode={focusNode} />
          </div>
        ) : null}
        {tab === 'runs' ? (
          <div className="tab-body">
            <RunsTab workflowId={id} />
          </div>
        ) : null}
        {tab === 'versions' ? (
          <div className="tab-body">
            <VersionsTab
              workflow={summary}
              canEdit={canEdit}
              dirty={state.dirty}
              onRestored={(doc) => {
                setSummary(doc.workflow);
                dispatch({ type: 'load', workflow: doc.definition });
                const g = initEditor(doc.definition).graph;
                setValidation({ findings: doc.findings, doc: doc.definition, edgeIds: g.edges.map((e) => e.id) });
                void qc.invalidateQueries({ queryKey: ['workflows'] });
              }}
            />
          </div>
        ) : null}
      </div>
      {runOpen ? <RunDialog trigger={trigger} start={startRun} onClose={() => setRunOpen(false)} /> : null}
    </div>
  );
}
