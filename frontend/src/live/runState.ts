// Live run status: WebSocket events (and the REST node executions) reduced to per-node
// statuses. Pure, tested in test/runState.test.ts.

import type { HistoryEvent, LiveEvent, NodeExecution, RunRecord } from '../api/types';

export type NodeStatus = 'running' | 'succeeded' | 'failed' | 'skipped';

export interface NodeRunState {
  status: NodeStatus;
  startedAtMs?: number;
  durationMs?: number;
  outputPreview?: string;
  error?: string;
  cause?: string;
  /** How many times the node started (for-each bodies, redrives). */
  visits: number;
  /** The id and type of the last event applied to this node (older news is ignored). */
  lastEventId?: number;
  lastType?: string;
}

export interface LiveRunState {
  runId: string;
  /** `RUNNING` until `run.finished` says otherwise. */
  runStatus: string;
  /** The last event id applied (subscribe with `after` = this to resume). */
  lastEventId: number;
  /** Keys of the events applied with id `lastEventId` (the cloud may repeat an id). */
  keysAtLast: string[];
  nodes: Readonly<Record<string, NodeRunState>>;
  outputPreview?: string;
  error?: string;
  cause?: string;
}

export function initialLive(runId: string, runStatus = 'RUNNING'): LiveRunState {
  return { runId, runStatus, lastEventId: 0, keysAtLast: [], nodes: {} };
}

function eventKey(e: LiveEvent): string {
  return `${e.type}|${e.nodeId ?? ''}`;
}

/**
 * Applies one event; events already applied leave the state as is. Node events are judged per
 * node: the cloud pushes node statuses as the execution's log records arrive, so two nodes'
 * events can come out of time order (event ids are times there) while each node's own come in
 * order. A node event older than the last one applied to that node (or a start at the time of
 * its end) is old news; run events keep the run-wide order.
 */
export function reduceLive(s: LiveRunState, e: LiveEvent): LiveRunState {
  if (e.runId !== s.runId) return s;
  const key = eventKey(e);
  const nodeId = e.nodeId ?? undefined;
  if (nodeId && e.type.startsWith('node.')) {
    const prev = s.nodes[nodeId];
    if (prev?.lastEventId !== undefined) {
      if (e.eventId < prev.lastEventId) return s;
      if (e.eventId === prev.lastEventId && (e.type === prev.lastType || e.type === 'node.started')) return s;
    }
  } else {
    if (e.eventId < s.lastEventId) return s;
    if (e.eventId === s.lastEventId && s.lastEventId !== 0 && s.keysAtLast.includes(key)) return s;
  }
  const lastEventId = Math.max(s.lastEventId, e.eventId);
  const keysAtLast =
    e.eventId === s.lastEventId ? [...s.keysAtLast, key] : e.eventId > s.lastEventId ? [key] : s.keysAtLast;
  const base = { ...s, lastEventId, keysAtLast };
  switch (e.type) {
    case 'run.started':
      return { ...base, runStatus: 'RUNNING', error: undefined, cause: undefined };
    case 'node.started': {
      if (!nodeId) return base;
      const prev = s.nodes[nodeId];
      return {
        ...base,
        runStatus: 'RUNNING',
        nodes: {
          ...s.nodes,
          [nodeId]: {
            status: 'running',
            startedAtMs: e.atMs,
            visits: (prev?.visits ?? 0) + 1,
            lastEventId: e.eventId,
            lastType: e.type,
          },
        },
      };
    }
    case 'node.succeeded':
    case 'node.failed': {
      if (!nodeId) return base;
      const prev = s.nodes[nodeId];
      const failed = e.type === 'node.failed';
      const next: NodeRunState = {
        status: failed ? 'failed' : 'succeeded',
        startedAtMs: prev?.startedAtMs,
        durationMs: e.durationMs ?? (prev?.startedAtMs !== undefined ? e.atMs - prev.startedAtMs : undefined),
        outputPreview: e.outputPreview ?? undefined,
        error: failed ? (e.error ?? undefined) : undefined,
        cause: failed ? (e.cause ?? undefined) : undefined,
        visits: Math.max(prev?.visits ?? 0, 1),
        lastEventId: e.eventId,
        lastType: e.type,
      };
      return { ...base, nodes: { ...s.nodes, [nodeId]: next } };
    }
    case 'run.finished':
      return {
        ...base,
        runStatus: e.status ?? 'SUCCEEDED',
        outputPreview: e.outputPreview ?? undefined,
        error: e.error ?? undefined,
        cause: e.cause ?? undefined,
      };
    default:
      return base;
  }
}

