// rjsf customisations: a JSON text field for free-form values, and a text widget that offers
// the expressions of upstream outputs (a <datalist> the node panel renders once).

import { useEffect, useState } from 'react';
import type { FieldProps, RegistryFieldsType, RegistryWidgetsType, WidgetProps } from '@rjsf/utils';
import { JSON_FIELD } from './schemaForm';

export const EXPR_LIST_ID = 'cm-expression-suggestions';

function show(v: unknown): string {
  return v === undefined ? '' : JSON.stringify(v, null, 2);
}

export function JsonField(props: FieldProps) {
  const { formData, onChange, schema, name, disabled, readonly, fieldPathId, rawErrors, required } = props;
  const [text, setText] = useState(() => show(formData));
  const [error, setError] = useState<string | null>(null);
  // Follow outside changes (undo, JSON tab) unless the text is mid-edit and invalid.
  useEffect(() => {
    setText((cur) => {
      try {
        if (cur.trim() !== '' && JSON.stringify(JSON.parse(cur)) === JSON.stringify(formData)) return cur;
      } catch {
        /* replace */
      }
      return show(formData);
    });
    setError(null);
  }, [formData]);
  const title = (schema.title as string | undefined) ?? name;
  const id = fieldPathId.$id;
  return (
    <div className="form-group field-json">
      <label htmlFor={id}>
        {title}
        {required ? '*' : ''}
        <span className="hint"> (JSON)</span>
      </label>
      {schema.description ? <p className="field-description">{String(schema.description)}</p> : null}
      <textarea
        id={id}
        className="json-field"
        data-testid={`config-json-${name}`}
        spellCheck={false}
        rows={Math.min(12, Math.max(2, text.split('\n').length))}
        value={text}
        disabled={disabled || readonly}
        onChange={(e) => {
          const t = e.target.value;
          setText(t);
          if (t.trim() === '') {
            setError(null);
            onChange(undefined, fieldPathId.path);
            return;
          }
          try {
            const v = JSON.parse(t);
            setError(null);
            onChange(v, fieldPathId.path);
          } catch (err) {
            setError((err as Error).message);
          }
        }}
      />
      {error ? <div className="error-detail">{error}</div> : null}
      {rawErrors && rawErrors.length > 0 ? (
        <ul className="error-detail">
          {rawErrors.map((e) => (
            <li key={e}>{e}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function ExprTextWidget(props: WidgetProps) {
  const { id, value, required, disabled, readonly, autofocus, onChange, onBlur, onFocus, options, schema, placeholder } = props;
  const multiline = typeof value === 'string' && value.length > 60;
  const common = {
    id,
    name: id,
    value: value ?? '',
    required,
    disabled: disabled || readonly,
    autoFocus: autofocus,
    placeholder,
    onBlur: (e: { target: { value: string } }) => onBlur(id, e.target.value),
    onFocus: (e: { target: { value: string } }) => onFocus(id, e.target.value),
  };
  const change = (v: string) => onChange(v === '' ? options.emptyValue : v);
  if (multiline) {
    return <textarea {...common} rows={3} onChange={(e) => change(e.target.value)} />;
  }
  return (
    <input
      {...common}
      type={schema.format === 'email' ? 'email' : 'text'}
      list={EXPR_LIST_ID}
      onChange={(e) => change(e.target.value)}
    />
  );
}

export const fields: RegistryFieldsType = { [JSON_FIELD]: JsonField };
export const widgets: RegistryWidgetsType = { TextWidget: ExprTextWidget };
