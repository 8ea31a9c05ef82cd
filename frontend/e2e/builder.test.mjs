// Browser end-to-end tests of the web builder: Debian's chromium (headless) driven by
// playwright-core against `concertmaster dev` started here on a free loopback port with a fresh
// data directory, serving frontend/dist (build it first: `npx vite build`).
//
//   node --test e2e/          (from frontend/; or `npm run e2e`)
//
// Every step waits on a DOM state (locator waits, WebSocket-driven changes) or on API state,
// never on a fixed sleep. Screenshots go to target/e2e-artifacts/ (a FAILED-*.png for a step
// that fails, with the page's URL, console errors and the server log printed).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { apiClient, REPO, startChromium, startServer, until } from './harness.mjs';
import { benchSmoke } from '../bench/canvas.mjs';

const ARTIFACTS = process.env.CM_E2E_ARTIFACTS ?? path.join(REPO, 'target/e2e-artifacts');
const TIMEOUT = Number(process.env.CM_E2E_TIMEOUT_MS ?? 20_000);
const STEP_TIMEOUT = 120_000;

let server;
let chrome;
let api;
const pageErrors = [];
const consoleErrors = [];

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of fs.readdirSync(ARTIFACTS)) if (f.endsWith('.png')) fs.rmSync(path.join(ARTIFACTS, f));
  server = await startServer();
  chrome = await startChromium();
  api = apiClient(server.url, server.token);
  console.log(`# server ${server.url}, chromium ${chrome.version} (pid ${chrome.pid}), artifacts ${ARTIFACTS}`);
});

after(async () => {
  await chrome?.stop();
  await server?.stop();
});

/** A fresh browser context (own localStorage) and page with the listeners every test wants. */
async function newPage() {
  const context = await chrome.browser.newContext({ viewport: { width: 1600, height: 1000 } });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.stack ?? e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
  // Leaving an editor with unsaved changes asks; deleting asks.
  page.on('dialog', (d) => void d.accept());
  return page;
}

async function shot(page, name) {
  if (!page || page.isClosed()) return null;
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false, timeout: 10_000 }).catch((e) => console.error(`# screenshot ${name} failed: ${e.message}`));
  return file;
}

/**
 * A test that is one step of a scenario: skipped once an earlier step of the scenario failed;
 * on failure a FAILED-<scenario>-<n>.png screenshot and the context are printed, loudly.
 */
function scenario(name, getPage) {
  let broken = null;
  let n = 0;
  return (title, fn) => {
    const idx = String(++n).padStart(2, '0');
    test(title, { timeout: STEP_TIMEOUT }, async (t) => {
      if (broken) {
        t.skip(`an earlier step failed: ${broken}`);
        return;
      }
      try {
        await fn(t);
      } catch (e) {
        broken = title;
        const page = getPage();
        const file = await shot(page, `FAILED-${name}-${idx}`);
        console.error(`\n!!! ${name} / ${title} FAILED: ${e.message}`);
        console.error(`!!! page: ${page && !page.isClosed() ? page.url() : '(none)'}; screenshot: ${file}`);
        if (consoleErrors.length) console.error(`!!! browser console errors:\n${consoleErrors.slice(-15).join('\n')}`);
        if (pageErrors.length) console.error(`!!! page errors:\n${pageErrors.join('\n')}`);
        console.error(`!!! server log (tail):\n${server.log().split('\n').slice(-25).join('\n')}`);
        throw e;
      }
    });
  };
}

const byTestId = (page, id) => page.locator(`[data-testid="${id}"]`);

async function center(locator) {
  const b = await locator.boundingBox();
  assert.ok(b, 'element has no box');
  return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
}

/** Drag with the mouse from one element's centre to another's (React Flow connections). */
async function mouseDrag(page, from, to) {
  const a = await center(from);
  const b = await center(to);
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2, { steps: 5 });
  await page.mouse.move(b.x, b.y, { steps: 5 });
  await page.mouse.up();
}

/** Wait until the input with this testid holds `value`. */
async function waitValue(page, testId, value) {
  await page.waitForFunction(([id, v]) => document.querySelector(`[data-testid="${id}"]`)?.value === v, [testId, value], { timeout: TIMEOUT });
}

/** Wait until no element matches `selector`. */
async function waitNone(page, selector) {
  await page.waitForFunction((s) => document.querySelectorAll(s).length === 0, selector, { timeout: TIMEOUT });
}