export function reduceAll(s: LiveRunState, events: readonly LiveEvent[]): LiveRunState {
  return events.reduce(reduceLive, s);
}

/** A state from the REST view of a run (its record and node executions). */
export function fromRest(run: RunRecord, executions: readonly NodeExecution[]): LiveRunState {
  const nodes: Record<string, NodeRunState> = {};
  for (const x of executions) {
    const prev = nodes[x.nodeId];
    const status: NodeStatus = x.status === 'failed' ? 'failed' : x.status === 'succeeded' ? 'succeeded' : 'running';
    nodes[x.nodeId] = {
      status,
      startedAtMs: x.startedAtMs,
      durationMs: x.endedAtMs !== null ? x.endedAtMs - x.startedAtMs : undefined,
      outputPreview: x.outputPreview ?? undefined,
      error: x.error ?? undefined,
      visits: (prev?.visits ?? 0) + 1,
    };
  }
  return {
    runId: run.id,
    runStatus: run.status,
    lastEventId: 0,
    keysAtLast: [],
    nodes,
    error: run.error ?? undefined,
    cause: run.cause ?? undefined,
  };
}

/**
 * Node statuses to draw: once a run has succeeded, nodes that never ran were skipped (a branch
 * not taken). Nodes of a failed or running run that did not run have no status.
 */
export function displayStatuses(s: LiveRunState, nodeIds: readonly string[]): Record<string, NodeRunState> {
  if (s.runStatus !== 'SUCCEEDED') return s.nodes as Record<string, NodeRunState>;
  const out: Record<string, NodeRunState> = { ...s.nodes };
  for (const id of nodeIds) if (!out[id]) out[id] = { status: 'skipped', visits: 0 };
  return out;
}

export function isFinished(runStatus: string): boolean {
  return runStatus !== 'RUNNING';
}

/** The node that failed (to redrive from), if any. */
export function failedNode(s: LiveRunState): string | undefined {
  return Object.entries(s.nodes).find(([, n]) => n.status === 'failed')?.[0];
}

export interface NodeDetails {
  /** The state's input (the run document when it entered), parsed when it is JSON. */
  input?: unknown;
  /** The state's output. */
  output?: unknown;
  error?: string;
  cause?: string;
}

function parseMaybe(text: unknown): unknown {
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * A node's input, output and error from the run's history: the last visit of the state named
 * like the node (`…StateEntered` / `…StateExited`), and the failure events while it was the
 * current state.
 */
export function nodeDetailsFromHistory(events: readonly HistoryEvent[], nodeId: string): NodeDetails {
  const out: NodeDetails = {};
  let current: string | undefined;
  for (const e of events) {
    const entered = e.stateEnteredEventDetails as { name?: string; input?: string } | undefined;
    const exited = e.stateExitedEventDetails as { name?: string; output?: string } | undefined;
    if (entered?.name !== undefined) {
      current = entered.name;
      if (current === nodeId) {
        out.input = parseMaybe(entered.input);
        out.output = undefined;
        out.error = undefined;
        out.cause = undefined;
      }
      continue;
    }
    if (exited?.name === nodeId) {
      out.output = parseMaybe(exited.output);
      continue;
    }
    if (current === nodeId && /Failed$|TimedOut$/.test(e.type)) {
      for (const [k, v] of Object.entries(e)) {
        if (!k.endsWith('EventDetails') || !v || typeof v !== 'object') continue;
        const d = v as { error?: string; cause?: string };
        if (d.error !== undefined || d.cause !== undefined) {
          out.error = d.error;
          out.cause = d.cause;
        }
      }
    }
  }
  return out;
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  const sec = Math.round((ms % 60_000) / 1000);
  return `${m} min ${sec} s`;
}
