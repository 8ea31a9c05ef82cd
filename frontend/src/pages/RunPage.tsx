import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate, useParams } from 'react-router';
import { applyNodeChanges, ReactFlowProvider, type NodeChange } from '@xyflow/react';
import { api, liveTicketUrl } from '../api/client';
import { useNodeTypes } from '../api/hooks';
import type { HistoryEvent, RunRecord } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { FlowCanvas } from '../canvas/FlowCanvas';
import { ErrorView, formatTime, JsonBlock, Loading, StatusBadge } from '../components/common';
import { Decorator } from '../graph/decorate';
import { workflowToGraph, type GNode } from '../graph/mapping';
import { EMPTY_PROBLEMS } from '../graph/problems';
import {
  displayStatuses,
  failedNode,
  formatDuration,
  fromRest,
  initialLive,
  isFinished,
  nodeDetailsFromHistory,
  reduceLive,
  type LiveRunState,
} from '../live/runState';
import { LiveSocket, type SocketState } from '../live/socket';
import type { NodeTypeDescriptor, Workflow } from '../model/workflow';
import '@xyflow/react/dist/style.css';

async function fetchHistory(runId: string): Promise<HistoryEvent[]> {
  const all: HistoryEvent[] = [];
  let after = 0;
  for (let page = 0; page < 50; page += 1) {
    const { items } = await api.runEvents(runId, after || undefined);
    all.push(...items);
    if (items.length < 1000) break;
    after = items[items.length - 1]!.id;
  }
  return all;
}

export default function RunPage() {
  const { id = '' } = useParams();
  const run = useQuery({ queryKey: ['run', id], queryFn: () => api.getRun(id) });
  const wfId = run.data?.workflowId;
  const version = run.data?.workflowVersion;
  const def = useQuery({
    queryKey: ['version', wfId, version],
    queryFn: () => api.getVersion(wfId!, version!),
    enabled: !!wfId && !!version,
    staleTime: Infinity,
  });
  const nt = useNodeTypes();
  const err = run.error ?? def.error ?? nt.error;
  if (err) {
    return (
      <div className="page">
        <ErrorView error={err} />
        <Link to="/">Back to the workflows</Link>
      </div>
    );
  }
  if (!run.data || !def.data || !nt.data) return <Loading />;
  return (
    <ReactFlowProvider>
      <RunView key={id} run={run.data} definition={def.data.definition} registry={nt.registry} />
    </ReactFlowProvider>
  );
}

