import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, configureAuth, liveTicketUrl } from '../src/api/client';
import { setConfig } from '../src/config';
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

describe('live socket with tickets', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
    setConfig(null);
    FakeSocket.all = [];
  });

  // Only the socket's timers are fake; I/O settles on the real event loop.
  const settle = () => new Promise<void>((r) => setImmediate(r));
  const fakeTimers = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });

  /** The API answers ticket requests in order: a token, or an HTTP status. */
  function ticketServer(answers: (string | number)[]) {
    const asked: string[] = [];
    vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
      asked.push(`${init.method} ${url} ${(init.headers as Record<string, string>).Authorization ?? ''}`);
      const a = answers.shift() ?? 500;
      return typeof a === 'string'
        ? new Response(JSON.stringify({ token: a, expiresAt: '2030-01-01T00:00:00Z', expiresInSeconds: 60 }), { status: 201 })
        : new Response(JSON.stringify({ code: a === 401 ? 'unauthorized' : 'internal', message: a === 401 ? 'the token has expired' : 'boom', details: {} }), { status: a });
    });
    return asked;
  }

  function open(states: [string, string | undefined][]) {
    return new LiveSocket({
      url: liveTicketUrl,
      topic: 'run:r1',
      after: () => 0,
      onEvent: () => {},
      onState: (st, detail) => states.push([st, detail]),
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    });
  }

  it('asks for a ticket on every connect and opens the configured socket URL with it', async () => {
    fakeTimers();
    setConfig({ apiUrl: 'https://api.example.test', webSocketUrl: 'wss://ws.example.test/live' });
    configureAuth(() => 'id-token', () => {});
    const asked = ticketServer(['ticket-1', 'ticket-2']);
    const s = open([]);
    await settle();
    expect(FakeSocket.all).toHaveLength(1);
    expect(FakeSocket.all[0]!.url).toBe('wss://ws.example.test/live?token=ticket-1');
    expect(asked).toEqual(['POST https://api.example.test/v1/live/tickets Bearer id-token']);
    FakeSocket.all[0]!.onopen!();
    FakeSocket.all[0]!.onclose!();
    await vi.advanceTimersByTimeAsync(600);
    await settle();
    expect(FakeSocket.all).toHaveLength(2);
    expect(FakeSocket.all[1]!.url).toBe('wss://ws.example.test/live?token=ticket-2');
    expect(asked).toHaveLength(2);
    s.close();
  });

  it('treats a refused ticket as a failed attempt: the detail, then a reconnect with backoff', async () => {
    fakeTimers();
    setConfig({ apiUrl: '', webSocketUrl: 'ws://127.0.0.1:8080/ws' });
    let unauthorized = 0;
    configureAuth(() => 'tok', () => (unauthorized += 1));
    const asked = ticketServer([401, 503, 'ticket-3']);
    const states: [string, string | undefined][] = [];
    const s = open(states);
    await settle();
    expect(states).toContainEqual(['closed', 'the token has expired']);
    expect(FakeSocket.all).toHaveLength(0);
    expect(unauthorized).toBe(1);
    // Backoff: 500 ms after the first failure, 1 s after the second.
    await vi.advanceTimersByTimeAsync(499);
    expect(asked).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(states).toContainEqual(['closed', 'boom']);
    expect(asked).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(asked).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(FakeSocket.all).toHaveLength(1);
    expect(FakeSocket.all[0]!.url).toBe('ws://127.0.0.1:8080/ws?token=ticket-3');
    expect(states.map(([st]) => st)).toEqual(['connecting', 'closed', 'connecting', 'closed', 'connecting']);
    FakeSocket.all[0]!.onopen!();
    expect(states.at(-1)).toEqual(['open', undefined]);
    s.close();
  });

  it('opens no socket when closed while the ticket is on its way', async () => {
    let answer: (u: string) => void = () => {};
    const s = new LiveSocket({
      url: () => new Promise<string>((r) => (answer = r)),
      topic: 'run:r1',
      after: () => 0,
      onEvent: () => {},
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    });
    s.close();
    answer('ws://x/ws?token=late');
    await Promise.resolve();
    expect(FakeSocket.all).toHaveLength(0);
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

  it('renews the token once on a 401 and repeats the request with the new one', async () => {
    const seen: string[] = [];
    let token = 'old';
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
      const auth = (init.headers as Record<string, string>).Authorization!;
      seen.push(auth);
      return auth === 'Bearer new'
        ? new Response(JSON.stringify({ items: [] }), { status: 200 })
        : new Response(JSON.stringify({ code: 'unauthorized', message: 'expired', details: {} }), { status: 401 });
    });
    let unauthorized = 0;
    let renewals = 0;
    const renew = async () => {
      renewals += 1;
      token = 'new';
      return true;
    };
    configureAuth(() => token, () => (unauthorized += 1), renew);
    expect(await api.listRuns()).toEqual({ items: [] });
    expect(seen).toEqual(['Bearer old', 'Bearer new']);
    expect([renewals, unauthorized]).toEqual([1, 0]);

    // Still 401 with the renewed token: no second renewal, signed out.
    token = 'old';
    seen.length = 0;
    configureAuth(() => token, () => (unauthorized += 1), async () => ((renewals += 1), true));
    await expect(api.listRuns()).rejects.toThrow('expired');
    expect(seen).toEqual(['Bearer old', 'Bearer old']);
    expect([renewals, unauthorized]).toEqual([2, 1]);

    // Nothing to renew with: signed out at once.
    seen.length = 0;
    configureAuth(() => token, () => (unauthorized += 1), async () => false);
    await expect(api.listRuns()).rejects.toThrow('expired');
    expect(seen).toHaveLength(1);
    expect(unauthorized).toBe(2);
  });

  it('parses success bodies and empty 204s', async () => {
    vi.stubGlobal('fetch', async (url: string) => (url.includes('runs') ? new Response(JSON.stringify({ items: [] }), { status: 200 }) : new Response(null, { status: 204 })));
    configureAuth(() => null, () => {});
    expect(await api.listRuns({ workflowId: 'w', status: 'FAILED' })).toEqual({ items: [] });
    expect(await api.deleteWorkflow('w')).toBeNull();
  });
});
