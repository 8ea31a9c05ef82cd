import { describe, expect, it } from 'vitest';
import { canDelete, canEdit, decodeToken, hasRole, isExpired, loadSession, saveSession, STORAGE_KEY, type TokenStorage } from '../src/auth/token';

function jwt(payload: object): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(payload)}.c2ln`;
}

class MemStorage implements TokenStorage {
  m = new Map<string, string>();
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

describe('auth token', () => {
  it('decodes sub, org, role and exp', () => {
    const t = jwt({ sub: 'ada@acme.test', org: 'acme', role: 'editor', exp: 2_000_000_000 });
    expect(decodeToken(`  ${t}\n`)).toEqual({ token: t, sub: 'ada@acme.test', org: 'acme', role: 'editor', exp: 2_000_000_000 });
    expect(decodeToken(`Bearer ${t}`).token).toBe(t);
  });

  it('decodes a real dev token (unicode-safe base64url)', () => {
    const t = jwt({ sub: 'zoë', org: 'dev', role: 'admin' });
    expect(decodeToken(t)).toMatchObject({ sub: 'zoë', org: 'dev', role: 'admin' });
  });

  it('accepts the cloud claim names and defaults the role to viewer', () => {
    expect(decodeToken(jwt({ sub: 'x', 'custom:org': 'acme', 'custom:role': 'admin' }))).toMatchObject({ org: 'acme', role: 'admin' });
    expect(decodeToken(jwt({ sub: 'x', org: 'acme' })).role).toBe('viewer');
  });

  it('refuses what is not a usable token', () => {
    expect(() => decodeToken('hello')).toThrow(/not a JWT/);
    expect(() => decodeToken('a.b.c')).toThrow(/not a JWT/);
    expect(() => decodeToken(jwt({ sub: 'x' }))).toThrow(/org/);
    expect(() => decodeToken(jwt({ sub: 'x', org: 'a', role: 'owner' }))).toThrow(/role/);
  });

  it('orders roles viewer < editor < admin', () => {
    expect(hasRole('viewer', 'viewer')).toBe(true);
    expect(hasRole('viewer', 'editor')).toBe(false);
    expect(hasRole('editor', 'editor')).toBe(true);
    expect(hasRole('admin', 'editor')).toBe(true);
    expect(hasRole(undefined, 'viewer')).toBe(false);
    const s = (role: 'viewer' | 'editor' | 'admin') => decodeToken(jwt({ sub: 'x', org: 'o', role }));
    expect([canEdit(s('viewer')), canEdit(s('editor')), canEdit(s('admin')), canEdit(null)]).toEqual([false, true, true, false]);
    expect([canDelete(s('editor')), canDelete(s('admin'))]).toEqual([false, true]);
  });

  it('stores the token and drops an expired one', () => {
    const st = new MemStorage();
    const s = decodeToken(jwt({ sub: 'x', org: 'o', role: 'editor', exp: 100 }));
    saveSession(st, s);
    expect(st.getItem(STORAGE_KEY)).toBe(s.token);
    expect(loadSession(st, 99_000)).toEqual(s);
    expect(isExpired(s, 100_000)).toBe(true);
    expect(loadSession(st, 100_000)).toBeNull();
    st.setItem(STORAGE_KEY, 'garbage');
    expect(loadSession(st)).toBeNull();
    saveSession(st, null);
    expect(st.getItem(STORAGE_KEY)).toBeNull();
  });
});
