import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, configureAuth } from '../src/api/client';
import { CognitoClient, CognitoError, otpauthUri, type SignInStep } from '../src/auth/cognito';
import { REFRESH_KEY, renewDelay, SessionManager } from '../src/auth/session';
import { STORAGE_KEY, type TokenStorage } from '../src/auth/token';
import type { CognitoSettings } from '../src/config';

const settings: CognitoSettings = {
  region: 'eu-west-1',
  userPoolId: 'eu-west-1_AbCdEf',
  clientId: 'client123',
  endpoint: 'https://cognito-idp.eu-west-1.amazonaws.com/',
};

function jwt(payload: object): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'RS256', kid: 'k1' })}.${enc(payload)}.c2ln`;
}

const NOW = 1_900_000_000_000;
const idToken = (n: number, extra: object = {}) =>
  jwt({ sub: 'uuid-1', email: 'ada@acme.test', 'custom:org': 'acme', 'custom:role': 'editor', token_use: 'id', n, exp: NOW / 1000 + 3600, ...extra });

interface Req {
  url: string;
  target: string;
  contentType: string;
  body: Record<string, unknown>;
}

/** A Cognito that answers each operation with the next scripted answer, recording the requests. */
function fakeCognito(answers: [operation: string, status: number, body: unknown][]) {
  const requests: Req[] = [];
  const f = (async (url: string, init: RequestInit) => {
    const h = init.headers as Record<string, string>;
    const target = h['X-Amz-Target']!;
    requests.push({ url, target, contentType: h['Content-Type']!, body: JSON.parse(String(init.body)) });
    const next = answers.shift();
    if (!next) throw new Error(`unexpected ${target}`);
    const [op, status, body] = next;
    expect(target).toBe(`AWSCognitoIdentityProviderService.${op}`);
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status });
  }) as unknown as typeof fetch;
  return { client: new CognitoClient(settings, f), requests, answers };
}

const tokens = (n: number, refresh?: string) => ({
  AuthenticationResult: { IdToken: idToken(n), AccessToken: 'access', RefreshToken: refresh, ExpiresIn: 3600, TokenType: 'Bearer' },
  ChallengeParameters: {},
});

function signedIn(step: SignInStep) {
  if (step.kind !== 'signedIn') throw new Error(`expected signedIn, got ${step.kind}`);
  return step.tokens;
}

describe('Cognito sign-in', () => {
  it('signs in with USER_PASSWORD_AUTH against the JSON API', async () => {
    const { client, requests } = fakeCognito([['InitiateAuth', 200, tokens(1, 'refresh-1')]]);
    const t = signedIn(await client.signIn('ada@acme.test', 'pw'));
    expect(t).toEqual({ idToken: idToken(1), refreshToken: 'refresh-1', expiresIn: 3600 });
    expect(requests).toEqual([
      {
        url: 'https://cognito-idp.eu-west-1.amazonaws.com/',
        target: 'AWSCognitoIdentityProviderService.InitiateAuth',
        contentType: 'application/x-amz-json-1.1',
        body: { AuthFlow: 'USER_PASSWORD_AUTH', ClientId: 'client123', AuthParameters: { USERNAME: 'ada@acme.test', PASSWORD: 'pw' } },
      },
    ]);
  });

  it('first sign-in: a new password, then an authenticator app (NEW_PASSWORD_REQUIRED, MFA_SETUP)', async () => {
    const { client, requests, answers } = fakeCognito([
      ['InitiateAuth', 200, { ChallengeName: 'NEW_PASSWORD_REQUIRED', Session: 's1', ChallengeParameters: { USER_ID_FOR_SRP: 'uuid-1', requiredAttributes: '[]', userAttributes: '{"email":"ada@acme.test"}' } }],
      ['RespondToAuthChallenge', 200, { ChallengeName: 'MFA_SETUP', Session: 's2', ChallengeParameters: { MFAS_CAN_SETUP: '["SOFTWARE_TOKEN_MFA"]' } }],
      ['AssociateSoftwareToken', 200, { SecretCode: 'JBSWY3DPEHPK3PXP', Session: 's3' }],
      ['VerifySoftwareToken', 200, { Status: 'SUCCESS', Session: 's4' }],
      ['RespondToAuthChallenge', 200, tokens(2, 'refresh-2')],
    ]);
    const first = await client.signIn('ada@acme.test', 'temporary');
    expect(first).toEqual({ kind: 'newPassword', username: 'uuid-1', session: 's1' });
    const second = await client.setNewPassword(first as Exclude<SignInStep, { kind: 'signedIn' }>, 'N3w-password!');
    expect(second).toEqual({ kind: 'mfaSetup', username: 'uuid-1', session: 's2' });
    const challenge = second as Exclude<SignInStep, { kind: 'signedIn' }>;
    const setup = await client.associateTotp(challenge, 'ada@acme.test');
    expect(setup).toEqual({
      secretCode: 'JBSWY3DPEHPK3PXP',
      session: 's3',
      otpauthUri: 'otpauth://totp/ConcertMaster:ada@acme.test?secret=JBSWY3DPEHPK3PXP&issuer=ConcertMaster',
    });
    const t = signedIn(await client.verifyTotp(challenge, setup, ' 123456 '));
    expect(t.refreshToken).toBe('refresh-2');
    expect(answers).toHaveLength(0);
    expect(requests.slice(1).map((r) => r.body)).toEqual([
      { ClientId: 'client123', ChallengeName: 'NEW_PASSWORD_REQUIRED', Session: 's1', ChallengeResponses: { USERNAME: 'uuid-1', NEW_PASSWORD: 'N3w-password!' } },
      { Session: 's2' },
      { Session: 's3', UserCode: '123456', FriendlyDeviceName: 'ConcertMaster' },
      { ClientId: 'client123', ChallengeName: 'MFA_SETUP', Session: 's4', ChallengeResponses: { USERNAME: 'uuid-1' } },
    ]);
  });

  it('later sign-ins: the authenticator code (SOFTWARE_TOKEN_MFA)', async () => {
    const { client, requests } = fakeCognito([
      ['InitiateAuth', 200, { ChallengeName: 'SOFTWARE_TOKEN_MFA', Session: 's1', ChallengeParameters: { USER_ID_FOR_SRP: 'uuid-1' } }],
      ['RespondToAuthChallenge', 200, tokens(3, 'refresh-3')],
    ]);
    const step = await client.signIn('ada@acme.test', 'pw');
    expect(step).toEqual({ kind: 'mfaCode', username: 'uuid-1', session: 's1' });
    const t = signedIn(await client.answerMfa(step as Exclude<SignInStep, { kind: 'signedIn' }>, '654321'));
    expect(t.idToken).toBe(idToken(3));
    expect(requests[1]!.body).toEqual({
      ClientId: 'client123',
      ChallengeName: 'SOFTWARE_TOKEN_MFA',
      Session: 's1',
      ChallengeResponses: { USERNAME: 'uuid-1', SOFTWARE_TOKEN_MFA_CODE: '654321' },
    });
  });

  it('turns error answers into CognitoErrors with the message to show', async () => {
    const { client } = fakeCognito([
      ['InitiateAuth', 400, { __type: 'NotAuthorizedException', message: 'Incorrect username or password.' }],
      ['InitiateAuth', 400, { __type: 'com.amazonaws.cognito.identity.idp.model#PasswordResetRequiredException', Message: 'Password reset required for the user' }],
      ['InitiateAuth', 502, '<html>Bad gateway</html>'],
      ['InitiateAuth', 200, { ChallengeName: 'SMS_MFA', Session: 's' }],
    ]);
    const e1 = await client.signIn('ada@acme.test', 'wrong').catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(CognitoError);
    expect(e1).toMatchObject({ type: 'NotAuthorizedException', message: 'Incorrect username or password.' });
    await expect(client.signIn('a', 'b')).rejects.toMatchObject({ type: 'PasswordResetRequiredException', message: 'Password reset required for the user' });
    await expect(client.signIn('a', 'b')).rejects.toMatchObject({ type: 'HTTP502', message: 'InitiateAuth failed (HTTP502)' });
    await expect(client.signIn('a', 'b')).rejects.toMatchObject({ type: 'UnsupportedChallenge', message: expect.stringContaining('SMS_MFA') });
    const offline = new CognitoClient(settings, (async () => {
      throw new TypeError('Failed to fetch');
    }) as unknown as typeof fetch);
    await expect(offline.signIn('a', 'b')).rejects.toMatchObject({ type: 'NetworkError', message: 'Cognito cannot be reached (Failed to fetch)' });
  });

  it('refuses a wrong first authenticator code', async () => {
    const { client } = fakeCognito([
      ['VerifySoftwareToken', 200, { Status: 'ERROR' }],
      ['VerifySoftwareToken', 400, { __type: 'EnableSoftwareTokenMFAException', message: 'Code mismatch' }],
    ]);
    const step = { kind: 'mfaSetup', username: 'u', session: 's2' } as const;
    const setup = { secretCode: 'X', otpauthUri: otpauthUri('a@b.c', 'X'), session: 's3' };
    await expect(client.verifyTotp(step, setup, '000000')).rejects.toMatchObject({ type: 'CodeMismatchException' });
    await expect(client.verifyTotp(step, setup, '000000')).rejects.toMatchObject({ message: 'Code mismatch' });
  });

  it('renews with REFRESH_TOKEN_AUTH', async () => {
    const { client, requests } = fakeCognito([['InitiateAuth', 200, tokens(4)]]);
    expect(await client.refresh('refresh-1')).toEqual({ idToken: idToken(4), refreshToken: undefined, expiresIn: 3600 });
    expect(requests[0]!.body).toEqual({ AuthFlow: 'REFRESH_TOKEN_AUTH', ClientId: 'client123', AuthParameters: { REFRESH_TOKEN: 'refresh-1' } });
  });
});

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

describe('Cognito session', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  const settle = () => new Promise<void>((r) => setImmediate(r));

  it('renews the ID token shortly before it expires, keeping the refresh token', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { client, requests, answers } = fakeCognito([['InitiateAuth', 200, tokens(5)]]);
    const st = new MemStorage();
    let now = NOW;
    const m = new SessionManager({ storage: st, cognito: client, now: () => now });
    m.start();
    const s = m.signInWithCognito({ idToken: idToken(1), refreshToken: 'refresh-1', expiresIn: 3600 });
    expect(s).toMatchObject({ sub: 'ada@acme.test', org: 'acme', role: 'editor' });
    expect([st.getItem(STORAGE_KEY), st.getItem(REFRESH_KEY)]).toEqual([idToken(1), 'refresh-1']);
    const changes: unknown[] = [];
    m.subscribe(() => changes.push(m.get()?.token));
    expect(renewDelay(s.exp!, NOW)).toBe(3600_000 - 120_000);
    now += 3600_000 - 120_001;
    await vi.advanceTimersByTimeAsync(3600_000 - 120_001);
    expect(requests).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(requests.map((r) => r.body.AuthFlow)).toEqual(['REFRESH_TOKEN_AUTH']);
    expect(answers).toHaveLength(0);
    expect(m.get()!.token).toBe(idToken(5));
    expect(changes).toEqual([idToken(5)]);
    expect([st.getItem(STORAGE_KEY), st.getItem(REFRESH_KEY)]).toEqual([idToken(5), 'refresh-1']);
    m.stop();
  });

  it('waits for tokens that expire beyond setTimeout’s range, and does not loop on short-lived ones', async () => {
    // The clock moves with the timers here: renewals compute their delay when a timer fires.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: NOW });
    const month = 30 * 24 * 3600;
    // Cognito answers with ID tokens that expire within the renewal lead.
    const short = () => ({ AuthenticationResult: { IdToken: idToken(9, { exp: Math.floor(Date.now() / 1000) + 60 }) } });
    const { client, requests, answers } = fakeCognito([]);
    const m = new SessionManager({ storage: new MemStorage(), cognito: client, now: () => Date.now() });
    m.start();
    m.signInWithCognito({ idToken: idToken(1, { exp: NOW / 1000 + month }), refreshToken: 'refresh-1' });
    const advance = async (ms: number) => {
      await vi.advanceTimersByTimeAsync(ms);
      await settle();
    };
    await advance(1000);
    expect(requests).toHaveLength(0);
    await advance(month * 1000 - 120_000 - 1000 - 1);
    expect(requests).toHaveLength(0);
    for (let i = 0; i < 3; i += 1) answers.push(['InitiateAuth', 200, short()]);
    await advance(1);
    expect(requests).toHaveLength(1);
    // The renewed token is already inside the lead: the next renewal waits RENEW_RETRY_MS.
    await advance(29_999);
    expect(requests).toHaveLength(1);
    await advance(1);
    expect(requests).toHaveLength(2);
    m.stop();
  });

  it('renews once on a 401 from the API (one refresh for concurrent requests) and repeats them', async () => {
    const { client, requests } = fakeCognito([['InitiateAuth', 200, tokens(6, 'refresh-2')]]);
    const m = new SessionManager({ storage: new MemStorage(), cognito: client, now: () => NOW });
    m.signInWithCognito({ idToken: idToken(1), refreshToken: 'refresh-1' });
    let signedOut = 0;
    configureAuth(() => m.get()?.token ?? null, () => (signedOut += 1), m.renew);
    const apiSeen: string[] = [];
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
      const auth = (init.headers as Record<string, string>).Authorization!;
      apiSeen.push(auth === `Bearer ${idToken(6)}` ? 'new' : 'old');
      return auth === `Bearer ${idToken(6)}`
        ? new Response(JSON.stringify({ items: [] }), { status: 200 })
        : new Response(JSON.stringify({ code: 'unauthorized', message: 'expired', details: {} }), { status: 401 });
    });
    const [a, b] = await Promise.all([api.listRuns(), api.listApprovals()]);
    expect([a, b]).toEqual([{ items: [] }, { items: [] }]);
    expect(requests).toHaveLength(1);
    expect(apiSeen.sort()).toEqual(['new', 'new', 'old', 'old']);
    expect(signedOut).toBe(0);
    expect(m.get()!.token).toBe(idToken(6));
  });

  it('signs out when Cognito refuses the refresh token', async () => {
    const { client } = fakeCognito([['InitiateAuth', 400, { __type: 'NotAuthorizedException', message: 'Refresh Token has been revoked' }]]);
    const st = new MemStorage();
    const m = new SessionManager({ storage: st, cognito: client, now: () => NOW });
    m.signInWithCognito({ idToken: idToken(1), refreshToken: 'refresh-1' });
    expect(await m.renew()).toBe(false);
    expect(m.get()).toBeNull();
    expect([st.getItem(STORAGE_KEY), st.getItem(REFRESH_KEY)]).toEqual([null, null]);
  });

  it('keeps the session through a network failure and tries again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let calls = 0;
    const client = new CognitoClient(settings, (async () => {
      calls += 1;
      if (calls === 1) throw new TypeError('offline');
      return new Response(JSON.stringify(tokens(7)), { status: 200 });
    }) as unknown as typeof fetch);
    const m = new SessionManager({ storage: new MemStorage(), cognito: client, now: () => NOW });
    m.start();
    m.signInWithCognito({ idToken: idToken(1), refreshToken: 'refresh-1' });
    expect(await m.renew()).toBe(false);
    expect(m.get()!.token).toBe(idToken(1));
    await vi.advanceTimersByTimeAsync(30_000);
    await settle();
    expect(calls).toBe(2);
    expect(m.get()!.token).toBe(idToken(7));
    m.stop();
  });

  it('restores a stored session, renewing an expired ID token instead of signing out', async () => {
    const st = new MemStorage();
    st.setItem(STORAGE_KEY, idToken(1, { exp: NOW / 1000 - 10 }));
    st.setItem(REFRESH_KEY, 'refresh-1');
    const { client, requests } = fakeCognito([['InitiateAuth', 200, tokens(8)]]);
    const m = new SessionManager({ storage: st, cognito: client, now: () => NOW });
    expect(m.get()?.org).toBe('acme');
    m.start();
    await vi.waitFor(() => expect(m.get()!.token).toBe(idToken(8)));
    expect(requests[0]!.body.AuthParameters).toEqual({ REFRESH_TOKEN: 'refresh-1' });
    expect(m.get()!.token).toBe(idToken(8));
    m.stop();
    // Without a user pool (the embedded server) an expired token is dropped, with any refresh token.
    const st2 = new MemStorage();
    st2.setItem(STORAGE_KEY, idToken(1, { exp: NOW / 1000 - 10 }));
    st2.setItem(REFRESH_KEY, 'refresh-1');
    expect(new SessionManager({ storage: st2, cognito: null, now: () => NOW }).get()).toBeNull();
    expect(st2.getItem(REFRESH_KEY)).toBeNull();
  });

  it('signs out: forgets both tokens and revokes the refresh token; a pasted token has none', async () => {
    const { client, requests } = fakeCognito([['RevokeToken', 200, {}]]);
    const st = new MemStorage();
    const m = new SessionManager({ storage: st, cognito: client, now: () => NOW });
    m.signInWithCognito({ idToken: idToken(1), refreshToken: 'refresh-1' });
    m.signOut();
    expect(m.get()).toBeNull();
    expect([st.getItem(STORAGE_KEY), st.getItem(REFRESH_KEY)]).toEqual([null, null]);
    await settle();
    expect(requests.map((r) => [r.target, r.body])).toEqual([['AWSCognitoIdentityProviderService.RevokeToken', { ClientId: 'client123', Token: 'refresh-1' }]]);

    m.signInWithCognito({ idToken: idToken(1), refreshToken: 'refresh-1' });
    const pasted = jwt({ sub: 'ops', org: 'acme', role: 'admin' });
    m.signInWithToken(pasted);
    expect([st.getItem(STORAGE_KEY), st.getItem(REFRESH_KEY)]).toEqual([pasted, null]);
    expect(await m.renew()).toBe(false);
  });

  it('keeps nothing when the ID token names no organisation', () => {
    const st = new MemStorage();
    const m = new SessionManager({ storage: st, cognito: fakeCognito([]).client, now: () => NOW });
    expect(() => m.signInWithCognito({ idToken: idToken(1, { 'custom:org': undefined }), refreshToken: 'r' })).toThrow(/organisation/);
    expect(m.get()).toBeNull();
    expect(st.getItem(REFRESH_KEY)).toBeNull();
  });
});
