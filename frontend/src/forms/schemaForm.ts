// JSON Schema → rjsf: the validator (draft 2020-12, which node config schemas declare) and a
// pass that sends the parts rjsf renders poorly (free-form values, maps, recursive rule trees,
// multi-type values) to a JSON field instead. Pure apart from the validator instance.

import { customizeValidator } from '@rjsf/validator-ajv8';
import Ajv2020 from 'ajv/dist/2020';
import type Ajv from 'ajv';
import type { RJSFSchema, UiSchema } from '@rjsf/utils';

export const validator = customizeValidator({
  AjvClass: Ajv2020 as unknown as typeof Ajv,
  ajvOptionsOverrides: { strict: false },
});

export const JSON_FIELD = 'cmJson';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasRef(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasRef);
  if (!isObj(v)) return false;
  return '$ref' in v || Object.values(v).some(hasRef);
}

/** Whether rjsf should leave this property to the JSON field. */
export function needsJsonField(s: unknown): boolean {
  if (s === true || s === undefined) return true;
  if (!isObj(s)) return false;
  if ('enum' in s || 'const' in s) return false;
  const type = s.type;
  if (Array.isArray(type)) return type.filter((t) => t !== 'null').length !== 1;
  if (type === undefined) return !('properties' in s);
  if (type === 'object') return !isObj(s.properties);
  if (type === 'array') {
    const items = s.items;
    return items === undefined || items === true || (isObj(items) && Object.keys(items).length === 0) || hasRef(items) || (isObj(items) && needsJsonField(items) && items.type !== 'string');
  }
  return false;
}

/**
 * What rjsf sees of a JSON field: its title and description only (rjsf would also draw a
 * selector for `anyOf`/`oneOf`); the server validates the value.
 */
function jsonFieldSchema(s: unknown, name: string): Obj {
  // Never empty: rjsf skips properties whose schema is `{}`.
  const out: Obj = { title: name };
  if (!isObj(s)) return out;
  for (const k of ['title', 'description', 'default']) if (k in s) out[k] = s[k];
  return out;
}

export interface PreparedForm {
  schema: RJSFSchema;
  uiSchema: UiSchema;
}

function prepareObject(s: Obj, depth: number): { schema: Obj; ui: UiSchema } {
  const ui: UiSchema = {};
  const props = isObj(s.properties) ? s.properties : {};
  const out: Obj = {};
  for (const [k, v] of Object.entries(props)) {
    if (needsJsonField(v)) {
      ui[k] = { 'ui:field': JSON_FIELD };
      out[k] = jsonFieldSchema(v, k);
    } else if (isObj(v) && v.type === 'object' && depth < 4) {
      const inner = prepareObject(v, depth + 1);
      out[k] = inner.schema;
      if (Object.keys(inner.ui).length > 0) ui[k] = inner.ui;
    } else {
      out[k] = v;
    }
  }
  const schema: Obj = { ...s, properties: out };
  // Alternatives over `required` alone (a wait's seconds or until) render as a selector:
  // leave that rule to validation.
  for (const key of ['oneOf', 'anyOf']) {
    const alt = schema[key];
    if (Array.isArray(alt) && alt.every((a) => isObj(a) && !('properties' in a))) delete schema[key];
  }
  return { schema, ui };
}

/** The schema and UI schema rjsf renders for a node's config schema. */
export function prepareConfigForm(configSchema: unknown): PreparedForm {
  if (!isObj(configSchema)) {
    return { schema: { type: 'object' }, uiSchema: { 'ui:field': JSON_FIELD } };
  }
  if (needsJsonField(configSchema)) {
    return { schema: configSchema as RJSFSchema, uiSchema: { 'ui:field': JSON_FIELD } };
  }
  const { schema, ui } = prepareObject(configSchema, 0);
  return { schema: schema as RJSFSchema, uiSchema: { ...ui, 'ui:submitButtonOptions': { norender: true } } };
}

/** A trigger's run-input schema: manual `inputSchema`, form `schema`; null when there is none. */
export function runInputSchema(triggerType: string | undefined, config: Record<string, unknown> | undefined): Obj | null {
  const c = config ?? {};
  const s = triggerType === 'trigger.manual' ? c.inputSchema : triggerType === 'trigger.form' ? c.schema : undefined;
  return isObj(s) ? s : null;
}

/** A starting run input for a trigger. */
export function sampleRunInput(triggerType: string | undefined, config: Record<string, unknown> | undefined): unknown {
  switch (triggerType) {
    case 'trigger.webhook':
      return { method: 'POST', headers: {}, query: {}, body: {} };
    case 'trigger.queue':
      return { body: {} };
    case 'trigger.schedule':
      return (config ?? {}).input ?? {};
    default:
      return {};
  }
}