async function login(page, token, role, { goto = true } = {}) {
  if (goto) await page.goto(`${server.url}/login`);
  await byTestId(page, 'login-token').fill(token);
  await byTestId(page, 'login-preview').filter({ hasText: role }).waitFor();
  await byTestId(page, 'login-submit').click();
  await byTestId(page, 'header-role').filter({ hasText: role }).waitFor();
}

// ---------------------------------------------------------------------------------------------
// The main scenario: log in, build, validate, save, run, watch it live, read a node's output.

describe('builder: build a workflow, validate, save, run it live', () => {
  let page;
  const step = scenario('build', () => page);
  const WF = 'e2e_greeting';
  let runId;

  step('log in with the token `concertmaster dev` printed', async () => {
    page = await newPage();
    await page.goto(`${server.url}/`);
    // Without a token the app sends you to the login page.
    await page.waitForURL(/\/login/);
    await login(page, server.token, 'admin');
    assert.equal(await byTestId(page, 'header-org').innerText(), 'dev');
    await byTestId(page, 'workflow-list').waitFor();
    await shot(page, '01-logged-in');
  });

  step('create a workflow', async () => {
    await byTestId(page, 'workflow-new').click();
    await byTestId(page, 'new-workflow-id').fill(WF);
    await byTestId(page, 'new-workflow-name').fill('E2E greeting');
    await byTestId(page, 'workflow-create-submit').click();
    await page.waitForURL(new RegExp(`/workflows/${WF}$`));
    await byTestId(page, 'editor-name').filter({ hasText: 'E2E greeting' }).waitFor();
    await byTestId(page, 'node-start').waitFor();
    const doc = await api.get(`/v1/workflows/${WF}`);
    assert.equal(doc.workflow.latestVersion, 1);
  });

  step('build three nodes by drag and drop from the palette', async () => {
    // Replace the starter trigger by one dragged from the palette.
    await byTestId(page, 'node-start').click();
    await byTestId(page, 'node-panel-type').filter({ hasText: 'trigger.manual' }).waitFor();
    await byTestId(page, 'node-delete').click();
    await byTestId(page, 'node-start').waitFor({ state: 'detached' });

    const canvas = byTestId(page, 'canvas');
    const drops = [
      ['trigger.manual', 'manual_1', 150],
      ['transform.set', 'set_1', 470],
      ['transform.set', 'set_2', 790],
    ];
    for (const [type, id, x] of drops) {
      await byTestId(page, `palette-${type}`).dragTo(canvas, { targetPosition: { x, y: 300 } });
      await byTestId(page, `node-${id}`).waitFor();
    }
    assert.equal(await page.locator('.react-flow__node').count(), 3);
    // Dropped where they were let go: left to right.
    const xs = [];
    for (const [, id] of drops) xs.push((await byTestId(page, `node-${id}`).boundingBox()).x);
    assert.ok(xs[0] < xs[1] && xs[1] < xs[2], `nodes are where they were dropped: ${xs}`);
    await byTestId(page, 'editor-dirty').waitFor();
    await shot(page, '02-dropped');
  });

  step('validation errors appear on the nodes and in the problems list', async () => {
    // transform.set's required `fields` is missing; set_1 and set_2 are not connected.
    await byTestId(page, 'node-problems-set_1').waitFor();
    await byTestId(page, 'node-problems-set_2').waitFor();
    await page.locator('[data-testid="problems-list"] [data-node="set_1"][data-code="node.invalid_config"]').waitFor();
    await page.locator('[data-testid="problems-list"] [data-node="set_2"][data-code="node.unreachable"]').first().waitFor();
    assert.match(await byTestId(page, 'problems-summary').innerText(), /[1-9]\d* errors?/);
    // The node carries the error style and the tab its count.
    assert.match((await byTestId(page, 'node-set_1').getAttribute('class')) ?? '', /has-error/);
    // Selecting the node shows the finding in its panel, inline at the config field too.
    await byTestId(page, 'node-set_1').click();
    await byTestId(page, 'node-panel-problems').filter({ hasText: 'fields' }).waitFor();
    await shot(page, '03-validation-errors');
  });

  step('connect the nodes by dragging between handles', async () => {
    await mouseDrag(page, byTestId(page, 'port-manual_1-out'), page.locator('[data-testid="node-set_1"] .react-flow__handle.target'));
    await page.locator('.react-flow__edge').first().waitFor({ state: 'attached' });
    await mouseDrag(page, byTestId(page, 'port-set_1-out'), page.locator('[data-testid="node-set_2"] .react-flow__handle.target'));
    await page.waitForFunction(() => document.querySelectorAll('.react-flow__edge').length === 2);
    // Unreachable findings go once the graph is connected; the missing config stays.
    await page.locator('[data-testid="problems-list"] [data-code="node.unreachable"]').first().waitFor({ state: 'detached' });
    await byTestId(page, 'node-problems-set_1').waitFor();
  });

  step('configure the nodes through the generated forms; the errors clear', async () => {
    // The trigger's input schema (a JSON field of its generated form).
    await byTestId(page, 'node-manual_1').click();
    await byTestId(page, 'node-panel-type').filter({ hasText: 'trigger.manual' }).waitFor();
    await byTestId(page, 'config-json-inputSchema').fill(
      JSON.stringify({ type: 'object', properties: { name: { type: 'string', title: 'Name' } }, required: ['name'] }),
    );
    // set_1: a name and its fields, with an expression of the upstream node's output.
    await byTestId(page, 'node-set_1').click();
    await waitValue(page, 'node-id-input', 'set_1');
    await byTestId(page, 'node-name-input').fill('Greet');
    await byTestId(page, 'upstream-manual_1').waitFor();
    await byTestId(page, 'config-json-fields').fill(JSON.stringify({ greeting: 'Hello {{ $.nodes.manual_1.output.name }}' }));
    await byTestId(page, 'node-set_1').filter({ hasText: 'Greet' }).waitFor();
    // set_2 through the raw JSON of the config (the form's other half).
    await byTestId(page, 'node-set_2').click();
    await waitValue(page, 'node-id-input', 'set_2');
    await byTestId(page, 'config-json-fields').fill(JSON.stringify({ message: '{{ $.nodes.set_1.output.greeting }}!', n: 2 }));
    // Everything valid: no problem badges, no problems listed.
    await waitNone(page, '[data-testid^="node-problems-"]');
    await waitNone(page, '[data-testid="problems-list"] [data-testid^="problem-"]');
    await byTestId(page, 'problems-summary').filter({ hasText: '0 errors' }).waitFor();
    await shot(page, '04-configured');
  });

  step('save', async () => {
    await byTestId(page, 'btn-save').click();
    await byTestId(page, 'editor-dirty').waitFor({ state: 'detached' });
    await byTestId(page, 'editor-version').filter({ hasText: 'v2' }).waitFor();
    const doc = await api.get(`/v1/workflows/${WF}`);
    assert.equal(doc.workflow.latestVersion, 2);
    const def = doc.definition;
    assert.deepEqual(
      def.nodes.map((n) => [n.id, n.type]),
      [
        ['manual_1', 'trigger.manual'],
        ['set_1', 'transform.set'],
        ['set_2', 'transform.set'],
      ],
    );
    assert.deepEqual(
      def.edges.map((e) => [e.from, e.to]),
      [
        ['manual_1', 'set_1'],
        ['set_1', 'set_2'],
      ],
    );
    assert.equal(def.nodes[1].name, 'Greet');
    assert.deepEqual(def.nodes[1].config, { fields: { greeting: 'Hello {{ $.nodes.manual_1.output.name }}' } });
    assert.deepEqual(doc.findings.filter((f) => f.severity === 'error'), []);
  });

  step('publish and run with an input; the nodes turn green over the live WebSocket', async () => {
    await byTestId(page, 'btn-publish').click();
    await byTestId(page, 'publish-result').waitFor();
    await byTestId(page, 'editor-version').filter({ hasText: 'published v2' }).waitFor();
    // The run page must learn node statuses from the socket alone: its REST fallback is cut.
    await page.route('**/v1/runs/*/nodes', (route) => route.abort());
    await byTestId(page, 'btn-run').click();
    await byTestId(page, 'run-dialog').waitFor();
    // The input form is generated from the trigger's input schema; the JSON follows it.
    await page.locator('[data-testid="run-input-form"] #root_name').fill('Ada');
    await page.waitForFunction(() => {
      const t = document.querySelector('[data-testid="run-input"]');
      try {
        return t && JSON.parse(t.value).name === 'Ada';
      } catch {
        return false;
      }
    });
    await shot(page, '05-run-dialog');
    // The socket is opened with a live ticket (POST /v1/live/tickets), not the session token.
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    const ticketAnswer = page.waitForResponse((r) => r.url().endsWith('/v1/live/tickets') && r.request().method() === 'POST');
    await byTestId(page, 'btn-start-run').click();
    await page.waitForURL(/\/runs\/[0-9a-f-]+$/);
    runId = page.url().split('/').pop();
    await byTestId(page, 'live-state').filter({ hasText: 'live' }).waitFor();
    const ticket = await ticketAnswer;
    assert.equal(ticket.status(), 201);
    const { token: ticketToken, expiresInSeconds } = await ticket.json();
    assert.equal(expiresInSeconds, 60);
    assert.notEqual(ticketToken, server.token);
    const opened = sockets.map((u) => new URL(u));
    assert.ok(
      opened.some((u) => u.pathname === '/ws' && u.searchParams.get('token') === ticketToken),
      `a socket opened on /ws with the ticket: ${sockets.join(', ')}`,
    );
    for (const id of ['manual_1', 'set_1', 'set_2']) {
      await page.locator(`[data-testid="node-status-${id}"][data-status="succeeded"]`).waitFor();
      assert.match((await byTestId(page, `node-${id}`).getAttribute('class')) ?? '', /run-succeeded/);
    }
    await byTestId(page, 'run-status').filter({ hasText: 'succeeded' }).waitFor();
    // Green, as drawn: the succeeded background and the status line's colour.
    assert.equal(await byTestId(page, 'node-set_2').evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(244, 251, 246)');
    const statusColour = await byTestId(page, 'node-status-set_2').evaluate((el) => getComputedStyle(el).color);
    const [r, g, b] = statusColour.match(/\d+/g).map(Number);
    assert.ok(g > r && g > b, `the status is green: ${statusColour}`);
    const run = await api.run(runId);
    assert.equal(run.status, 'SUCCEEDED');
    assert.deepEqual(run.input, { name: 'Ada' });
    await page.unroute('**/v1/runs/*/nodes');
    await shot(page, '06-run-succeeded');
  });

  step("open a node's output", async () => {
    await byTestId(page, 'node-set_2').click();
    await byTestId(page, 'node-output-panel').waitFor();
    await byTestId(page, 'node-run-status').filter({ hasText: 'succeeded' }).waitFor();
    const out = byTestId(page, 'node-output');
    await out.filter({ hasText: 'Hello Ada!' }).waitFor();
    const parsed = JSON.parse(await out.innerText());
    assert.deepEqual(parsed, { message: 'Hello Ada!', n: 2 });
    // Its input is the run document so far (from the history events).
    await byTestId(page, 'node-input').filter({ hasText: 'Hello Ada' }).waitFor();
    await shot(page, '07-node-output');
  });

  step('the run is listed in the editor', async () => {
    await byTestId(page, 'run-workflow-link').click();
    await byTestId(page, 'runs-tab').waitFor();
    await byTestId(page, `run-row-${runId}`).waitFor();
    await page.close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('public form page', () => {
  let page;
  const step = scenario('form', () => page);
  const WF = 'e2e_form';
  let formLink;

  step('publish a form-trigger workflow from the editor', async () => {
    await api.createWorkflow({
      id: WF,
      name: 'E2E form',
      nodes: [
        {
          id: 'signup',
          type: 'trigger.form',
          config: {
            title: 'Join the choir',
            schema: {
              type: 'object',
              properties: { name: { type: 'string', title: 'Your name' }, voice: { type: 'string', title: 'Voice', enum: ['soprano', 'alto', 'tenor', 'bass'] } },
              required: ['name', 'voice'],
            },
            submitLabel: 'Sign up',
            successMessage: 'Welcome aboard',
          },
          position: { x: 0, y: 0 },
        },
        { id: 'record', type: 'transform.set', config: { fields: { who: '{{ $.nodes.signup.output.name }}' } }, position: { x: 260, y: 0 } },
      ],
      edges: [{ from: 'signup', to: 'record' }],
    });
    page = await newPage();
    await login(page, server.token, 'admin');
    await page.goto(`${server.url}/workflows/${WF}`);
    await byTestId(page, 'node-signup').waitFor();
    await byTestId(page, 'btn-publish').click();
    const link = byTestId(page, 'publish-form-link');
    await link.waitFor();
    formLink = await link.getAttribute('href');
    assert.match(formLink, /\/forms\/[^/]+$/);
  });

  step('submitting the form starts a run', async () => {
    // The public page needs no token: a fresh context, nobody logged in.
    await page.context().close();
    page = await newPage();
    await page.goto(formLink);
    await byTestId(page, 'form-title').filter({ hasText: 'Join the choir' }).waitFor();
    await page.locator('#root_name').fill('Ada');
    await page.locator('#root_voice').selectOption('alto');
    await shot(page, '08-form');
    await page.getByRole('button', { name: 'Sign up' }).click();
    await byTestId(page, 'form-success').filter({ hasText: 'Welcome aboard' }).waitFor();
    await shot(page, '09-form-submitted');
    const runs = await until(async () => {
      const r = await api.runs(WF);
      return r.items.length > 0 ? r.items : null;
    }, { what: 'a run of the form workflow' });
    assert.equal(runs.length, 1);
    assert.equal(runs[0].trigger, 'trigger.form');
    const done = await until(async () => {
      const r = await api.run(runs[0].id);
      return r.status !== 'RUNNING' ? r : null;
    }, { what: 'the form run to finish' });
    assert.equal(done.status, 'SUCCEEDED');
    assert.equal(done.output.nodes.record.output.who, 'Ada');
    await page.context().close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('approval page', () => {
  let page;
  const step = scenario('approval', () => page);
  const WF = 'e2e_approval';
  let runId;

  step('a run waits for an approval, linked from its run page', async () => {
    await api.createWorkflow({
      id: WF,
      name: 'E2E approval',
      nodes: [
        { id: 'start', type: 'trigger.manual', config: {}, position: { x: 0, y: 100 } },
        { id: 'review', type: 'flow.approval', config: { title: 'Buy {{ $.nodes.start.output.item }}?', message: 'Please decide.' }, position: { x: 260, y: 100 } },
        { id: 'buy', type: 'transform.set', config: { fields: { bought: '{{ $.nodes.start.output.item }}' } }, position: { x: 520, y: 0 } },
        { id: 'refuse', type: 'transform.set', config: { fields: { bought: null } }, position: { x: 520, y: 200 } },
      ],
      edges: [
        { from: 'start', to: 'review' },
        { from: 'review', to: 'buy', fromPort: 'approved' },
        { from: 'review', to: 'refuse', fromPort: 'rejected' },
      ],
    });
    await api.publish(WF);
    const run = await api.startRun(WF, { item: 'a tuba' });
    runId = run.id;
    page = await newPage();
    await login(page, server.token, 'admin');
    await page.goto(`${server.url}/runs/${runId}`);
    await page.locator('[data-testid="node-status-review"][data-status="running"]').waitFor();
    await byTestId(page, 'approval-link-review').click();
  });

  step('approve it with a comment on the approval page; the run goes on', async () => {
    await byTestId(page, 'approval-page').waitFor();
    await byTestId(page, 'approval-title').filter({ hasText: 'Buy a tuba?' }).waitFor();
    await byTestId(page, 'approval-status').filter({ hasText: 'pending' }).waitFor();
    await byTestId(page, 'approval-comment').fill('Fine by me');
    await shot(page, '10-approval');
    await byTestId(page, 'approval-approve').click();
    await byTestId(page, 'approval-status').filter({ hasText: 'approved' }).waitFor();
    await byTestId(page, 'approval-decision').filter({ hasText: 'Fine by me' }).waitFor();
    await shot(page, '11-approved');
    await byTestId(page, 'approval-run-link').click();
    await page.locator('[data-testid="node-status-buy"][data-status="succeeded"]').waitFor();
    await page.locator('[data-testid="node-status-refuse"][data-status="skipped"]').waitFor();
    await byTestId(page, 'run-status').filter({ hasText: 'succeeded' }).waitFor();
    const run = await api.run(runId);
    assert.equal(run.status, 'SUCCEEDED');
    assert.equal(run.output.nodes.buy.output.bought, 'a tuba');
    await shot(page, '12-approved-run');
    await page.context().close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('viewer', () => {
  let page;
  const step = scenario('viewer', () => page);

  step('a viewer token gets a read-only editor', async () => {
    const token = server.mintToken('viewer', 'viola@example.com');
    page = await newPage();
    await login(page, token, 'viewer');
    await byTestId(page, 'workflow-list').waitFor();
    assert.equal(await byTestId(page, 'workflow-new').count(), 0, 'no create button');
    await page.goto(`${server.url}/workflows/e2e_greeting`);
    await byTestId(page, 'read-only').waitFor();
    await byTestId(page, 'node-set_1').waitFor();
    for (const id of ['btn-save', 'btn-publish', 'btn-run', 'btn-undo', 'btn-layout', 'palette']) {
      assert.equal(await byTestId(page, id).count(), 0, `${id} is not shown to a viewer`);
    }
    // The canvas cannot be changed: a drag on a node pans the view instead of moving the node,
    // and Delete does nothing.
    const node = byTestId(page, 'node-set_1');
    const offset = async () => {
      const [a, b] = [await node.boundingBox(), await byTestId(page, 'node-manual_1').boundingBox()];
      return [Math.round(a.x - b.x), Math.round(a.y - b.y)];
    };
    const before = await offset();
    await mouseDrag(page, node, byTestId(page, 'node-set_2'));
    assert.deepEqual(await offset(), before, 'the node did not move relative to the others');
    await node.click();
    await byTestId(page, 'node-panel').waitFor();
    await page.keyboard.press('Delete');
    await byTestId(page, 'node-set_1').waitFor();
    assert.equal(await byTestId(page, 'node-delete').count(), 0);
    assert.equal(await byTestId(page, 'editor-dirty').count(), 0);
    // Forms are read-only.
    assert.equal(await byTestId(page, 'node-name-input').getAttribute('readonly'), '');
    assert.ok(await byTestId(page, 'config-json-fields').isDisabled(), 'config field is disabled');
    // Viewers may look around: dragging in the minimap pans the view.
    const transform = () => page.locator('.react-flow__viewport').evaluate((el) => el.style.transform);
    const seen = await transform();
    const mm = await page.locator('[data-testid="minimap"] svg').boundingBox();
    await page.mouse.move(mm.x + mm.width / 2, mm.y + mm.height / 2);
    await page.mouse.down();
    await page.mouse.move(mm.x + mm.width / 2 + 30, mm.y + mm.height / 2 + 10, { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction((t) => document.querySelector('.react-flow__viewport').style.transform !== t, seen);
    // The JSON tab too.
    await byTestId(page, 'tab-json').click();
    assert.equal(await byTestId(page, 'json-editor').getAttribute('readonly'), '');
    await byTestId(page, 'tab-canvas').click();
    await shot(page, '13-viewer-read-only');
    await page.context().close();
  });
});

// ---------------------------------------------------------------------------------------------
// The cloud's configuration (config.json) and Cognito sign-in, against an emulated user pool:
// its JSON API answered here, through a route on the page. The ID token it hands out is one the
// embedded server accepts (HS256, org and role claims), so the builder works on after sign-in.

/** A user pool of one admin-created user with TOTP MFA required; records what it is asked. */
function emulatedPool(email, idToken) {
  const user = { password: 'Temp-pass-1!', mustChangePassword: true, mfaRegistered: false };
  const calls = [];
  let n = 0;
  const session = (what) => `${what}-${++n}`;
  const tokens = (refresh) => ({
    AuthenticationResult: { IdToken: idToken, AccessToken: 'access', ExpiresIn: 3600, TokenType: 'Bearer', ...(refresh ? { RefreshToken: 'refresh-e2e' } : {}) },
    ChallengeParameters: {},
  });
  const challenge = (name) => ({ ChallengeName: name, Session: session(name), ChallengeParameters: { USER_ID_FOR_SRP: 'user-uuid' } });
  const fail = (type, message) => ({ status: 400, body: { __type: `com.amazonaws.cognito.identity.idp.model#${type}`, message } });
  const answer = (op, b) => {
    switch (op) {
      case 'InitiateAuth':
        if (b.AuthFlow === 'REFRESH_TOKEN_AUTH') return { body: tokens(false) };
        if (b.ClientId !== 'e2e-client' || b.AuthParameters.USERNAME !== email || b.AuthParameters.PASSWORD !== user.password) {
          return fail('NotAuthorizedException', 'Incorrect username or password.');
        }
        return { body: challenge(user.mustChangePassword ? 'NEW_PASSWORD_REQUIRED' : user.mfaRegistered ? 'SOFTWARE_TOKEN_MFA' : 'MFA_SETUP') };
      case 'RespondToAuthChallenge': {
        const r = b.ChallengeResponses;
        if (r.USERNAME !== 'user-uuid') return fail('NotAuthorizedException', `unknown user ${r.USERNAME}`);
        if (b.ChallengeName === 'NEW_PASSWORD_REQUIRED') {
          user.password = r.NEW_PASSWORD;
          user.mustChangePassword = false;
          return { body: challenge('MFA_SETUP') };
        }
        if (b.ChallengeName === 'MFA_SETUP' && user.mfaRegistered) return { body: tokens(true) };
        if (b.ChallengeName === 'SOFTWARE_TOKEN_MFA') {
          return r.SOFTWARE_TOKEN_MFA_CODE === '246810' ? { body: tokens(true) } : fail('CodeMismatchException', 'Invalid code received for user');
        }
        return fail('InvalidParameterException', `unexpected ${b.ChallengeName}`);
      }
      case 'AssociateSoftwareToken':
        return { body: { SecretCode: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', Session: session('associated') } };
      case 'VerifySoftwareToken':
        if (b.UserCode !== '135790') return fail('EnableSoftwareTokenMFAException', 'Code mismatch');
        user.mfaRegistered = true;
        return { body: { Status: 'SUCCESS', Session: session('verified') } };
      case 'RevokeToken':
        return { body: {} };
      default:
        return fail('InvalidAction', op);
    }
  };
  return {
    calls,
    async handle(route) {
      const req = route.request();
      const op = (req.headers()['x-amz-target'] ?? '').replace('AWSCognitoIdentityProviderService.', '');
      const body = JSON.parse(req.postData() ?? '{}');
      calls.push({ op, contentType: req.headers()['content-type'], body });
      const a = answer(op, body);
      await route.fulfill({ status: a.status ?? 200, contentType: 'application/x-amz-json-1.1', body: JSON.stringify(a.body) });
    },
  };
}

describe('cloud configuration: Cognito sign-in with MFA (emulated user pool)', () => {
  let page;
  let pool;
  let idToken;
  const step = scenario('cognito', () => page);
  const email = 'ada@acme.test';
  const stage = (name) => page.locator(`[data-testid="cognito-stage"][data-stage="${name}"]`);

  step('config.json names the APIs and a user pool: the sign-in page asks for e-mail and password', async () => {
    idToken = server.mintToken('editor', email);
    pool = emulatedPool(email, idToken);
    page = await newPage();
    const config = {
      apiUrl: server.url,
      webSocketUrl: `${server.url.replace(/^http/, 'ws')}/ws`,
      region: 'eu-west-1',
      userPoolId: 'eu-west-1_e2eTest',
      userPoolClientId: 'e2e-client',
      cognitoEndpoint: `${server.url}/cognito-emulator/`,
    };
    await page.route('**/config.json', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(config) }));
    await page.route('**/cognito-emulator/', (route) => pool.handle(route));
    await page.goto(`${server.url}/`);
    await page.waitForURL(/\/login/);
    await byTestId(page, 'cognito-email').waitFor();
    // Pasting a token stays possible, folded away.
    assert.equal(await byTestId(page, 'login-token').isVisible(), false);
    await byTestId(page, 'login-token-option').waitFor();
  });

  step("a wrong password gets Cognito's message", async () => {
    await byTestId(page, 'cognito-email').fill(email);
    await byTestId(page, 'cognito-password').fill('not-it');
    await byTestId(page, 'cognito-submit').click();
    const err = byTestId(page, 'cognito-error');
    await err.filter({ hasText: 'Incorrect username or password.' }).waitFor();
    assert.equal(await err.getAttribute('data-type'), 'NotAuthorizedException');
    assert.equal(await err.getAttribute('role'), 'alert');
    await shot(page, '14-cognito-refused');
  });

  step('first sign-in: a new password, then an authenticator app', async () => {
    await byTestId(page, 'cognito-password').fill('Temp-pass-1!');
    await byTestId(page, 'cognito-submit').click();
    await stage('newPassword').waitFor();
    assert.equal(await byTestId(page, 'cognito-error').count(), 0);
    await byTestId(page, 'cognito-new-password').fill('A-much-better-pass-2!');
    await byTestId(page, 'cognito-new-password-confirm').fill('A-much-better-pass-2?');
    await byTestId(page, 'cognito-submit').click();
    await byTestId(page, 'cognito-error').filter({ hasText: 'differ' }).waitFor();
    await byTestId(page, 'cognito-new-password-confirm').fill('A-much-better-pass-2!');
    await byTestId(page, 'cognito-submit').click();
    await stage('mfaSetup').waitFor();
    await waitValue(page, 'cognito-totp-secret', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
    assert.equal(
      await byTestId(page, 'cognito-totp-uri').inputValue(),
      `otpauth://totp/ConcertMaster:${email}?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ConcertMaster`,
    );
    await shot(page, '15-cognito-mfa-setup');
    await byTestId(page, 'cognito-code').fill('000000');
    await byTestId(page, 'cognito-submit').click();
    await byTestId(page, 'cognito-error').filter({ hasText: 'Code mismatch' }).waitFor();
    await byTestId(page, 'cognito-code').fill('135790');
    await byTestId(page, 'cognito-submit').click();
    await byTestId(page, 'header-role').filter({ hasText: 'editor' }).waitFor();
    assert.equal(await byTestId(page, 'header-sub').innerText(), email);
    await byTestId(page, 'workflow-list').waitFor();
    const ops = pool.calls.map((c) => (c.op === 'RespondToAuthChallenge' ? `${c.op}:${c.body.ChallengeName}` : c.op));
    assert.deepEqual(ops, [
      'InitiateAuth',
      'InitiateAuth',
      'RespondToAuthChallenge:NEW_PASSWORD_REQUIRED',
      'AssociateSoftwareToken',
      'VerifySoftwareToken',
      'VerifySoftwareToken',
      'RespondToAuthChallenge:MFA_SETUP',
    ]);
    assert.ok(pool.calls.every((c) => c.contentType === 'application/x-amz-json-1.1'));
    const stored = await page.evaluate(() => [localStorage.getItem('concertmaster.token'), localStorage.getItem('concertmaster.refresh')]);
    assert.deepEqual(stored, [idToken, 'refresh-e2e']);
  });

  step('signed in: API calls carry the ID token, live statuses come through a ticket', async () => {
    const run = await api.startRun('e2e_greeting', { name: 'Cognito' });
    const auth = [];
    page.on('request', (r) => {
      if (r.url().startsWith(`${server.url}/v1/`)) auth.push(r.headers().authorization);
    });
    const ticket = page.waitForResponse((r) => r.url() === `${server.url}/v1/live/tickets`);
    await page.goto(`${server.url}/runs/${run.id}`);
    await byTestId(page, 'live-state').filter({ hasText: 'live' }).waitFor();
    assert.equal((await ticket).status(), 201);
    await page.locator('[data-testid="node-status-set_2"][data-status="succeeded"]').waitFor();
    assert.ok(auth.length > 0 && auth.every((a) => a === `Bearer ${idToken}`), `every API call sent the ID token: ${auth}`);
    await shot(page, '16-cognito-run');
  });

  step('log out forgets both tokens and revokes the refresh token; the next sign-in asks for the code', async () => {
    await byTestId(page, 'btn-logout').click();
    await byTestId(page, 'cognito-email').waitFor();
    const stored = await page.evaluate(() => [localStorage.getItem('concertmaster.token'), localStorage.getItem('concertmaster.refresh')]);
    assert.deepEqual(stored, [null, null]);
    await until(() => pool.calls.some((c) => c.op === 'RevokeToken' && c.body.Token === 'refresh-e2e'), { what: 'RevokeToken' });
    await byTestId(page, 'cognito-email').fill(email);
    await byTestId(page, 'cognito-password').fill('A-much-better-pass-2!');
    await byTestId(page, 'cognito-submit').click();
    await stage('mfaCode').waitFor();
    await byTestId(page, 'cognito-code').fill('246810');
    await byTestId(page, 'cognito-submit').click();
    // Back on the page we logged out of (the login page's `next`).
    await page.waitForURL(/\/runs\//);
    await byTestId(page, 'run-page').waitFor();
    assert.equal(await byTestId(page, 'header-sub').innerText(), email);
  });

  step('an API token can still be pasted', async () => {
    await byTestId(page, 'btn-logout').click();
    await page.locator('[data-testid="login-token-option"] summary').click();
    await login(page, server.token, 'admin', { goto: false });
    assert.equal(await page.evaluate(() => localStorage.getItem('concertmaster.refresh')), null);
    await page.context().close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('canvas benchmark, smoke mode', () => {
  test('a generated 100-node workflow renders in the editor', { timeout: STEP_TIMEOUT }, async () => {
    const r = await benchSmoke({ server, chrome, api, artifacts: ARTIFACTS });
    console.log(`# bench smoke: 100 nodes, ${r.rendered} drawn, first render ${r.firstRenderMs.toFixed(0)} ms, pan ${r.fps.toFixed(1)} fps`);
    assert.equal(r.rendered, 100);
    assert.equal(r.minimap, 100, 'the minimap shows every node');
    assert.equal(r.farEdges, 120, 'zoomed far out, every edge is drawn in the one path');
  });
});

test('no uncaught errors in any page', () => {
  assert.deepEqual(pageErrors, []);
});
