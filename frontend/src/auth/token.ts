// Token handling: decoding the JWT payload (no verification: the server verifies), roles and
// storage. Pure functions, tested in test/auth.test.ts.

export type Role = 'viewer' | 'editor' | 'admin';

export const ROLES: readonly Role[] = ['viewer', 'editor', 'admin'];

export interface Session {
  token: string;
  /** Who is signed in: `email`, else `cognito:username`, else `sub`. */
  sub: string;
  org: string;
  role: Role;
  /** Expiry, seconds since the epoch (absent: no expiry claim). */
  exp?: number;
}

export const STORAGE_KEY = 'concertmaster.token';

function base64UrlDecode(part: string): string {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function claim(claims: Record<string, unknown>, names: readonly string[]): unknown {
  for (const n of names) if (claims[n] !== undefined && claims[n] !== null) return claims[n];
  return undefined;
}

/**
 * Decodes a JWT's payload into a session. Throws an Error with a readable message when the
 * text is not a JWT or lacks the claims the API needs. Claims follow the API, which takes the
 * ConcertMaster tokens (`org`, `role`) and Cognito ID tokens (`custom:org`, `custom:role`)
 * alike; an absent role is viewer. The subject shown is the e-mail address when there is one.
 */
export function decodeToken(raw: string): Session {
  const token = raw.trim().replace(/^Bearer\s+/i, '');
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[0] || !parts[1]) {
    throw new Error('not a JWT: expected three dot-separated parts (header.payload.signature)');
  }
  let payload: unknown;
  try {
    payload = JSON.parse(base64UrlDecode(parts[1]!));
  } catch {
    throw new Error('not a JWT: the payload is not base64url-encoded JSON');
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new Error('not a JWT: the payload is not a JSON object');
  }
  const claims = payload as Record<string, unknown>;
  const org = claim(claims, ['custom:org', 'org']);
  const roleClaim = claim(claims, ['custom:role', 'role']) ?? 'viewer';
  if (typeof org !== 'string' || org === '') {
    throw new Error('the token names no organisation (no `custom:org` or `org` claim): ask an administrator to set one');
  }
  if (typeof roleClaim !== 'string' || !(ROLES as readonly string[]).includes(roleClaim)) {
    throw new Error(`the token's role \`${String(roleClaim)}\` is not viewer, editor or admin`);
  }
  const subject = [claims.email, claims['cognito:username'], claims.sub].find((v): v is string => typeof v === 'string' && v !== '');
  const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
  return { token, sub: subject ?? '', org, role: roleClaim as Role, exp };
}

/** Whether `role` is at least `needed` (viewer < editor < admin). */
export function hasRole(role: Role | undefined, needed: Role): boolean {
  if (!role) return false;
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** Editors and admins change workflows, publish, run and decide approvals. */
export const canEdit = (s: Session | null): boolean => hasRole(s?.role, 'editor');
/** Only admins delete workflows. */
export const canDelete = (s: Session | null): boolean => hasRole(s?.role, 'admin');

/** Whether the token has expired at `nowMs` (with no `exp`, never). */
export function isExpired(s: Session, nowMs: number = Date.now()): boolean {
  return s.exp !== undefined && s.exp * 1000 <= nowMs;
}

export interface TokenStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The stored session, or null when absent, malformed or expired. */
export function loadSession(storage: TokenStorage, nowMs: number = Date.now()): Session | null {
  const raw = storage.getItem(STORAGE_KEY);
  if (!raw) return null;
  try {
    const s = decodeToken(raw);
    return isExpired(s, nowMs) ? null : s;
  } catch {
    return null;
  }
}

export function saveSession(storage: TokenStorage, s: Session | null): void {
  if (s) storage.setItem(STORAGE_KEY, s.token);
  else storage.removeItem(STORAGE_KEY);
}
