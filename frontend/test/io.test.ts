import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, configureAuth } from '../src/api/client';
import { LiveSocket } from '../src/live/socket';
import type { LiveEvent } from '../src/api/types';

class FakeSocket {
  static all: FakeSocket[] = [];
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  send(d: string) {
    this.sent.push(JSON.parse(d));
  }
  close() {
    this.closed = true;
  }
}

describe('live socket', () => {
  afterEach(() => {
    vi.useRealTimers();
    FakeSocket.all = [];
  });

  it('subscribes, delivers events and resumes after the last event id on reconnect', () => {
    vi.useFakeTimers();
    let last = 0;
    const got: LiveEvent[] = [];
    const states: string[] = [];
    const s = new LiveSocket({
      url: () => 'ws://x/ws?token=t',
      topic: 'run:r1',
      after: () => last,
      onEvent: (e) => {
        got.push(e);
        last = e.eventId;
      },
      onState: (st) => states.push(st),
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    });
    const first = FakeSocket.all[0]!;
    first.onopen!();
    expect(first.sent).toEqual([{ action: 'subscribe', topic: 'run:r1', after: 0 }]);
    first.onmessage!({ data: JSON.stringify({ type: 'subscribed', topic: 'run:r1' }) });
    first.onmessage!({ data: JSON.stringify({ type: 'node.started', runId: 'r1', workflowId: 'w', eventId: 7, atMs: 1, nodeId: 'a', topic: 'run:r1' }) });
    first.onmessage!({ data: 'not json' });
    expect(got.map((e) => e.eventId)).toEqual([7]);
    first.onclose!();
    expect(states).toContain('closed');
    vi.advanceTimersByTime(600);
    const second = FakeSocket.all[1]!;
    second.onopen!();
    expect(second.sent).toEqual([{ action: 'subscribe', topic: 'run:r1', after: 7 }]);
    s.close();
    expect(second.closed).toBe(true);
    vi.advanceTimersByTime(20_000);
    expect(FakeSocket.all).toHaveLength(2);
  });
});

describe('api client', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('sends the token and turns error bodies into ApiErrors with findings', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      return new Response(
        JSON.stringify({ code: 'invalid_workflow', message: 'the workflow has 1 error(s)', details: { findings: [{ code: 'graph.cycle', severity: 'error', path: '/edges', message: 'a -> b -> a' }] } }),
        { status: 422 },
      );
    });
    let unauthorized = 0;
    configureAuth(() => 'tok', () => (unauthorized += 1));
    const err = await api.publish('w1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    const e = err as ApiError;
    expect(e.status).toBe(422);
    expect(e.code).toBe('invalid_workflow');
    expect(e.message).toBe('the workflow has 1 error(s)');
    expect(e.findings[0]!.code).toBe('graph.cycle');
    expect(calls[0]!.url).toBe('/v1/workflows/w1/publish');
    expect((calls[0]!.init.headers as Record<string, string>).Authorization).toBe('Bearer tok');
    expect(unauthorized).toBe(0);
  });

  it('reports a 401 and sends no token to the public form endpoints', async () => {
    const headers: Record<string, string>[] = [];
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
      headers.push(init.headers as Record<string, string>);
      return new Response(JSON.stringify({ code: 'unauthorized', message: 'expired', details: {} }), { status: 401 });
    });
    let unauthorized = 0;
    configureAuth(() => 'tok', () => (unauthorized += 1));
    await expect(api.getWorkflow('w')).rejects.toThrow('expired');
    expect(unauthorized).toBe(1);
    await expect(api.getForm('f')).rejects.toBeInstanceOf(ApiError);
    expect(headers[1]!.Authorization).toBeUndefined();
    expect(unauthorized).toBe(1);
  });

  it('parses success bodies and empty 204s', async () => {
    vi.stubGlobal('fetch', async (url: string) => (url.includes('runs') ? new Response(JSON.stringify({ items: [] }), { status: 200 }) : new Response(null, { status: 204 })));
    configureAuth(() => null, () => {});
    expect(await api.listRuns({ workflowId: 'w', status: 'FAILED' })).toEqual({ items: [] });
    expect(await api.deleteWorkflow('w')).toBeNull();
  });
});
