// API types. Everything the OpenAPI document describes comes from the generated
// `schema.d.ts` (`npm run gen:api`). The document gives some responses only as `Object`
// (workflow summaries, findings, runs, versions, node types, compile output, history events,
// node executions, forms); their shapes are written here, after the Rust types they serialize
// (cm-store, cm-compiler, cm-registry), until the document describes them.

import type { components } from './schema';
import type { NodeTypeDescriptor, Workflow } from '../model/workflow';

type Schemas = components['schemas'];

export type ErrorBody = Schemas['ErrorBody'];
export type ApprovalView = Omit<Schemas['ApprovalView'], 'data' | 'decision'> & {
  data: unknown;
  decision?: unknown;
};
export type LiveEvent = Schemas['LiveEvent'];
export type Published = Omit<Schemas['Published'], 'workflow'> & { workflow: WorkflowSummary };
export type Submitted = Schemas['Submitted'];
export type DeadLetterView = Schemas['DeadLetterView'];

export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

/** cm_store::WorkflowSummary. */
export interface WorkflowSummary {
  id: string;
  name: string;
  description: string;
  latestVersion: number;
  publishedVersion: number | null;
  stateMachine: string | null;
  isTemplate: boolean;
  createdAtMs: number;
  createdBy: string;
  updatedAtMs: number;
  updatedBy: string;
}

/** cm_compiler::Finding (the API's own 422 findings may say `node` instead of `nodeId`). */
export interface Finding {
  code: string;
  severity: 'error' | 'warning';
  nodeId?: string;
  node?: string;
  edge?: number;
  path: string;
  nodes?: string[];
  message: string;
}

/** GET/PUT/POST /v1/workflows… */
export interface WorkflowDoc {
  workflow: WorkflowSummary;
  definition: Workflow;
  findings: Finding[];
}

export interface Validation {
  valid: boolean;
  findings: Finding[];
}

/** cm_store::WorkflowVersion. */
export interface WorkflowVersion {
  workflowId: string;
  version: number;
  definition: Workflow;
  createdAtMs: number;
  createdBy: string;
}

export type RunStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';
export const RUN_STATUSES: readonly RunStatus[] = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'];

/** cm_store::RunRecord. */
export interface RunRecord {
  id: string;
  workflowId: string;
  workflowVersion: number;
  executionArn: string;
  status: RunStatus;
  trigger: string;
  input: unknown;
  output: unknown;
  error: string | null;
  cause: string | null;
  idempotencyKey: string | null;
  startedBy: string;
  startedAtMs: number;
  endedAtMs: number | null;
  retryOf: string | null;
}

/** cm_store::NodeExecution. */
export interface NodeExecution {
  nodeId: string;
  step: string;
  status: 'running' | 'succeeded' | 'failed' | string;
  startedAtMs: number;
  endedAtMs: number | null;
  outputPreview: string | null;
  error: string | null;
}

/** A Step Functions history event (`GetExecutionHistory` shape). */
export interface HistoryEvent {
  id: number;
  previousEventId?: number;
  timestamp: string;
  type: string;
  [details: string]: unknown;
}

/** cm_compiler::Compiled. */
export interface Compiled {
  definition: Record<string, unknown>;
  stateMap: Record<string, { nodeId?: string; role: string }>;
  executionType: string;
  executionTypeReason: string;
  stats: Record<string, number>;
  warnings: Finding[];
}

/** cm_nodes::trigger::form::FormDefinition. */
export interface FormDefinition {
  title: string;
  description?: string | null;
  schema: Record<string, unknown>;
  uiSchema?: Record<string, unknown> | null;
  submitLabel?: string | null;
  successMessage?: string | null;
}

export interface NodeTypeList {
  items: NodeTypeDescriptor[];
}
