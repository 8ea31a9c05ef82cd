import { describe, expect, it } from 'vitest';
import type { HistoryEvent, LiveEvent, RunRecord } from '../src/api/types';
import {
  displayStatuses,
  failedNode,
  formatDuration,
  fromRest,
  initialLive,
  nodeDetailsFromHistory,
  reduceAll,
  reduceLive,
} from '../src/live/runState';

const ev = (eventId: number, type: string, extra: Partial<LiveEvent> = {}): LiveEvent => ({
  type,
  runId: 'r1',
  workflowId: 'w',
  eventId,
  atMs: 1000 + eventId,
  ...extra,
});

describe('live event reduction', () => {
  const events = [
    ev(1, 'run.started'),
    ev(2, 'node.started', { nodeId: 'start' }),
    ev(3, 'node.succeeded', { nodeId: 'start', durationMs: 1, outputPreview: '{"n":1}' }),
    ev(4, 'node.started', { nodeId: 'call' }),
  ];

  it('tracks running and succeeded nodes with durations', () => {
    const s = reduceAll(initialLive('r1'), events);
    expect(s.lastEventId).toBe(4);
    expect(s.nodes.start).toMatchObject({ status: 'succeeded', durationMs: 1, outputPreview: '{"n":1}', visits: 1 });
    expect(s.nodes.call).toMatchObject({ status: 'running', startedAtMs: 1004 });
    expect(s.runStatus).toBe('RUNNING');
  });

  it('records failures and the run end', () => {
    const s = reduceAll(initialLive('r1'), [
      ...events,
      ev(5, 'node.failed', { nodeId: 'call', error: 'ConcertMaster.Http.5xx', cause: 'HTTP 503' }),
      ev(6, 'run.finished', { status: 'FAILED', error: 'ConcertMaster.Http.5xx' }),
    ]);
    expect(s.nodes.call).toMatchObject({ status: 'failed', error: 'ConcertMaster.Http.5xx', cause: 'HTTP 503', durationMs: 1 });
    expect(s.runStatus).toBe('FAILED');
    expect(failedNode(s)).toBe('call');
    // A failed run does not mark the nodes that never ran as skipped.
    expect(displayStatuses(s, ['start', 'call', 'after']).after).toBeUndefined();
  });

  it('drops repeated and older events (resume after a reconnect)', () => {
    const s = reduceAll(initialLive('r1'), events);
    expect(reduceLive(s, events[3]!)).toBe(s);
    expect(reduceLive(s, events[1]!)).toBe(s);
    expect(reduceLive(s, { ...events[2]!, runId: 'other', eventId: 9 })).toBe(s);
  });

  it('applies distinct events sharing an id (cloud ids are times)', () => {
    let s = reduceAll(initialLive('r1'), [ev(10, 'node.succeeded', { nodeId: 'a' })]);
    s = reduceLive(s, ev(10, 'node.succeeded', { nodeId: 'b' }));
    expect(Object.keys(s.nodes).sort()).toEqual(['a', 'b']);
    expect(reduceLive(s, ev(10, 'node.succeeded', { nodeId: 'b' }))).toBe(s);
  });

  it('takes each node in its own order when nodes come out of time order (cloud)', () => {
    let s = reduceAll(initialLive('r1'), [ev(1, 'run.started'), ev(10, 'node.started', { nodeId: 'a' }), ev(20, 'node.succeeded', { nodeId: 'a' })]);
    // b started before a ended, but its start is delivered after.
    s = reduceLive(s, ev(15, 'node.started', { nodeId: 'b' }));
    expect(s.nodes.b!.status).toBe('running');
    s = reduceLive(s, ev(25, 'node.succeeded', { nodeId: 'b' }));
    expect(s.nodes.b).toMatchObject({ status: 'succeeded', durationMs: 10 });
    // Old news of a node: a start older than its end, a start at the time of its end.
    expect(reduceLive(s, ev(12, 'node.started', { nodeId: 'a' }))).toBe(s);
    expect(reduceLive(s, ev(20, 'node.started', { nodeId: 'a' }))).toBe(s);
    // A replay from the start changes nothing.
    expect(reduceAll(s, [ev(1, 'run.started'), ev(10, 'node.started', { nodeId: 'a' }), ev(15, 'node.started', { nodeId: 'b' })])).toEqual(s);
    // A later visit of a node runs again.
    s = reduceLive(s, ev(30, 'node.started', { nodeId: 'a' }));
    expect(s.nodes.a).toMatchObject({ status: 'running', visits: 2 });
    expect(s.lastEventId).toBe(30);
  });

  it('marks nodes that never ran in a succeeded run as skipped', () => {
    const s = reduceAll(initialLive('r1'), [...events.slice(0, 3), ev(5, 'run.finished', { status: 'SUCCEEDED' })]);
    const shown = displayStatuses(s, ['start', 'branch']);
    expect(shown.start!.status).toBe('succeeded');
    expect(shown.branch!.status).toBe('skipped');
  });

  it('counts visits and goes back to running on a redrive', () => {
    const s = reduceAll(initialLive('r1'), [
      ev(1, 'node.started', { nodeId: 'x' }),
      ev(2, 'node.failed', { nodeId: 'x', error: 'E' }),
      ev(3, 'run.finished', { status: 'FAILED' }),
      ev(4, 'run.started'),
      ev(5, 'node.started', { nodeId: 'x' }),
    ]);
    expect(s.runStatus).toBe('RUNNING');
    expect(s.nodes.x).toMatchObject({ status: 'running', visits: 2 });
    expect(s.nodes.x!.error).toBeUndefined();
  });

  it('seeds from the REST node executions', () => {
    const run = { id: 'r1', status: 'FAILED', error: 'E', cause: 'C' } as RunRecord;
    const s = fromRest(run, [
      { nodeId: 'a', step: '0', status: 'succeeded', startedAtMs: 10, endedAtMs: 15, outputPreview: '1', error: null },
      { nodeId: 'b', step: '1', status: 'failed', startedAtMs: 15, endedAtMs: 40, outputPreview: null, error: 'E' },
    ]);
    expect(s.nodes.a).toMatchObject({ status: 'succeeded', durationMs: 5 });
    expect(s.nodes.b).toMatchObject({ status: 'failed', durationMs: 25, error: 'E' });
    expect(s.runStatus).toBe('FAILED');
  });

  it('reads a node input, output and error from the history', () => {
    const h: HistoryEvent[] = [
      { id: 1, previousEventId: 0, timestamp: 't', type: 'ExecutionStarted' },
      { id: 2, previousEventId: 1, timestamp: 't', type: 'PassStateEntered', stateEnteredEventDetails: { name: 'a', input: '{"x":1}' } },
      { id: 3, previousEventId: 2, timestamp: 't', type: 'PassStateExited', stateExitedEventDetails: { name: 'a', output: '{"x":2}' } },
      { id: 4, previousEventId: 3, timestamp: 't', type: 'TaskStateEntered', stateEnteredEventDetails: { name: 'b', input: '{"x":2}' } },
      { id: 5, previousEventId: 4, timestamp: 't', type: 'TaskFailed', taskFailedEventDetails: { error: 'Boom', cause: 'because' } },
      { id: 6, previousEventId: 5, timestamp: 't', type: 'ExecutionFailed', executionFailedEventDetails: { error: 'Boom', cause: 'because' } },
    ];
    expect(nodeDetailsFromHistory(h, 'a')).toEqual({ input: { x: 1 }, output: { x: 2 }, error: undefined, cause: undefined });
    expect(nodeDetailsFromHistory(h, 'b')).toMatchObject({ input: { x: 2 }, error: 'Boom', cause: 'because' });
    expect(nodeDetailsFromHistory(h, 'zzz')).toEqual({});
  });

  it('formats durations', () => {
    expect(formatDuration(5)).toBe('5 ms');
    expect(formatDuration(1500)).toBe('1.50 s');
    expect(formatDuration(90_000)).toBe('1 min 30 s');
    expect(formatDuration(undefined)).toBe('');
  });
});
