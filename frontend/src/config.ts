// Runtime configuration: where the API and the live socket are, and the Cognito user pool to
// sign in with. The cloud deployment writes `/config.json` next to index.html; the embedded
// server (`concertmaster dev`) has none, and the builder then talks to its own origin.

export interface AppConfig {
  /** Base of every API call, without a trailing slash ('' = the page's origin). */
  apiUrl: string;
  /** The live status WebSocket (`?token=` is appended). */
  webSocketUrl: string;
  region?: string;
  userPoolId?: string;
  userPoolClientId?: string;
  /** Cognito's JSON endpoint, for emulators (default `https://cognito-idp.<region>.amazonaws.com/`). */
  cognitoEndpoint?: string;
}

export interface CognitoSettings {
  region: string;
  userPoolId: string;
  clientId: string;
  endpoint: string;
}

type PageLocation = Pick<Location, 'protocol' | 'host'>;

function pageLocation(): PageLocation | undefined {
  return typeof location === 'undefined' ? undefined : location;
}

function wsScheme(url: string): string {
  return url.replace(/^http(s?):/i, (_, s: string) => `ws${s}:`);
}

/** The embedded server's layout: the API on this origin, the socket at `/ws`. */
export function defaultConfig(loc: PageLocation | undefined = pageLocation()): AppConfig {
  const host = loc?.host || 'localhost';
  const scheme = loc?.protocol === 'https:' ? 'wss:' : 'ws:';
  return { apiUrl: '', webSocketUrl: `${scheme}//${host}/ws` };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/**
 * A config document over the defaults. Members that are missing or not strings keep their
 * default; an `apiUrl` without a `webSocketUrl` means an embedded server elsewhere (its `/ws`).
 */
export function parseConfig(raw: unknown, defaults: AppConfig = defaultConfig()): AppConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return defaults;
  const r = raw as Record<string, unknown>;
  const apiUrl = str(r.apiUrl)?.replace(/\/+$/, '');
  let webSocketUrl = str(r.webSocketUrl);
  if (!webSocketUrl && apiUrl && /^https?:\/\//i.test(apiUrl)) webSocketUrl = `${wsScheme(apiUrl)}/ws`;
  const out: AppConfig = {
    apiUrl: apiUrl ?? defaults.apiUrl,
    webSocketUrl: webSocketUrl ? wsScheme(webSocketUrl) : defaults.webSocketUrl,
  };
  for (const k of ['region', 'userPoolId', 'userPoolClientId', 'cognitoEndpoint'] as const) {
    const v = str(r[k]);
    if (v) out[k] = v;
  }
  return out;
}

/**
 * Fetches `/config.json` (never from a cache: a redeployment may move the APIs). Never throws:
 * without a usable document the builder runs against its own origin.
 */
export async function loadConfig(
  fetchImpl: typeof fetch = fetch,
  defaults: AppConfig = defaultConfig(),
  timeoutMs = 10_000,
): Promise<AppConfig> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetchImpl('/config.json', { cache: 'no-store', headers: { Accept: 'application/json' }, signal: abort.signal });
    if (!res.ok) {
      if (res.status !== 404) console.warn(`/config.json: HTTP ${res.status}; using the defaults`);
      return defaults;
    }
    const text = await res.text();
    try {
      return parseConfig(JSON.parse(text), defaults);
    } catch {
      // An app-route fallback answers unknown paths with index.html.
      return defaults;
    }
  } catch (e) {
    console.warn(`/config.json could not be loaded (${(e as Error).message}); using the defaults`);
    return defaults;
  } finally {
    clearTimeout(timer);
  }
}

let current: AppConfig | null = null;

/** Set once at start-up (main.tsx), before anything renders; tests set their own. */
export function setConfig(c: AppConfig | null): void {
  current = c;
}

export function getConfig(): AppConfig {
  return current ?? defaultConfig();
}

/** The user pool to sign in with, when the configuration names one. */
export function cognitoSettings(c: AppConfig = getConfig()): CognitoSettings | null {
  if (!c.userPoolId || !c.userPoolClientId) return null;
  // A pool id is `<region>_<id>`; config.json names the region too.
  const region = c.region ?? c.userPoolId.split('_')[0] ?? '';
  const endpoint = c.cognitoEndpoint ?? `https://cognito-idp.${region}.amazonaws.com/`;
  return { region, userPoolId: c.userPoolId, clientId: c.userPoolClientId, endpoint };
}
