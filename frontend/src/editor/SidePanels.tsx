import { memo, type Dispatch } from 'react';
import type { EditorAction } from '../graph/editorState';
import type { WorkflowMeta } from '../graph/mapping';
import type { Problem } from '../graph/problems';
import type { Settings } from '../model/workflow';
import { ProblemItems } from './ProblemsList';

function WorkflowPanelView({ meta, readOnly, dispatch }: { meta: WorkflowMeta; readOnly: boolean; dispatch: Dispatch<EditorAction> }) {
  const f = meta.fields as { id?: string; name?: string; description?: string; settings?: Settings };
  const settings = f.settings ?? {};
  const setSettings = (patch: Partial<Settings>, coalesce?: string) => {
    const next: Record<string, unknown> = { ...settings, ...patch };
    for (const [k, v] of Object.entries(next)) if (v === undefined || v === '') delete next[k];
    dispatch({ type: 'setMeta', patch: { settings: Object.keys(next).length ? next : undefined }, coalesce });
  };
  return (
    <div className="node-panel" data-testid="workflow-panel">
      <div className="panel-title">Workflow</div>
      <p className="muted small">Select a node to configure it.</p>
      <label>
        Id
        <input value={f.id ?? ''} readOnly />
      </label>
      <label>
        Name
        <input
          data-testid="wf-name-input"
          value={f.name ?? ''}
          readOnly={readOnly}
          onChange={(e) => dispatch({ type: 'setMeta', patch: { name: e.target.value }, coalesce: 'name' })}
        />
      </label>
      <label>
        Description
        <textarea
          data-testid="wf-description-input"
          rows={3}
          value={f.description ?? ''}
          readOnly={readOnly}
          onChange={(e) => dispatch({ type: 'setMeta', patch: { description: e.target.value || undefined }, coalesce: 'description' })}
        />
      </label>
      <label>
        Query language
        <select
          data-testid="wf-query-language"
          value={settings.queryLanguage ?? ''}
          disabled={readOnly}
          onChange={(e) => setSettings({ queryLanguage: (e.target.value || undefined) as Settings['queryLanguage'] })}
        >
          <option value="">JSONPath (default)</option>
          <option value="JSONata">JSONata</option>
        </select>
      </label>
      <label>
        Execution type
        <select
          data-testid="wf-execution-type"
          value={settings.executionType ?? ''}
          disabled={readOnly}
          onChange={(e) => setSettings({ executionType: (e.target.value || undefined) as Settings['executionType'] })}
        >
          <option value="">auto (default)</option>
          <option value="standard">standard</option>
          <option value="express">express</option>
        </select>
      </label>
      <label>
        Run timeout (s)
        <input
          type="number"
          min={1}
          value={settings.timeoutSeconds ?? ''}
          readOnly={readOnly}
          onChange={(e) => setSettings({ timeoutSeconds: e.target.value === '' ? undefined : Number(e.target.value) }, 'timeout')}
        />
      </label>
    </div>
  );
}

export const WorkflowPanel = memo(WorkflowPanelView);

function EdgePanelView({
  edge,
  problems,
  readOnly,
  dispatch,
  onFocusNode,
}: {
  edge: { id: string; source: string; target: string; sourceHandle?: string | null };
  problems: Problem[] | undefined;
  readOnly: boolean;
  dispatch: Dispatch<EditorAction>;
  onFocusNode: (id: string) => void;
}) {
  return (
    <div className="node-panel" data-testid="edge-panel">
      <div className="panel-head">
        <div className="panel-title">Connection</div>
        {readOnly ? null : (
          <button type="button" className="danger small" data-testid="edge-delete" onClick={() => dispatch({ type: 'deleteElements', nodeIds: [], edgeIds: [edge.id] })}>
            Delete
          </button>
        )}
      </div>
      <p>
        <button type="button" className="link" onClick={() => onFocusNode(edge.source)}>
          {edge.source}
        </button>{' '}
        <code>{edge.sourceHandle ?? 'out'}</code> →{' '}
        <button type="button" className="link" onClick={() => onFocusNode(edge.target)}>
          {edge.target}
        </button>
      </p>
      {problems && problems.length > 0 ? <ProblemItems problems={problems} onFocusNode={onFocusNode} testIdPrefix="edge-problem" /> : null}
    </div>
  );
}

export const EdgePanel = memo(EdgePanelView);
