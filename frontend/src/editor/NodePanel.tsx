import { memo, useEffect, useMemo, useState, type Dispatch } from 'react';
import Form from '@rjsf/core';
import type { IChangeEvent } from '@rjsf/core';
import type { ErrorSchema as RjsfErrorSchema } from '@rjsf/utils';
import type { EditorAction } from '../graph/editorState';
import { configErrorSchema, type Problem } from '../graph/problems';
import { template, type Available } from '../model/expressions';
import { isValidNodeId, type ErrorHandling, type NodeTypeDescriptor, type WfNode } from '../model/workflow';
import { prepareConfigForm, validator } from '../forms/schemaForm';
import { EXPR_LIST_ID, fields, widgets } from '../forms/fields';
import { ProblemItems } from './ProblemsList';

interface NodePanelProps {
  wf: WfNode;
  desc: NodeTypeDescriptor | undefined;
  problems: Problem[] | undefined;
  available: Available;
  readOnly: boolean;
  takenIds: () => ReadonlySet<string>;
  dispatch: Dispatch<EditorAction>;
  onFocusNode: (id: string) => void;
}

const formBehavior = { emptyObjectFields: 'skipDefaults' } as const;

function JsonText({
  value,
  onValid,
  readOnly,
  testId,
  rows = 6,
}: {
  value: unknown;
  onValid: (v: unknown) => void;
  readOnly: boolean;
  testId: string;
  rows?: number;
}) {
  const [text, setText] = useState(() => (value === undefined ? '' : JSON.stringify(value, null, 2)));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setText((cur) => {
      try {
        if (cur.trim() && JSON.stringify(JSON.parse(cur)) === JSON.stringify(value)) return cur;
      } catch {
        /* replaced below */
      }
      return value === undefined ? '' : JSON.stringify(value, null, 2);
    });
    setError(null);
  }, [value]);
  return (
    <>
      <textarea
        className="json-field"
        data-testid={testId}
        spellCheck={false}
        rows={rows}
        value={text}
        readOnly={readOnly}
        onChange={(e) => {
          const t = e.target.value;
          setText(t);
          if (!t.trim()) {
            setError(null);
            onValid(undefined);
            return;
          }
          try {
            const v = JSON.parse(t);
            setError(null);
            onValid(v);
          } catch (err) {
            setError((err as Error).message);
          }
        }}
      />
      {error ? <div className="error-detail">{error}</div> : null}
    </>
  );
}

function NodeIdInput({ wf, readOnly, takenIds, dispatch }: Pick<NodePanelProps, 'wf' | 'readOnly' | 'takenIds' | 'dispatch'>) {
  const [text, setText] = useState(wf.id);
  useEffect(() => setText(wf.id), [wf.id]);
  const problem =
    text === wf.id ? null : !isValidNodeId(text) ? 'letters, digits and _, not starting with a digit (at most 64)' : takenIds().has(text) ? 'another node has this id' : null;
  const commit = () => {
    if (text !== wf.id && !problem) dispatch({ type: 'renameNode', from: wf.id, to: text });
    else setText(wf.id);
  };
  return (
    <label>
      Id
      <input
        data-testid="node-id-input"
        value={text}
        readOnly={readOnly}
        onChange={(e) => setText(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === 'Enter') (e.target as HTMLInputElement).blur();
          if (e.key === 'Escape') setText(wf.id);
        }}
      />
      {problem ? <span className="field-error">{problem}</span> : null}
    </label>
  );
}

function Upstream({ available }: { available: Available }) {
  const [copied, setCopied] = useState<string | null>(null);
  const copy = (expr: string) => {
    const t = template(expr);
    void navigator.clipboard?.writeText(t).catch(() => {});
    setCopied(t);
  };
  return (
    <div className="upstream" data-testid="node-upstream">
      <h4>Available data</h4>
      {available.upstream.length === 0 ? <p className="muted small">No node runs before this one.</p> : null}
      {available.upstream.map((u) => (
        <div key={u.nodeId} className="upstream-node" data-testid={`upstream-${u.nodeId}`}>
          <div className="upstream-head">
            <b>{u.nodeId}</b> <span className="muted">{u.name ? `${u.name} · ` : ''}{u.type}</span>
          </div>
          <div className="chips">
            {u.expressions.map((x) => (
              <button type="button" key={x} className="chip" title={`Copy ${template(x)}`} onClick={() => copy(x)}>
                {x}
              </button>
            ))}
          </div>
        </div>
      ))}
      <div className="chips">
        {available.context.map((x) => (
          <button type="button" key={x} className="chip muted" onClick={() => copy(x)}>
            {x}
          </button>
        ))}
      </div>
      {copied ? <div className="hint">Copied {copied}</div> : null}
      <datalist id={EXPR_LIST_ID}>
        {[...available.upstream.flatMap((u) => u.expressions), ...available.context].map((x) => (
          <option key={x} value={template(x)} />
        ))}
      </datalist>
    </div>
  );
}

