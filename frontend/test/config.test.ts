import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, buildUrl, configureAuth, liveUrl } from '../src/api/client';
import { cognitoSettings, defaultConfig, getConfig, loadConfig, parseConfig, setConfig, type AppConfig } from '../src/config';

const page = { protocol: 'https:', host: 'builder.example.test' };
const defaults = defaultConfig(page);

const cloud = {
  apiUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com',
  webSocketUrl: 'wss://ws456.execute-api.eu-west-1.amazonaws.com/live',
  region: 'eu-west-1',
  userPoolId: 'eu-west-1_AbCdEf',
  userPoolClientId: 'client123',
};

function fakeFetch(res: () => Response | Promise<Response>) {
  const calls: { url: string; init?: RequestInit }[] = [];
  const f = (async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    return res();
  }) as unknown as typeof fetch;
  return { f, calls };
}

describe('runtime configuration', () => {
  afterEach(() => setConfig(null));

  it('defaults to the embedded server on the page origin, ws or wss by the page', () => {
    expect(defaults).toEqual({ apiUrl: '', webSocketUrl: 'wss://builder.example.test/ws' });
    expect(defaultConfig({ protocol: 'http:', host: '127.0.0.1:8080' }).webSocketUrl).toBe('ws://127.0.0.1:8080/ws');
  });

  it('loads /config.json without the cache', async () => {
    const { f, calls } = fakeFetch(() => new Response(JSON.stringify(cloud), { status: 200 }));
    const c = await loadConfig(f, defaults);
    expect(c).toEqual(cloud);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url).toBe('/config.json');
    expect(calls[0]!.init?.cache).toBe('no-store');
  });

  it('uses the defaults without a config.json (404), with a malformed one, or an HTML fallback', async () => {
    expect(await loadConfig(fakeFetch(() => new Response('{"code":"not_found"}', { status: 404 })).f, defaults)).toEqual(defaults);
    expect(await loadConfig(fakeFetch(() => new Response('{"apiUrl": ', { status: 200 })).f, defaults)).toEqual(defaults);
    expect(await loadConfig(fakeFetch(() => new Response('<!doctype html><html></html>', { status: 200 })).f, defaults)).toEqual(defaults);
    expect(await loadConfig(fakeFetch(() => new Response('[1, 2]', { status: 200 })).f, defaults)).toEqual(defaults);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(await loadConfig(fakeFetch(() => Promise.reject(new TypeError('offline'))).f, defaults)).toEqual(defaults);
    expect(await loadConfig(fakeFetch(() => new Response('oops', { status: 503 })).f, defaults)).toEqual(defaults);
    expect(warn).toHaveBeenCalledTimes(2);
    warn.mockRestore();
  });

  it('keeps the defaults for missing members and derives the socket of an API elsewhere', () => {
    expect(parseConfig({ apiUrl: 42, region: '' }, defaults)).toEqual(defaults);
    expect(parseConfig({ apiUrl: 'http://127.0.0.1:9000/' }, defaults)).toEqual({ apiUrl: 'http://127.0.0.1:9000', webSocketUrl: 'ws://127.0.0.1:9000/ws' });
    expect(parseConfig({ webSocketUrl: 'https://ws.example.test/live' }, defaults).webSocketUrl).toBe('wss://ws.example.test/live');
  });

  it('names the user pool only with a pool and a client, Cognito’s regional endpoint unless overridden', () => {
    expect(cognitoSettings(defaults)).toBeNull();
    expect(cognitoSettings({ ...defaults, userPoolId: 'eu-west-1_x' })).toBeNull();
    expect(cognitoSettings(cloud)).toEqual({
      region: 'eu-west-1',
      userPoolId: 'eu-west-1_AbCdEf',
      clientId: 'client123',
      endpoint: 'https://cognito-idp.eu-west-1.amazonaws.com/',
    });
    const { region: _r, ...noRegion } = cloud;
    expect(cognitoSettings({ ...noRegion, cognitoEndpoint: 'http://localhost:4566/' } as AppConfig)).toMatchObject({
      region: 'eu-west-1',
      endpoint: 'http://localhost:4566/',
    });
  });
});

describe('URLs from the configuration', () => {
  afterEach(() => {
    setConfig(null);
    vi.unstubAllGlobals();
  });

  it('builds API URLs under apiUrl, relative to the page by default', () => {
    expect(buildUrl('/v1/workflows/{id}', { id: 'a b' }, { limit: 5, cursor: undefined })).toBe('/v1/workflows/a%20b?limit=5');
    setConfig(parseConfig(cloud, defaults));
    expect(getConfig().apiUrl).toBe(cloud.apiUrl);
    expect(buildUrl('/v1/runs/{id}', { id: 'r1' })).toBe(`${cloud.apiUrl}/v1/runs/r1`);
    setConfig(parseConfig({ ...cloud, apiUrl: 'https://api.example.test/prod/' }, defaults));
    expect(buildUrl('/v1/node-types')).toBe('https://api.example.test/prod/v1/node-types');
  });

  it('sends every call, public form calls too, to apiUrl', async () => {
    setConfig(parseConfig(cloud, defaults));
    const { f, calls } = fakeFetch(() => new Response(JSON.stringify({ token: 't', expiresAt: '2030-01-01T00:00:00Z', expiresInSeconds: 60 }), { status: 201 }));
    vi.stubGlobal('fetch', f);
    configureAuth(() => 'id-token', () => {});
    expect((await api.liveTicket()).token).toBe('t');
    await api.getForm('f1');
    expect(calls.map((c) => [c.init?.method, c.url])).toEqual([
      ['POST', `${cloud.apiUrl}/v1/live/tickets`],
      ['GET', `${cloud.apiUrl}/v1/forms/f1`],
    ]);
    expect((calls[0]!.init?.headers as Record<string, string>).Authorization).toBe('Bearer id-token');
  });

  it('appends the token to webSocketUrl', () => {
    setConfig(parseConfig(cloud, defaults));
    expect(liveUrl('a.b+c')).toBe('wss://ws456.execute-api.eu-west-1.amazonaws.com/live?token=a.b%2Bc');
    expect(liveUrl('t', defaults.webSocketUrl)).toBe('wss://builder.example.test/ws?token=t');
    expect(liveUrl('t', 'ws://h/ws?v=1')).toBe('ws://h/ws?v=1&token=t');
  });
});
