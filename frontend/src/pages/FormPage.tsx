import { useMemo, useState } from 'react';
import { useMutation, useQuery } from '@tanstack/react-query';
import { useParams } from 'react-router';
import Form from '@rjsf/core';
import type { RJSFSchema, UiSchema } from '@rjsf/utils';
import { api, ApiError } from '../api/client';
import { ErrorView, Loading } from '../components/common';
import { validator } from '../forms/schemaForm';

function newClientKey(): string {
  return typeof crypto !== 'undefined' && 'randomUUID' in crypto ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

/** violations (`/amount`) → rjsf extraErrors. */
function violationErrors(e: unknown): Record<string, unknown> | undefined {
  if (!(e instanceof ApiError) || e.violations.length === 0) return undefined;
  const root: Record<string, unknown> = {};
  for (const v of e.violations) {
    const segs = v.path.split('/').slice(1).filter(Boolean);
    let cur = root;
    for (const s of segs) cur = (cur[s] ??= {}) as Record<string, unknown>;
    cur.__errors = [...((cur.__errors as string[] | undefined) ?? []), v.message];
  }
  return root;
}

/** The public form of a published form trigger: no token needed. */
export default function FormPage() {
  const { formId = '' } = useParams();
  const form = useQuery({ queryKey: ['form', formId], queryFn: () => api.getForm(formId), staleTime: Infinity });
  const [data, setData] = useState<unknown>({});
  // One key per page visit: a double submit stores one response and starts one run.
  const clientKey = useMemo(newClientKey, []);
  const submit = useMutation({ mutationFn: (d: unknown) => api.submitForm(formId, d, clientKey) });
  const extraErrors = useMemo(() => violationErrors(submit.error), [submit.error]);

  if (form.isPending) return <Loading />;
  if (form.error) {
    return (
      <div className="page narrow public-form">
        <ErrorView error={form.error} testId="form-load-error" />
      </div>
    );
  }
  const def = form.data;
  const uiSchema: UiSchema = {
    ...((def.uiSchema as UiSchema | null | undefined) ?? {}),
    'ui:submitButtonOptions': { submitText: def.submitLabel || 'Submit', props: { className: 'primary' } },
  };
  return (
    <div className="page narrow public-form" data-testid="form-page">
      <h2 data-testid="form-title">{def.title}</h2>
      {def.description ? <p className="muted">{def.description}</p> : null}
      {submit.data ? (
        <div className="notice success" data-testid="form-success">
          {submit.data.message}
        </div>
      ) : (
        <>
          <Form
            schema={def.schema as RJSFSchema}
            uiSchema={uiSchema}
            formData={data}
            validator={validator}
            extraErrors={extraErrors as never}
            showErrorList={false}
            noHtml5Validate
            disabled={submit.isPending}
            onChange={(e) => setData(e.formData)}
            onSubmit={(e) => submit.mutate(e.formData)}
            onError={() => {}}
          />
          <ErrorView error={submit.error} testId="form-error" />
        </>
      )}
    </div>
  );
}
