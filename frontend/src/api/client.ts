// A thin typed fetch wrapper over the generated OpenAPI paths: every call names a path of
// `paths` (so a typo or a removed endpoint fails `tsc`), substitutes its `{params}`, adds the
// bearer token and turns error bodies (`{code, message, details}`) into `ApiError`s.

import type { paths } from './schema';
import { getConfig } from '../config';
import type {
  ApprovalList,
  ApprovalView,
  Compiled,
  ErrorBody,
  Finding,
  FormDefinition,
  HistoryEventList,
  LiveTicket,
  NodeExecutionList,
  NodeTypeList,
  Published,
  RunPage,
  RunRecord,
  RunStatus,
  Submitted,
  Validation,
  WorkflowDoc,
  WorkflowPage,
  WorkflowVersion,
  WorkflowVersionPage,
} from './types';
import type { Workflow } from '../model/workflow';

export type ApiPath = keyof paths;
type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(status: number, body: Partial<ErrorBody> | null, fallback: string) {
    super(body?.message || fallback);
    this.name = 'ApiError';
    this.status = status;
    this.code = body?.code ?? 'http_' + status;
    this.details = (body?.details as Record<string, unknown> | undefined) ?? {};
  }

  /** `details.findings` of an `invalid_workflow` error. */
  get findings(): Finding[] {
    const f = this.details.findings;
    return Array.isArray(f) ? (f as Finding[]) : [];
  }

  /** `details.violations` of an `invalid_input` error. */
  get violations(): { path: string; message: string }[] {
    const v = this.details.violations;
    return Array.isArray(v) ? (v as { path: string; message: string }[]) : [];
  }
}

let tokenProvider: () => string | null = () => null;
let onUnauthorized: () => void = () => {};
let renewToken: (() => Promise<boolean>) | null = null;

/**
 * The auth context registers where the token comes from and what a 401 does. With `renew`
 * (a session that can get a fresh token), a 401 first renews and repeats the request once.
 */
export function configureAuth(provider: () => string | null, unauthorized: () => void, renew?: () => Promise<boolean>): void {
  tokenProvider = provider;
  onUnauthorized = unauthorized;
  renewToken = renew ?? null;
}

type Query = Record<string, string | number | boolean | undefined | null>;

/** The URL of an API path under the configured `apiUrl` ('' = this page's origin). */
export function buildUrl(path: ApiPath, params?: Record<string, string | number>, query?: Query, base: string = getConfig().apiUrl): string {
  let url: string = base + path.replace(/\{(\w+)\}/g, (_, k: string) => {
    const v = params?.[k];
    if (v === undefined) throw new Error(`missing path parameter ${k} for ${path}`);
    return encodeURIComponent(String(v));
  });
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  }
  const s = qs.toString();
  if (s) url += `?${s}`;
  return url;
}

interface CallOptions {
  params?: Record<string, string | number>;
  query?: Query;
  body?: unknown;
  /** Send the token (default true; the public form endpoints send none). */
  auth?: boolean;
}

async function send(method: Method, path: ApiPath, opts: CallOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const token = opts.auth === false ? null : tokenProvider();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  try {
    return await fetch(buildUrl(path, opts.params, opts.query), { method, headers, body });
  } catch (e) {
    throw new ApiError(0, null, `the server cannot be reached (${(e as Error).message})`);
  }
}

export async function call<T>(method: Method, path: ApiPath, opts: CallOptions = {}): Promise<T> {
  let res = await send(method, path, opts);
  if (res.status === 401 && opts.auth !== false && renewToken) {
    // An ID token can expire between two scheduled renewals (a sleeping laptop, a throttled tab).
    const renewed = await renewToken().catch(() => false);
    if (renewed) res = await send(method, path, opts);
  }
  const text = await res.text();
  let json: unknown = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!res.ok) {
    if (res.status === 401 && opts.auth !== false) onUnauthorized();
    throw new ApiError(res.status, json as Partial<ErrorBody> | null, `${method} ${path}: HTTP ${res.status}`);
  }
  return json as T;
}

// ---------------------------------------------------------------- endpoints

