// API types: the schemas of the server's OpenAPI document, generated into `schema.d.ts`
// (`npm run gen:api`). The app imports them from here. Written here are only a
// run-time constant and the one refinement the generator cannot make (below).

import type { components } from './schema';
import type { Workflow } from '../model/workflow';

type Schemas = components['schemas'];

export type ErrorBody = Schemas['ErrorBody'];
export type LiveEvent = Schemas['LiveEvent'];
export type LiveTicket = Schemas['LiveTicket'];

export type WorkflowSummary = Schemas['WorkflowSummary'];
export type WorkflowPage = Schemas['WorkflowPage'];
export type Finding = Schemas['Finding'];
export type Validation = Schemas['Validation'];
export type Published = Schemas['Published'];
export type Compiled = Schemas['Compiled'];

// The stored workflow documents are the bodies the server accepted, kept verbatim, so their
// defaulted members (`edges`, `version`, a node's `typeVersion` and `config`) may be absent;
// openapi-typescript makes members with a default required. The builder's own document type
// (model/workflow.ts, the same JSON Schema) has them optional.
export type WorkflowDoc = Omit<Schemas['WorkflowDoc'], 'definition'> & { definition: Workflow };
export type WorkflowVersion = Omit<Schemas['WorkflowVersion'], 'definition'> & { definition: Workflow };
export type WorkflowVersionPage = Omit<Schemas['WorkflowVersionPage'], 'items'> & { items: WorkflowVersion[] };

export type RunStatus = Schemas['RunStatus'];
export const RUN_STATUSES: readonly RunStatus[] = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'];
export type RunRecord = Schemas['RunRecord'];
export type RunPage = Schemas['RunPage'];
export type NodeExecution = Schemas['NodeExecution'];
export type NodeExecutionList = Schemas['NodeExecutionList'];
/** A Step Functions history event (`GetExecutionHistory` shape). */
export type HistoryEvent = Schemas['HistoryEvent'];
export type HistoryEventList = Schemas['HistoryEventList'];

export type NodeTypeDescriptor = Schemas['NodeTypeDescriptor'];
export type NodeTypeList = Schemas['NodeTypeList'];

export type FormDefinition = Schemas['FormDefinition'];
export type Submitted = Schemas['Submitted'];

export type ApprovalView = Schemas['ApprovalView'];
export type ApprovalList = Schemas['ApprovalList'];
export type DeadLetterView = Schemas['DeadLetterView'];