function RunView({ run, definition, registry }: { run: RunRecord; definition: Workflow; registry: ReadonlyMap<string, NodeTypeDescriptor> }) {
  const { session, canEdit } = useAuth();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [live, setLive] = useState<LiveRunState>(() => initialLive(run.id, run.status));
  const liveRef = useRef(live);
  liveRef.current = live;
  const [socketState, setSocketState] = useState<SocketState>('connecting');
  const [socketDetail, setSocketDetail] = useState<string | undefined>();
  const [nodes, setNodes] = useState<GNode[]>(() => workflowToGraph(definition).nodes);
  const edges = useMemo(() => workflowToGraph(definition).edges, [definition]);
  const nodeIds = useMemo(() => definition.nodes.map((n) => n.id), [definition]);
  const [selected, setSelected] = useState<string | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  // First paint and fallback: the stored node executions (the socket replays the history too).
  const rest = useQuery({
    queryKey: ['runNodes', run.id],
    queryFn: () => api.runNodes(run.id),
    refetchInterval: socketState === 'open' || isFinished(live.runStatus) ? false : 3000,
  });
  // Until the socket has delivered an event, show the REST view (the socket replays from 0).
  const shown = useMemo(
    () => (live.lastEventId === 0 && rest.data ? { ...fromRest(run, rest.data.items), runId: run.id } : live),
    [live, rest.data, run],
  );

  // Live events over the WebSocket, replayed from the start on every (re)connect. Each
  // connect asks for a fresh ticket (they last a minute), so a renewed session token does not
  // need a new socket: the effect depends on being signed in, not on the token.
  const signedIn = session !== null;
  useEffect(() => {
    if (!signedIn) return;
    const socket = new LiveSocket({
      url: liveTicketUrl,
      topic: `run:${run.id}`,
      // Every (re)connect replays the run from the start: the reducer drops what it has, and
      // in the cloud a node's events may be written after newer ones of another node, which a
      // resume `after` the newest id would miss.
      after: () => 0,
      onEvent: (e) => setLive((s) => reduceLive(s, e)),
      onState: (s, detail) => {
        setSocketState(s);
        setSocketDetail(detail);
      },
    });
    return () => socket.close();
  }, [signedIn, run.id]);

  // When the run ends, fetch its record (output, error) and history again.
  const finished = isFinished(live.runStatus);
  useEffect(() => {
    if (!finished) return;
    void qc.invalidateQueries({ queryKey: ['run', run.id] });
    void qc.invalidateQueries({ queryKey: ['runEvents', run.id] });
    void qc.invalidateQueries({ queryKey: ['runs'] });
  }, [finished, qc, run.id]);

  const statuses = useMemo(() => displayStatuses(shown, nodeIds), [shown, nodeIds]);
  const decorator = useState(() => new Decorator())[0];
  const ctx = useMemo(
    () => ({ registry, problemsByNode: EMPTY_PROBLEMS.byNode, problemsByEdge: EMPTY_PROBLEMS.byEdge, statuses }),
    [registry, statuses],
  );
  const viewNodes = useMemo(() => decorator.decorateNodes(nodes, edges, ctx), [decorator, nodes, edges, ctx]);
  const viewEdges = useMemo(() => decorator.decorateEdges(edges, ctx), [decorator, edges, ctx]);
  const onNodesChange = useCallback(
    (changes: NodeChange<GNode>[]) => {
      // Sizes stay with the decorator; only the selection is state here.
      const select = decorator.noteDimensions(changes).rest.filter((c) => c.type === 'select');
      if (select.length > 0) setNodes((ns) => applyNodeChanges(select, ns));
    },
    [decorator],
  );
  const onNodeClick = useCallback((nodeId: string) => setSelected(nodeId), []);
  const onPaneClick = useCallback(() => setSelected(null), []);

  const history = useQuery({
    queryKey: ['runEvents', run.id, selected ? live.lastEventId : 0],
    queryFn: () => fetchHistory(run.id),
    enabled: selected !== null,
    staleTime: finished ? Infinity : 0,
  });
  const details = useMemo(() => (selected && history.data ? nodeDetailsFromHistory(history.data, selected) : null), [selected, history.data]);

  const approvals = useQuery({
    queryKey: ['approvals', 'pending'],
    queryFn: () => api.listApprovals(true),
    refetchInterval: finished ? false : 4000,
  });
  const myApprovals = (approvals.data?.items ?? []).filter((a) => a.runId === run.id);

  const act = async (f: () => Promise<void>) => {
    setBusy(true);
    setActionError(null);
    try {
      await f();
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(false);
    }
  };

  const current = run;
  const failed = failedNode(shown);
  const sel = selected ? statuses[selected] : undefined;
  const selWf = selected ? definition.nodes.find((n) => n.id === selected) : undefined;
  const duration = current.endedAtMs ? current.endedAtMs - current.startedAtMs : undefined;

  return (
    <div className="run-page" data-testid="run-page">
      <div className="editor-toolbar">
        <div className="editor-title">
          <Link to={`/workflows/${encodeURIComponent(run.workflowId)}?tab=runs`} className="muted" data-testid="run-workflow-link">
            {run.workflowId}
          </Link>{' '}
          / run <code data-testid="run-id">{run.id}</code> <span className="muted small">v{run.workflowVersion}</span>{' '}
          <StatusBadge status={live.runStatus} testId="run-status" />
          <span className={`live live-${socketState}`} data-testid="live-state" title={socketDetail}>
            {socketState === 'open' ? '● live' : socketState === 'connecting' ? '○ connecting' : '○ reconnecting'}
          </span>
        </div>
        <div className="spacer" />
        {canEdit && !finished ? (
          <button type="button" data-testid="btn-cancel-run" disabled={busy} onClick={() => void act(async () => void (await api.cancelRun(run.id)))}>
            Cancel
          </button>
        ) : null}
        {canEdit && finished && live.runStatus !== 'SUCCEEDED' ? (
          <>
            <button
              type="button"
              className="primary"
              data-testid="btn-redrive"
              disabled={busy}
              title={failed ? `Continue from ${failed}` : 'Continue from the node that failed'}
              onClick={() =>
                void act(async () => {
                  await api.redrive(run.id);
                  setLive((s) => ({ ...s, runStatus: 'RUNNING' }));
                  void qc.invalidateQueries({ queryKey: ['run', run.id] });
                })
              }
            >
              Retry from {failed ?? 'failed node'}
            </button>
            <button
              type="button"
              data-testid="btn-retry-latest"
              disabled={busy}
              onClick={() =>
                void act(async () => {
                  const r = await api.redrive(run.id, true);
                  navigate(`/runs/${r.id}`);
                })
              }
            >
              Run again on the latest version
            </button>
          </>
        ) : null}
      </div>
      <ErrorView error={actionError} testId="action-error" />
      {myApprovals.length > 0 ? (
        <div className="notice" data-testid="run-approvals">
          Waiting for approval:{' '}
          {myApprovals.map((a) => (
            <Link key={a.id} to={`/approvals/${a.id}`} data-testid={`approval-link-${a.nodeId}`}>
              {a.title || a.nodeId}
            </Link>
          ))}
        </div>
      ) : null}
      <div className="run-layout">
        <div className="canvas-area">
          <FlowCanvas nodes={viewNodes} edges={viewEdges} readOnly onNodesChange={onNodesChange} onNodeClick={onNodeClick} onPaneClick={onPaneClick} testId="run-canvas" />
        </div>
        <aside className="side-panel">
          {selected ? (
            <div className="node-panel" data-testid="node-output-panel">
              <div className="panel-head">
                <div>
                  <div className="panel-title">{selWf?.name ?? selected}</div>
                  <code className="small">
                    {selected} · {selWf?.type}
                  </code>
                </div>
                <button type="button" className="small" onClick={() => setSelected(null)}>
                  ✕
                </button>
              </div>
              <p>
                {sel ? <StatusBadge status={sel.status} testId="node-run-status" /> : <span className="muted">not run</span>}
                {sel?.durationMs !== undefined ? <span className="muted"> {formatDuration(sel.durationMs)}</span> : null}
                {sel && sel.visits > 1 ? <span className="muted"> · {sel.visits} visits</span> : null}
              </p>
              {sel?.error || details?.error ? (
                <div className="error-box" data-testid="node-error">
                  <b>{sel?.error ?? details?.error}</b>
                  {sel?.cause || details?.cause ? <div className="cause">{sel?.cause ?? details?.cause}</div> : null}
                </div>
              ) : null}
              <h4>Output</h4>
              {sel?.outputPreview !== undefined ? (
                <JsonBlock value={sel.outputPreview} testId="node-output" maxHeight={260} />
              ) : details?.output !== undefined ? (
                <JsonBlock value={details.output} testId="node-output" maxHeight={260} />
              ) : (
                <p className="muted" data-testid="node-output">
                  —
                </p>
              )}
              <h4>Input</h4>
              {history.isPending ? <Loading /> : null}
              <ErrorView error={history.error} />
              {details?.input !== undefined ? <JsonBlock value={details.input} testId="node-input" maxHeight={260} /> : <p className="muted">—</p>}
              {details?.output !== undefined && sel?.outputPreview !== undefined ? (
                <details>
                  <summary>State output (run document)</summary>
                  <JsonBlock value={details.output} maxHeight={260} />
                </details>
              ) : null}
            </div>
          ) : (
            <div className="node-panel" data-testid="run-summary">
              <div className="panel-title">Run</div>
              <p className="muted small">Click a node to see its input, output and error.</p>
              <dl className="facts">
                <dt>Started</dt>
                <dd>{formatTime(current.startedAtMs)}</dd>
                <dt>By</dt>
                <dd>{current.startedBy}</dd>
                <dt>Trigger</dt>
                <dd>{current.trigger}</dd>
                {duration !== undefined ? (
                  <>
                    <dt>Duration</dt>
                    <dd>{formatDuration(duration)}</dd>
                  </>
                ) : null}
                {current.retryOf ? (
                  <>
                    <dt>Retry of</dt>
                    <dd>
                      <Link to={`/runs/${current.retryOf}`}>{current.retryOf.slice(0, 8)}</Link>
                    </dd>
                  </>
                ) : null}
              </dl>
              {live.error || current.error ? (
                <div className="error-box" data-testid="run-error">
                  <b>{live.error ?? current.error}</b>
                  {live.cause || current.cause ? <div className="cause">{live.cause ?? current.cause}</div> : null}
                </div>
              ) : null}
              <h4>Input</h4>
              <JsonBlock value={current.input} testId="run-input-view" maxHeight={220} />
              <h4>Output</h4>
              <JsonBlock value={current.output ?? live.outputPreview ?? undefined} testId="run-output-view" maxHeight={300} />
            </div>
          )}
        </aside>
      </div>
    </div>
  );
}
