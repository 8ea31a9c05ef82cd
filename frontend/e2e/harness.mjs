// Shared by the browser end-to-end tests (e2e/*.test.mjs) and the canvas benchmark
// (bench/canvas.mjs): start `concertmaster dev` on a free loopback port with a fresh data
// directory, start Debian's chromium headless with a fresh profile, drive it with
// playwright-core over the DevTools protocol, and stop both again.
//
// Chromium is started here (not by Playwright's launcher) so that its exact command line is
// ours, its process is a child of this Node process (same process group: `setsid` around the
// runner stops everything at once) and no browser is ever downloaded.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const FRONTEND = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(FRONTEND, '..');

/** The chromium flags the project runs with (plus a fresh --user-data-dir and the debugging port). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

const children = new Set();

function killAll(signal = 'SIGKILL') {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill(signal);
      } catch {
        /* gone */
      }
    }
  }
}
// Whatever happens to this process, its server and browser do not outlive it.
process.on('exit', () => killAll('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    killAll('SIGKILL');
    process.exit(128 + (os.constants.signals[sig] ?? 1));
  });
}

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Stop a child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child, graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/**
 * Read `stream` line by line (kept in `transcript`, the last 400 lines); resolve with the
 * matches of every regular expression in `res` once each has matched a line; reject when the
 * process exits first or after `timeoutMs`.
 */
function waitForLines(child, stream, res, what, timeoutMs, transcript) {
  return new Promise((resolve, reject) => {
    const found = res.map(() => null);
    const rl = readline.createInterface({ input: stream });
    const timer = setTimeout(() => fail(new Error(`${what}: no ${res.filter((_, i) => !found[i]).join(', ')} within ${timeoutMs} ms`)), timeoutMs);
    const onExit = (code, sig) => fail(new Error(`${what} exited (${code ?? sig}) before printing ${res.filter((_, i) => !found[i]).join(', ')}`));
    let done = false;
    function fail(e) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.off('exit', onExit);
      e.message += transcript.length ? `\n--- ${what} output ---\n${transcript.join('\n')}` : '';
      reject(e);
    }
    child.once('exit', onExit);
    rl.on('line', (line) => {
      transcript.push(line);
      if (transcript.length > 400) transcript.shift();
      if (done) return;
      res.forEach((re, i) => {
        const m = found[i] ? null : re.exec(line);
        if (m) found[i] = m;
      });
      if (found.every(Boolean)) {
        done = true;
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(found);
      }
    });
  });
}

export function concertmasterBinary() {
  const bin = process.env.CM_BIN ? path.resolve(process.env.CM_BIN) : path.join(REPO, 'target/debug/concertmaster');
  if (!fs.existsSync(bin)) throw new Error(`${bin} does not exist: cargo build -p concertmaster (or set CM_BIN)`);
  return bin;
}

/**
 * `concertmaster dev --port 0` with a fresh data directory, serving frontend/dist.
 * Returns {url, token, dataDir, bin, mintToken(role, sub), log(), stop()}.
 */
export async function startServer({ examples = true, builderDir = path.join(FRONTEND, 'dist') } = {}) {
  const bin = concertmasterBinary();
  if (!fs.existsSync(path.join(builderDir, 'index.html'))) {
    throw new Error(`${builderDir}/index.html is missing: run \`npx vite build\` in frontend/ first`);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cm-e2e-data-'));
  const args = ['dev', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, '--builder-dir', builderDir];
  if (!examples) args.push('--no-examples');
  const child = track(spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } }));
  const transcript = [];
  const errLines = [];
  readline.createInterface({ input: child.stderr }).on('line', (l) => {
    errLines.push(l);
    if (errLines.length > 400) errLines.shift();
  });
  // The reader keeps draining stdout afterwards, so the server never blocks on a full pipe.
  const [[, url], [, token]] = await waitForLines(
    child,
    child.stdout,
    [/ConcertMaster dev server on (http:\/\/127\.0\.0\.1:\d+)/, /^\s*token:\s+(\S+)/],
    'concertmaster dev',
    60_000,
    transcript,
  );
  return {
    url,
    token,
    dataDir,
    bin,
    /** A token of another role, signed with this data directory's key. */
    mintToken(role, sub) {
      const r = spawnSync(bin, ['token', '--data-dir', dataDir, '--org', 'dev', '--role', role, '--sub', sub], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`concertmaster token failed: ${r.stderr}`);
      return r.stdout.trim();
    },
    log: () => [...transcript, '--- stderr ---', ...errLines].join('\n'),
    async stop() {
      await stopChild(child);
      fs.rmSync(dataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}

/**
 * Debian's chromium, headless, fresh profile, connected over CDP.
 * Returns {browser, version, pid, stop()}.
 */
export async function startChromium({ extraArgs = [] } = {}) {
  const exe = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!fs.existsSync(exe)) throw new Error(`${exe} is missing: apt-get install -y --no-install-recommends chromium`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cm-e2e-chromium-'));
  const args = [...CHROMIUM_ARGS, `--user-data-dir=${profile}`, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', ...extraArgs, 'about:blank'];
  const child = track(spawn(exe, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  const transcript = [];
  const [[, ws]] = await waitForLines(child, child.stderr, [/DevTools listening on (ws:\/\/\S+)/], 'chromium', 60_000, transcript);
  const browser = await chromium.connectOverCDP(ws);
  return {
    browser,
    version: browser.version(),
    pid: child.pid,
    /** CPU seconds used so far by all of chromium's processes (browser, renderers, GPU/viz). */
    async cpuSeconds() {
      const cdp = (this._cdp ??= await browser.newBrowserCDPSession());
      const { processInfo } = await cdp.send('SystemInfo.getProcessInfo');
      return processInfo.reduce((a, p) => a + p.cpuTime, 0);
    },
    async stop() {
      await browser.close().catch(() => {});
      await stopChild(child, 3000);
      // Chromium's helper processes may still be writing to the profile for a moment.
      for (let i = 0; i < 20; i += 1) {
        try {
          fs.rmSync(profile, { recursive: true, force: true });
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
}

/** A small API client for set-up and checks (the UI is what the tests exercise). */
export function apiClient(baseUrl, token) {
  async function call(method, p, body, { expect } = {}) {
    const res = await fetch(baseUrl + p, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    if (expect ? res.status !== expect : !res.ok) throw new Error(`${method} ${p} → ${res.status}: ${text.slice(0, 500)}`);
    return json;
  }
  return {
    call,
    get: (p) => call('GET', p),
    post: (p, body) => call('POST', p, body ?? {}),
    put: (p, body) => call('PUT', p, body),
    createWorkflow: (definition) => call('POST', '/v1/workflows', { definition }),
    publish: (id) => call('POST', `/v1/workflows/${encodeURIComponent(id)}/publish`, {}),
    startRun: (id, input) => call('POST', `/v1/workflows/${encodeURIComponent(id)}/runs`, { input }),
    runs: (workflowId) => call('GET', `/v1/runs?workflowId=${encodeURIComponent(workflowId)}`),
    run: (runId) => call('GET', `/v1/runs/${runId}`),
  };
}

/** Poll `f` until it returns a truthy value (API state the UI does not show); no fixed sleeps elsewhere. */
export async function until(f, { timeoutMs = 20_000, intervalMs = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
