// The workflow document (schemas/workflow.schema.json) and the node-type descriptor
// (schemas/node-type.schema.json) as the builder edits and reads them. The API's generated
// types (api/types.ts) describe them too, but as the server sends them: a stored document is
// the body the server accepted, whose defaulted members may be absent (openapi-typescript
// makes them required), and a descriptor as served always has every member (a test's
// minimal one need not). The generated descriptor is assignable to this one (api/hooks.ts).

export interface Position {
  x: number;
  y: number;
}

export interface RetryRule {
  errors: string[];
  intervalSeconds?: number;
  maxAttempts?: number;
  backoffRate?: number;
  maxDelaySeconds?: number | null;
  jitter?: 'full' | 'none' | null;
}

export interface ErrorHandling {
  action: 'fail' | 'continue' | 'route';
  errors?: string[];
}

export interface WfNode {
  id: string;
  type: string;
  typeVersion?: number;
  name?: string;
  config?: Record<string, unknown>;
  position?: Position | null;
  retry?: RetryRule[] | null;
  timeoutSeconds?: number | null;
  onError?: ErrorHandling | null;
  metadata?: Record<string, unknown>;
}

export interface WfEdge {
  from: string;
  fromPort?: string;
  to: string;
  toPort?: string;
}

export interface Settings {
  queryLanguage?: 'JSONPath' | 'JSONata';
  executionType?: 'auto' | 'standard' | 'express';
  timeoutSeconds?: number | null;
  estimatedItemsPerLoop?: number | null;
}

export interface Workflow {
  id: string;
  name: string;
  description?: string;
  version?: number;
  nodes: WfNode[];
  edges?: WfEdge[];
  settings?: Settings;
  metadata?: Record<string, unknown>;
}

export type Category = 'trigger' | 'transform' | 'condition' | 'action' | 'flow';
export const CATEGORIES: readonly Category[] = ['trigger', 'transform', 'condition', 'action', 'flow'];

export interface PortSpec {
  name: string;
  label?: string;
  required?: boolean;
}

export type PortRule =
  | {
      kind: 'fromConfigArray';
      pointer: string;
      nameField: string;
      required?: boolean;
      append?: PortSpec[];
    }
  | { kind: 'whenConfigEquals'; pointer: string; equals: unknown; ports: PortSpec[] };

export interface NodeTypeDescriptor {
  type: string;
  version: number;
  category: Category;
  title: string;
  description: string;
  icon?: string;
  configSchema: Record<string, unknown> | boolean;
  outputPorts?: PortSpec[];
  portRules?: PortRule[];
  execution: { kind: string; [k: string]: unknown };
  defaultRetry?: RetryRule[];
  defaultTimeoutSeconds?: number | null;
}

export const DEFAULT_OUT = 'out';
export const DEFAULT_IN = 'in';
export const ERROR_PORT = 'error';

/** A JSON Pointer lookup (RFC 6901). */
export function jsonPointer(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  if (!pointer.startsWith('/')) return undefined;
  let cur: unknown = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      const i = Number(key);
      if (!Number.isInteger(i)) return undefined;
      cur = cur[i];
    } else if (cur !== null && typeof cur === 'object') {
      cur = (cur as Record<string, unknown>)[key];
    } else {
      return undefined;
    }
    if (cur === undefined) return undefined;
  }
  return cur;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The output ports of a node: the descriptor's port rules applied to its config (as the
 * registry's `output_ports`), plus `error` when the node routes errors.
 */
export function outputPorts(node: WfNode, desc: NodeTypeDescriptor | undefined): PortSpec[] {
  const config = node.config ?? {};
  let ports: PortSpec[] | undefined;
  for (const rule of desc?.portRules ?? []) {
    if (rule.kind === 'fromConfigArray') {
      const arr = jsonPointer(config, rule.pointer);
      const generated: PortSpec[] = Array.isArray(arr)
        ? arr
            .map((item) =>
              item && typeof item === 'object'
                ? (item as Record<string, unknown>)[rule.nameField]
                : undefined,
            )
            .filter((n): n is string => typeof n === 'string')
            .map((name) => ({ name, label: name, required: rule.required ?? false }))
        : [];
      ports = [...generated, ...(rule.append ?? [])];
      break;
    }
    if (rule.kind === 'whenConfigEquals' && deepEqual(jsonPointer(config, rule.pointer), rule.equals)) {
      ports = rule.ports;
      break;
    }
  }
  ports ??= desc?.outputPorts ?? [{ name: DEFAULT_OUT }];
  if (node.onError?.action === 'route' && !ports.some((p) => p.name === ERROR_PORT)) {
    ports = [...ports, { name: ERROR_PORT, label: 'error', required: true }];
  }
  return ports;
}

export function isTrigger(type: string): boolean {
  return type.startsWith('trigger.');
}

const NODE_ID = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function isValidNodeId(id: string): boolean {
  return NODE_ID.test(id);
}

/** A node id unique among `taken`, derived from a type (`action.http` → `http_1`). */
export function freshNodeId(base: string, taken: ReadonlySet<string>): string {
  let stem = base.includes('.') ? base.slice(base.lastIndexOf('.') + 1) : base;
  stem = stem.replace(/[^A-Za-z0-9_]/g, '_');
  if (!/^[A-Za-z_]/.test(stem)) stem = `n_${stem}`;
  stem = stem.slice(0, 56);
  const m = /^(.*?)_(\d+)$/.exec(stem);
  const root = m && m[1] ? m[1] : stem;
  let i = m && m[1] ? Number(m[2]) + 1 : 1;
  for (;;) {
    const candidate = `${root}_${i}`;
    if (!taken.has(candidate)) return candidate;
    i += 1;
  }
}

/** Minimal config from a JSON Schema: the `default`s of its top-level properties. */
export function defaultConfig(schema: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!schema || typeof schema !== 'object') return out;
  const props = (schema as { properties?: Record<string, unknown> }).properties;
  if (!props) return out;
  for (const [k, v] of Object.entries(props)) {
    if (v && typeof v === 'object' && 'default' in v) {
      out[k] = (v as { default: unknown }).default;
    }
  }
  return out;
}