export const api = {
  listWorkflows: (q: { search?: string; templates?: boolean; cursor?: string; limit?: number } = {}) =>
    call<WorkflowPage>('GET', '/v1/workflows', { query: q }),
  getWorkflow: (id: string) => call<WorkflowDoc>('GET', '/v1/workflows/{id}', { params: { id } }),
  createWorkflow: (definition: Workflow, isTemplate?: boolean) =>
    call<WorkflowDoc>('POST', '/v1/workflows', { body: { definition, isTemplate } }),
  updateWorkflow: (id: string, definition: Workflow, expectedVersion?: number) =>
    call<WorkflowDoc>('PUT', '/v1/workflows/{id}', { params: { id }, body: { definition, expectedVersion } }),
  deleteWorkflow: (id: string) => call<null>('DELETE', '/v1/workflows/{id}', { params: { id } }),
  listVersions: (id: string, cursor?: string) =>
    call<WorkflowVersionPage>('GET', '/v1/workflows/{id}/versions', { params: { id }, query: { cursor, limit: 100 } }),
  getVersion: (id: string, version: number) =>
    call<WorkflowVersion>('GET', '/v1/workflows/{id}/versions/{version}', { params: { id, version } }),
  validate: (definition: Workflow) => call<Validation>('POST', '/v1/validate', { body: definition }),
  compile: (id: string, version?: number) =>
    call<Compiled>('GET', '/v1/workflows/{id}/compile', { params: { id }, query: { version } }),
  publish: (id: string, version?: number) =>
    call<Published>('POST', '/v1/workflows/{id}/publish', { params: { id }, body: version ? { version } : {} }),
  listTemplates: () => call<WorkflowPage>('GET', '/v1/templates', { query: { limit: 100 } }),
  fromTemplate: (templateId: string, id: string, name?: string) =>
    call<WorkflowDoc>('POST', '/v1/workflows/from-template', { body: { templateId, id, name } }),
  nodeTypes: () => call<NodeTypeList>('GET', '/v1/node-types'),
  startRun: (id: string, input: unknown, idempotencyKey?: string) =>
    call<RunRecord>('POST', '/v1/workflows/{id}/runs', { params: { id }, body: { input, idempotencyKey } }),
  listRuns: (q: { workflowId?: string; status?: RunStatus | ''; cursor?: string; limit?: number } = {}) =>
    call<RunPage>('GET', '/v1/runs', { query: q }),
  getRun: (id: string) => call<RunRecord>('GET', '/v1/runs/{id}', { params: { id } }),
  cancelRun: (id: string) => call<RunRecord>('POST', '/v1/runs/{id}/cancel', { params: { id } }),
  redrive: (id: string, latest = false) =>
    call<RunRecord>('POST', '/v1/runs/{id}/redrive', { params: { id }, body: { latest } }),
  runEvents: (id: string, after?: number) =>
    call<HistoryEventList>('GET', '/v1/runs/{id}/events', { params: { id }, query: { after, limit: 1000 } }),
  runNodes: (id: string) => call<NodeExecutionList>('GET', '/v1/runs/{id}/nodes', { params: { id } }),
  getForm: (formId: string) =>
    call<FormDefinition>('GET', '/v1/forms/{formId}', { params: { formId }, auth: false }),
  submitForm: (formId: string, data: unknown, clientKey?: string) =>
    call<Submitted>('POST', '/v1/forms/{formId}/responses', { params: { formId }, body: { data, clientKey }, auth: false }),
  listApprovals: (pending = true) => call<ApprovalList>('GET', '/v1/approvals', { query: { pending } }),
  getApproval: (id: string) => call<ApprovalView>('GET', '/v1/approvals/{id}', { params: { id } }),
  decide: (id: string, approve: boolean, comment: string) =>
    call<ApprovalView>('POST', '/v1/approvals/{id}/decision', { params: { id }, body: { approve, comment } }),
  /** A short-lived token for the live socket (which cannot take an identity provider's token). */
  liveTicket: () => call<LiveTicket>('POST', '/v1/live/tickets'),
};

/** A fresh live ticket's socket URL: what the live socket asks for on every (re)connect. */
export async function liveTicketUrl(): Promise<string> {
  return liveUrl((await api.liveTicket()).token);
}

/** The live status WebSocket URL (the configured `webSocketUrl`) for a token, normally a live ticket. */
export function liveUrl(token: string, base: string = getConfig().webSocketUrl): string {
  const u = new URL(base);
  u.searchParams.set('token', token);
  return u.toString();
}
