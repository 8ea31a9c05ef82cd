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

  it('decodes a Cognito ID token: custom:org, custom:role, the e-mail as the subject', () => {
    const claims = {
      sub: '5f0c2a4e-1111-2222-3333-444455556666',
      'cognito:username': '5f0c2a4e-1111-2222-3333-444455556666',
      email: 'ada@acme.test',
      email_verified: true,
      'custom:org': 'acme',
      'custom:role': 'editor',
      iss: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf',
      aud: 'client123',
      token_use: 'id',
      auth_time: 1_900_000_000,
      exp: 1_900_003_600,
      iat: 1_900_000_000,
    };
    const t = jwt(claims);
    expect(decodeToken(t)).toEqual({ token: t, sub: 'ada@acme.test', org: 'acme', role: 'editor', exp: 1_900_003_600 });
    // The custom attributes win over plain claims of the same meaning.
    expect(decodeToken(jwt({ ...claims, org: 'other', role: 'admin' }))).toMatchObject({ org: 'acme', role: 'editor' });
    // Without an e-mail: the Cognito username, then the subject.
    const { email: _e, ...noEmail } = claims;
    expect(decodeToken(jwt({ ...noEmail, 'cognito:username': 'ada' })).sub).toBe('ada');
    const { 'cognito:username': _u, ...onlySub } = noEmail;
    expect(decodeToken(jwt(onlySub)).sub).toBe(claims.sub);
  });

  it('refuses a Cognito ID token without an organisation or with an unknown role', () => {
    const base = { sub: 'u', email: 'ada@acme.test', token_use: 'id' };
    expect(() => decodeToken(jwt({ ...base, 'custom:role': 'admin' }))).toThrow(/no organisation.*custom:org/);
    expect(() => decodeToken(jwt({ ...base, 'custom:org': '' }))).toThrow(/custom:org/);
    expect(() => decodeToken(jwt({ ...base, 'custom:org': 'acme', 'custom:role': 'owner' }))).toThrow("the token's role `owner` is not viewer, editor or admin");
    expect(decodeToken(jwt({ ...base, 'custom:org': 'acme' })).role).toBe('viewer');
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