function NodePanelView({ wf, desc, problems, available, readOnly, takenIds, dispatch, onFocusNode }: NodePanelProps) {
  const [rawConfig, setRawConfig] = useState(false);
  const prepared = useMemo(() => (desc ? prepareConfigForm(desc.configSchema) : null), [desc]);
  const extraErrors = useMemo(() => configErrorSchema(problems) as unknown as RjsfErrorSchema, [problems]);
  const config = wf.config ?? {};
  const update = (patch: Partial<WfNode>, coalesce?: string) => dispatch({ type: 'updateNode', id: wf.id, patch, coalesce });

  const onFormChange = (e: IChangeEvent) => {
    const next = (e.formData ?? {}) as Record<string, unknown>;
    if (JSON.stringify(next) !== JSON.stringify(config)) update({ config: next }, 'config');
  };

  return (
    <div className="node-panel" data-testid="node-panel">
      <div className="panel-head">
        <div>
          <div className="panel-title">{desc?.title ?? wf.type}</div>
          <code className="small" data-testid="node-panel-type">
            {wf.type}
          </code>
        </div>
        {readOnly ? null : (
          <button type="button" className="danger small" data-testid="node-delete" onClick={() => dispatch({ type: 'deleteElements', nodeIds: [wf.id], edgeIds: [] })}>
            Delete
          </button>
        )}
      </div>
      {desc ? <p className="muted small">{desc.description}</p> : <p className="field-error">Unknown node type.</p>}
      <NodeIdInput wf={wf} readOnly={readOnly} takenIds={takenIds} dispatch={dispatch} />
      <label>
        Name
        <input
          data-testid="node-name-input"
          value={wf.name ?? ''}
          placeholder={desc?.title}
          readOnly={readOnly}
          onChange={(e) => update({ name: e.target.value || undefined }, 'name')}
        />
      </label>

      {problems && problems.length > 0 ? (
        <div className="node-problems" data-testid="node-panel-problems">
          <ProblemItems problems={problems} onFocusNode={onFocusNode} testIdPrefix="node-problem" />
        </div>
      ) : null}

      <div className="config-head">
        <h4>Config</h4>
        <label className="toggle">
          <input type="checkbox" checked={rawConfig} onChange={(e) => setRawConfig(e.target.checked)} data-testid="node-config-raw-toggle" /> JSON
        </label>
      </div>
      {rawConfig || !prepared ? (
        <JsonText value={config} readOnly={readOnly} testId="node-config-json" rows={12} onValid={(v) => update({ config: (v ?? {}) as Record<string, unknown> }, 'config-json')} />
      ) : (
        <div className="config-form" data-testid="node-config-form">
          <Form
            schema={prepared.schema}
            uiSchema={prepared.uiSchema}
            formData={config}
            validator={validator}
            fields={fields}
            widgets={widgets}
            extraErrors={extraErrors}
            liveValidate="onChange"
            showErrorList={false}
            noHtml5Validate
            disabled={readOnly}
            experimental_defaultFormStateBehavior={formBehavior}
            onChange={onFormChange}
          />
        </div>
      )}

      <Upstream available={available} />

      <details className="advanced">
        <summary>Timeout, retries and errors</summary>
        <label>
          Timeout per attempt (s)
          <input
            type="number"
            min={1}
            data-testid="node-timeout-input"
            value={wf.timeoutSeconds ?? ''}
            placeholder={desc?.defaultTimeoutSeconds ? String(desc.defaultTimeoutSeconds) : ''}
            readOnly={readOnly}
            onChange={(e) => update({ timeoutSeconds: e.target.value === '' ? undefined : Number(e.target.value) }, 'timeout')}
          />
        </label>
        <label>
          On error
          <select
            data-testid="node-onerror-select"
            value={wf.onError?.action ?? ''}
            disabled={readOnly}
            onChange={(e) => {
              const action = e.target.value as ErrorHandling['action'] | '';
              update({ onError: action ? { ...(wf.onError ?? {}), action } : undefined });
            }}
          >
            <option value="">fail (default)</option>
            <option value="continue">continue: record the error, go on</option>
            <option value="route">route: take the error port</option>
          </select>
        </label>
        <div className="label">Retry rules (JSON; empty: the type's default)</div>
        <JsonText value={wf.retry ?? undefined} readOnly={readOnly} testId="node-retry-json" rows={4} onValid={(v) => update({ retry: v as WfNode['retry'] }, 'retry')} />
      </details>
    </div>
  );
}

export const NodePanel = memo(NodePanelView);
