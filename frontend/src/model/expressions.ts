// What a node's expressions can read: the outputs of the nodes upstream of it (and, inside a
// for-each body, the item), written in the workflow's query language. Pure, tested in
// test/model.test.ts.

import type { Workflow } from './workflow';
import { DEFAULT_OUT } from './workflow';

export interface UpstreamOutput {
  nodeId: string;
  type: string;
  name?: string;
  /** Expressions, most general first (`$.nodes.form.output`, `$.nodes.form.output.email`). */
  expressions: string[];
}

export interface Available {
  upstream: UpstreamOutput[];
  /** Run-wide values (`$.run.executionName`, …) and, in loop bodies, the item. */
  context: string[];
}

/** Types that record only the port they took, not an output. */
const PORT_ONLY = new Set(['condition.if', 'condition.switch', 'flow.wait']);

/** Ids of the nodes with a path to `nodeId`, nearest first. */
export function upstreamOf(wf: Workflow, nodeId: string): string[] {
  const into = new Map<string, string[]>();
  for (const e of wf.edges ?? []) {
    const list = into.get(e.to);
    if (list) list.push(e.from);
    else into.set(e.to, [e.from]);
  }
  const seen = new Set<string>([nodeId]);
  const order: string[] = [];
  let frontier = [nodeId];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const id of frontier) {
      for (const from of into.get(id) ?? []) {
        if (seen.has(from)) continue;
        seen.add(from);
        order.push(from);
        next.push(from);
      }
    }
    frontier = next;
  }
  return order;
}

/** Whether `nodeId` is inside a for-each body (reachable from an `each` port). */
export function inLoopBody(wf: Workflow, nodeId: string): boolean {
  const out = new Map<string, { to: string; port: string }[]>();
  for (const e of wf.edges ?? []) {
    const list = out.get(e.from) ?? [];
    list.push({ to: e.to, port: e.fromPort ?? DEFAULT_OUT });
    out.set(e.from, list);
  }
  const starts = (wf.edges ?? []).filter((e) => e.fromPort === 'each' && wf.nodes.some((n) => n.id === e.from && n.type === 'flow.foreach'));
  const seen = new Set<string>();
  const stack = starts.map((e) => e.to);
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (id === nodeId) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const e of out.get(id) ?? []) stack.push(e.to);
  }
  return false;
}

function schemaFields(schema: unknown): string[] {
  if (!schema || typeof schema !== 'object') return [];
  const props = (schema as { properties?: Record<string, unknown> }).properties;
  return props ? Object.keys(props) : [];
}

function field(base: string, key: string, jsonata: boolean): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return `${base}.${key}`;
  return jsonata ? `${base}.\`${key}\`` : `${base}['${key.replace(/'/g, "\\'")}']`;
}

export function availableExpressions(wf: Workflow, nodeId: string): Available {
  const jsonata = wf.settings?.queryLanguage === 'JSONata';
  const nodes = new Map(wf.nodes.map((n) => [n.id, n]));
  const upstream: UpstreamOutput[] = [];
  for (const id of upstreamOf(wf, nodeId)) {
    const n = nodes.get(id);
    if (!n) continue;
    const base = jsonata ? `$nodes.${id}` : `$.nodes.${id}`;
    const expressions: string[] = [];
    if (PORT_ONLY.has(n.type)) {
      expressions.push(`${base}.port`);
    } else {
      const out = `${base}.output`;
      expressions.push(out);
      const cfg = n.config ?? {};
      const schema = n.type === 'trigger.manual' ? cfg.inputSchema : n.type === 'trigger.form' ? cfg.schema : undefined;
      for (const k of schemaFields(schema)) expressions.push(field(out, k, jsonata));
      if (n.type === 'trigger.webhook') for (const k of ['body', 'headers', 'query', 'method']) expressions.push(`${out}.${k}`);
      if (n.type === 'transform.set') for (const k of Object.keys((cfg.fields as Record<string, unknown>) ?? {})) expressions.push(field(out, k, jsonata));
      expressions.push(`${base}.port`);
    }
    upstream.push({ nodeId: id, type: n.type, name: n.name, expressions });
  }
  const context = jsonata
    ? ['$run.executionName', '$run.startedAt', '$run.workflowId']
    : ['$.run.executionName', '$.run.executionId', '$.run.startedAt', '$.run.workflowId'];
  if (inLoopBody(wf, nodeId)) context.unshift(...(jsonata ? ['$item', '$index'] : ['$.item', '$.index']));
  return { upstream, context };
}

/** `{{ expr }}` as written in a config string. */
export function template(expr: string): string {
  return `{{ ${expr} }}`;
}
