import { useMemo, useState } from 'react';
import Form from '@rjsf/core';
import type { RJSFSchema } from '@rjsf/utils';
import type { RunRecord } from '../api/types';
import { ErrorView } from '../components/common';
import { runInputSchema, sampleRunInput, validator } from '../forms/schemaForm';
import type { WfNode } from '../model/workflow';

/**
 * Start a run: the input as a form generated from the trigger's schema (manual input schema,
 * form schema) and as JSON, kept in sync. `start` saves and publishes first when needed.
 */
export function RunDialog({
  trigger,
  start,
  onClose,
}: {
  trigger: WfNode | undefined;
  start: (input: unknown) => Promise<RunRecord>;
  onClose: () => void;
}) {
  const schema = useMemo(() => runInputSchema(trigger?.type, trigger?.config), [trigger]);
  const [input, setInput] = useState<unknown>(() => sampleRunInput(trigger?.type, trigger?.config));
  const [text, setText] = useState(() => JSON.stringify(input, null, 2));
  const [parseError, setParseError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const setFromForm = (v: unknown) => {
    setInput(v);
    setText(JSON.stringify(v, null, 2));
    setParseError(null);
  };

  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      await start(input);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div className="modal" role="dialog" aria-label="Run" data-testid="run-dialog" onClick={(e) => e.stopPropagation()}>
        <h3>Run {trigger ? <code>{trigger.type}</code> : null}</h3>
        <p className="muted small">The latest version is saved and published first if needed.</p>
        {schema ? (
          <div className="run-input-form" data-testid="run-input-form">
            <Form
              schema={schema as RJSFSchema}
              formData={input}
              validator={validator}
              liveValidate="onChange"
              showErrorList={false}
              noHtml5Validate
              uiSchema={{ 'ui:submitButtonOptions': { norender: true } }}
              onChange={(e) => setFromForm(e.formData)}
            />
          </div>
        ) : null}
        <label>
          Input (JSON)
          <textarea
            data-testid="run-input"
            className="json-field"
            rows={8}
            spellCheck={false}
            value={text}
            onChange={(e) => {
              setText(e.target.value);
              try {
                setInput(e.target.value.trim() ? JSON.parse(e.target.value) : {});
                setParseError(null);
              } catch (err) {
                setParseError((err as Error).message);
              }
            }}
          />
        </label>
        {parseError ? <div className="field-error">{parseError}</div> : null}
        <ErrorView error={error} testId="run-error" />
        <div className="buttons">
          <button type="button" className="primary" data-testid="btn-start-run" disabled={busy || !!parseError} onClick={submit}>
            {busy ? 'Starting…' : 'Start run'}
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </div>
    </div>
  );
}
