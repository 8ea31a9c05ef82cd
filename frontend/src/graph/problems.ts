// Validation findings → what the builder shows where: per node, per edge, in the problems
// list, and as inline errors in a node's config form. Pure, tested in test/problems.test.ts.

import type { Finding } from '../api/types';
import type { Workflow } from '../model/workflow';

export interface Problem {
  /** Stable key for lists. */
  key: string;
  finding: Finding;
  severity: 'error' | 'warning';
  /** The node the finding is about (clicking the problem focuses it). */
  nodeId?: string;
  /** The graph edge id the finding is about. */
  edgeId?: string;
  /** JSON Pointer into the node's config (`/url`), for config findings. */
  configPointer?: string;
}

export interface ProblemMap {
  list: Problem[];
  byNode: ReadonlyMap<string, Problem[]>;
  byEdge: ReadonlyMap<string, Problem[]>;
  errors: number;
  warnings: number;
}

export const EMPTY_PROBLEMS: ProblemMap = {
  list: [],
  byNode: new Map(),
  byEdge: new Map(),
  errors: 0,
  warnings: 0,
};

const NODE_PATH = /^\/nodes\/(\d+)(\/.*)?$/;
const EDGE_PATH = /^\/edges\/(\d+)(\/.*)?$/;
/** Parse findings name the place in the message: `nodes[2].typeVersion: …`. */
const NODE_IN_MESSAGE = /(?:^|\s)nodes\[(\d+)\]/;
const EDGE_IN_MESSAGE = /(?:^|\s)edges\[(\d+)\]/;

function push<K>(m: Map<K, Problem[]>, k: K, p: Problem): void {
  const list = m.get(k);
  if (list) list.push(p);
  else m.set(k, [p]);
}

/**
 * Places findings on the document they were computed for: `doc` gives node ids by index,
 * `edgeIds` the graph edge id of each `edges[i]`.
 */
export function buildProblems(findings: readonly Finding[], doc: Workflow | null, edgeIds: readonly string[]): ProblemMap {
  const byNode = new Map<string, Problem[]>();
  const byEdge = new Map<string, Problem[]>();
  const list: Problem[] = [];
  let errors = 0;
  let warnings = 0;
  findings.forEach((f, i) => {
    const severity = f.severity === 'warning' ? 'warning' : 'error';
    if (severity === 'error') errors += 1;
    else warnings += 1;
    let nodeId = f.nodeId ?? undefined;
    let configPointer: string | undefined;
    const nm = NODE_PATH.exec(f.path ?? '');
    if (nm) {
      const idx = Number(nm[1]);
      nodeId ??= doc?.nodes?.[idx]?.id;
      const rest = nm[2] ?? '';
      if (rest === '/config' || rest.startsWith('/config/')) configPointer = rest.slice('/config'.length);
    } else if (!nodeId) {
      const mm = NODE_IN_MESSAGE.exec(f.message ?? '');
      if (mm) nodeId = doc?.nodes?.[Number(mm[1])]?.id;
    }
    let edgeIndex = typeof f.edge === 'number' ? f.edge : undefined;
    if (edgeIndex === undefined) {
      const em = EDGE_PATH.exec(f.path ?? '') ?? EDGE_IN_MESSAGE.exec(f.message ?? '');
      if (em) edgeIndex = Number(em[1]);
    }
    const edgeId = edgeIndex !== undefined ? edgeIds[edgeIndex] : undefined;
    if (!nodeId && f.nodes && f.nodes.length > 0) nodeId = f.nodes[0];
    const p: Problem = { key: `${i}:${f.code}:${f.path}`, finding: f, severity, nodeId, edgeId, configPointer };
    list.push(p);
    const nodes = new Set<string>(f.nodes ?? []);
    if (nodeId) nodes.add(nodeId);
    for (const n of nodes) push(byNode, n, p);
    if (edgeId) push(byEdge, edgeId, p);
  });
  // Errors first, then in the server's order.
  list.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
  return { list, byNode, byEdge, errors, warnings };
}

/** The worst severity of a list of problems. */
export function worst(problems: readonly Problem[] | undefined): 'error' | 'warning' | undefined {
  if (!problems || problems.length === 0) return undefined;
  return problems.some((p) => p.severity === 'error') ? 'error' : 'warning';
}

export interface ErrorSchema {
  __errors?: string[];
  [field: string]: ErrorSchema | string[] | undefined;
}

const REQUIRED_PROPERTY = /^(?:config: )?"([^"]+)" is a required property$/;

/**
 * An rjsf `extraErrors` schema from a node's config problems: `/url` → `{url: {__errors}}`;
 * a config-level "\"url\" is a required property" goes on `url` too.
 */
export function configErrorSchema(problems: readonly Problem[] | undefined): ErrorSchema {
  const root: ErrorSchema = {};
  for (const p of problems ?? []) {
    if (p.configPointer === undefined) continue;
    const segments = p.configPointer
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const message = p.finding.message;
    const req = REQUIRED_PROPERTY.exec(message);
    // The form's own validation already says which required field is missing.
    if (segments.length === 0 && req) continue;
    let cur = root;
    for (const s of segments) {
      const next = (cur[s] as ErrorSchema | undefined) ?? {};
      cur[s] = next;
      cur = next;
    }
    cur.__errors = [...(cur.__errors ?? []), message];
  }
  return root;
}
