// The live status WebSocket: subscribes to one topic, reconnects with backoff and resumes
// with `after` = the last event id the caller has seen (no gap, no duplicate).

import type { LiveEvent } from '../api/types';

export type SocketState = 'connecting' | 'open' | 'closed';

export interface LiveSocketOptions {
  /**
   * Asked on every (re)connect: the URL may carry a short-lived ticket. A rejected promise is a
   * failed attempt (reconnect with backoff, the error's message as the detail).
   */
  url: () => string | Promise<string>;
  topic: string;
  /** The last event id seen (0: replay everything). */
  after: () => number;
  onEvent: (e: LiveEvent) => void;
  onState?: (s: SocketState, detail?: string) => void;
  /** WebSocket constructor (tests inject one). */
  WebSocketImpl?: typeof WebSocket;
}

function errorDetail(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const EVENT_TYPES = new Set(['run.started', 'node.started', 'node.succeeded', 'node.failed', 'run.finished']);

export class LiveSocket {
  private ws: WebSocket | null = null;
  private closed = false;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly opts: LiveSocketOptions;

  constructor(opts: LiveSocketOptions) {
    this.opts = opts;
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    this.opts.onState?.('connecting');
    let url: string | Promise<string>;
    try {
      url = this.opts.url();
    } catch (e) {
      this.scheduleReconnect(errorDetail(e));
      return;
    }
    if (typeof url === 'string') this.open(url);
    else
      url.then(
        (u) => this.open(u),
        (e: unknown) => this.scheduleReconnect(errorDetail(e)),
      );
  }

  private open(url: string): void {
    // Closed while the URL was being fetched.
    if (this.closed) return;
    const Impl = this.opts.WebSocketImpl ?? WebSocket;
    let ws: WebSocket;
    try {
      ws = new Impl(url);
    } catch (e) {
      this.scheduleReconnect(errorDetail(e));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.opts.onState?.('open');
      ws.send(JSON.stringify({ action: 'subscribe', topic: this.opts.topic, after: this.opts.after() }));
    };
    ws.onmessage = (m) => {
      let frame: { type?: string; topic?: string; message?: string };
      try {
        frame = JSON.parse(String(m.data));
      } catch {
        return;
      }
      if (frame.type && EVENT_TYPES.has(frame.type)) this.opts.onEvent(frame as LiveEvent);
      else if (frame.type === 'error') this.opts.onState?.('open', frame.message);
      else if (frame.type === 'heartbeat') ws.send(JSON.stringify({ action: 'ping' }));
    };
    ws.onclose = () => {
      if (this.ws === ws) this.ws = null;
      this.scheduleReconnect('disconnected');
    };
    ws.onerror = () => {
      // onclose follows.
    };
  }

  private scheduleReconnect(detail: string): void {
    if (this.closed) return;
    this.opts.onState?.('closed', detail);
    const delay = Math.min(10_000, 500 * 2 ** this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
  }
}
