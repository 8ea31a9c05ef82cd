// The signed-in session outside React: the token the API gets, and with Cognito the refresh
// token that renews it. Renewal happens shortly before the ID token expires, and when the API
// answers 401 (once per request, see api/client.ts); concurrent renewals share one request.

import { CognitoError, type CognitoClient, type CognitoTokens } from './cognito';
import { decodeToken, isExpired, saveSession, STORAGE_KEY, type Session, type TokenStorage } from './token';

export const REFRESH_KEY = 'concertmaster.refresh';

/** Renew this long before the ID token expires (Cognito's shortest ID token lasts 5 minutes). */
export const RENEW_LEAD_MS = 2 * 60_000;
/** The wait after a renewal that failed without Cognito refusing the token (network), and the
 * least time between two scheduled renewals. */
export const RENEW_RETRY_MS = 30_000;

/** The longest delay setTimeout takes: anything longer fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function renewDelay(expSeconds: number, nowMs: number, leadMs: number = RENEW_LEAD_MS): number {
  return Math.max(0, expSeconds * 1000 - leadMs - nowMs);
}

/** A failure that may pass: the refresh token may still be good, so renewal is tried again later. */
function isTransient(e: unknown): boolean {
  if (!(e instanceof CognitoError)) return false;
  return ['NetworkError', 'InternalErrorException', 'TooManyRequestsException'].includes(e.type) || /^HTTP5\d\d$/.test(e.type);
}

export interface SessionManagerOptions {
  storage: TokenStorage | null;
  /** Set when the configuration names a user pool. */
  cognito: CognitoClient | null;
  now?: () => number;
}

export class SessionManager {
  private session: Session | null = null;
  private refreshToken: string | null = null;
  private readonly listeners = new Set<() => void>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private renewing: Promise<boolean> | null = null;
  /** When the last renewal succeeded (this.now()). */
  private lastRenewal: number | null = null;
  private running = false;
  private readonly storage: TokenStorage | null;
  readonly cognito: CognitoClient | null;
  private readonly now: () => number;

  constructor(opts: SessionManagerOptions) {
    this.storage = opts.storage;
    this.cognito = opts.cognito;
    this.now = opts.now ?? (() => Date.now());
    const raw = this.storage?.getItem(STORAGE_KEY);
    const refresh = this.cognito ? (this.storage?.getItem(REFRESH_KEY) ?? null) : null;
    if (raw) {
      try {
        const s = decodeToken(raw);
        // An expired ID token with a refresh token is renewed at start(), not signed out.
        if (!isExpired(s, this.now()) || refresh) {
          this.session = s;
          this.refreshToken = refresh;
        }
      } catch {
        // A stored token that no longer decodes is as good as none.
      }
    }
    if (!this.session) this.forget();
  }

  get = (): Session | null => this.session;

  get canRenew(): boolean {
    return this.cognito !== null && this.refreshToken !== null;
  }

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  /** Starts the renewal timer (the auth provider's effect; stop() undoes it). */
  start(): void {
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    this.clearTimer();
  }

  /** A pasted token: no refresh token, so it lasts as long as it lasts. */
  signInWithToken(raw: string): Session {
    const s = decodeToken(raw);
    this.set(s, null);
    return s;
  }

  /** The tokens of a completed Cognito sign-in; throws (keeping nothing) when the ID token is not usable. */
  signInWithCognito(tokens: CognitoTokens): Session {
    const s = decodeToken(tokens.idToken);
    this.set(s, tokens.refreshToken ?? null);
    return s;
  }

  /** Forgets both tokens; the refresh token is also revoked at Cognito (best effort). */
  signOut = (): void => {
    const refresh = this.refreshToken;
    this.set(null, null);
    if (refresh && this.cognito) void this.cognito.revoke(refresh).catch(() => {});
  };

  /** A fresh ID token from the refresh token; false when there is none or Cognito refuses it. */
  renew = (): Promise<boolean> => {
    if (!this.cognito || !this.refreshToken) return Promise.resolve(false);
    if (!this.renewing) {
      const refresh = this.refreshToken;
      this.renewing = this.cognito
        .refresh(refresh)
        .then((t) => {
          // Signed out (or in as someone else) meanwhile.
          if (this.refreshToken !== refresh) return false;
          this.lastRenewal = this.now();
          this.set(decodeToken(t.idToken), t.refreshToken ?? refresh);
          return true;
        })
        .catch((e: unknown) => {
          if (this.refreshToken !== refresh) return false;
          if (!isTransient(e)) {
            // Revoked, expired, or an ID token without an organisation: only signing in again helps.
            this.set(null, null);
          } else if (this.running && this.session && !isExpired(this.session, this.now())) {
            this.clearTimer();
            this.timer = setTimeout(() => void this.renew(), RENEW_RETRY_MS);
          }
          return false;
        })
        .finally(() => {
          this.renewing = null;
        });
    }
    return this.renewing;
  };

  private set(s: Session | null, refresh: string | null): void {
    this.session = s;
    this.refreshToken = s ? refresh : null;
    if (this.storage) {
      saveSession(this.storage, s);
      if (this.refreshToken) this.storage.setItem(REFRESH_KEY, this.refreshToken);
      else this.storage.removeItem(REFRESH_KEY);
    }
    this.schedule();
    this.notify();
  }

  private forget(): void {
    this.session = null;
    this.refreshToken = null;
    if (this.storage) {
      saveSession(this.storage, null);
      this.storage.removeItem(REFRESH_KEY);
    }
  }

  private schedule(): void {
    this.clearTimer();
    const s = this.session;
    if (!this.running || !s || s.exp === undefined || !this.canRenew) return;
    let delay = renewDelay(s.exp, this.now());
    // A pool whose ID tokens live shorter than the lead would otherwise be asked in a loop.
    if (this.lastRenewal !== null) delay = Math.max(delay, this.lastRenewal + RENEW_RETRY_MS - this.now());
    if (delay > MAX_TIMER_MS) {
      this.timer = setTimeout(() => this.schedule(), MAX_TIMER_MS);
      return;
    }
    this.timer = setTimeout(() => void this.renew(), delay);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }
}
