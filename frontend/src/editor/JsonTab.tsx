// The workflow as JSON: edits that parse and look like a workflow replace the document (and so
// the canvas) after a short pause; canvas edits rewrite the text while it is not mid-edit.

import { useEffect, useRef, useState, type Dispatch } from 'react';
import type { EditorAction } from '../graph/editorState';
import type { Workflow } from '../model/workflow';

/** Why a parsed value cannot be the workflow `id` (null: it can). */
export function workflowShapeError(v: unknown, id: string): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'the document must be a JSON object';
  const o = v as Record<string, unknown>;
  if (o.id !== id) return `the id must stay "${id}" (save a copy from the workflow list to change it)`;
  if (typeof o.name !== 'string') return '`name` must be a string';
  if (!Array.isArray(o.nodes)) return '`nodes` must be an array';
  const ids = new Set<string>();
  for (const [i, n] of o.nodes.entries()) {
    if (typeof n !== 'object' || n === null || Array.isArray(n)) return `nodes[${i}] must be an object`;
    const node = n as Record<string, unknown>;
    if (typeof node.id !== 'string' || node.id === '') return `nodes[${i}].id must be a non-empty string`;
    if (typeof node.type !== 'string') return `nodes[${i}].type must be a string`;
    if (node.config !== undefined && (typeof node.config !== 'object' || node.config === null || Array.isArray(node.config)))
      return `nodes[${i}].config must be an object`;
    const p = node.position as { x?: unknown; y?: unknown } | null | undefined;
    if (p !== undefined && p !== null && (typeof p.x !== 'number' || typeof p.y !== 'number')) return `nodes[${i}].position needs numbers x and y`;
    ids.add(node.id);
  }
  if (o.edges !== undefined) {
    if (!Array.isArray(o.edges)) return '`edges` must be an array';
    for (const [i, e] of o.edges.entries()) {
      if (typeof e !== 'object' || e === null) return `edges[${i}] must be an object`;
      const edge = e as Record<string, unknown>;
      if (typeof edge.from !== 'string' || typeof edge.to !== 'string') return `edges[${i}] needs string from and to`;
      if (edge.fromPort !== undefined && typeof edge.fromPort !== 'string') return `edges[${i}].fromPort must be a string`;
    }
  }
  return null;
}

/** Offset of the first JSON syntax error in `text` (a small recursive-descent scanner). */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i += 1;
  };
  const fail = (): never => {
    throw i;
  };
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length;
    else fail();
  };
  const string = () => {
    if (text[i] !== '"') fail();
    i += 1;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') i += 1;
      else if (text.charCodeAt(i) < 0x20) fail();
      i += 1;
    }
    if (text[i] !== '"') fail();
    i += 1;
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m || m[0] === '' || m[0] === '-') fail();
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i += 1;
      ws();
      if (text[i] === '}') {
        i += 1;
        return;
      }
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ':') fail();
        i += 1;
        value();
        ws();
        if (text[i] === ',') i += 1;
        else if (text[i] === '}') {
          i += 1;
          return;
        } else fail();
      }
    } else if (c === '[') {
      i += 1;
      ws();
      if (text[i] === ']') {
        i += 1;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i += 1;
        else if (text[i] === ']') {
          i += 1;
          return;
        } else fail();
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else number();
  };
  try {
    value();
    ws();
    return i < text.length ? i : -1;
  } catch (at) {
    return at as number;
  }
}

/** A JSON syntax error with its line and column. */
export function syntaxError(text: string, err: Error): string {
  const pos = jsonErrorOffset(text);
  if (pos < 0) return err.message;
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  const message = err.message.replace(/\s*\(line \d+ column \d+\)$/, '').replace(/, "[\s\S]*" is not valid JSON$/, '');
  return `line ${line}, column ${col}: ${message}`;
}

export function JsonTab({
  doc,
  revision,
  readOnly,
  dispatch,
}: {
  doc: () => Workflow;
  revision: number;
  readOnly: boolean;
  dispatch: Dispatch<EditorAction>;
}) {
  const [text, setText] = useState(() => JSON.stringify(doc(), null, 2));
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const ownRevision = useRef<number | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const id = useRef(doc().id);

  // The document changed elsewhere (canvas, undo): show it, unless this tab made the change.
  useEffect(() => {
    if (ownRevision.current === revision) return;
    setText(JSON.stringify(doc(), null, 2));
    setError(null);
    setPending(false);
  }, [revision]);

  useEffect(() => () => {
    if (timer.current) clearTimeout(timer.current);
  }, []);

  const onChange = (t: string) => {
    setText(t);
    if (timer.current) clearTimeout(timer.current);
    let value: unknown;
    try {
      value = JSON.parse(t);
    } catch (err) {
      setError(syntaxError(t, err as Error));
      setPending(false);
      return;
    }
    const shape = workflowShapeError(value, id.current);
    if (shape) {
      setError(shape);
      setPending(false);
      return;
    }
    setError(null);
    setPending(true);
    timer.current = setTimeout(() => {
      setPending(false);
      if (JSON.stringify(value) === JSON.stringify(doc())) return;
      ownRevision.current = revision + 1;
      dispatch({ type: 'replaceDocument', workflow: value as Workflow });
    }, 400);
  };

  return (
    <div className="json-tab">
      <div className="json-status" data-testid="json-status">
        {error ? (
          <span className="field-error" data-testid="json-error">
            {error}
          </span>
        ) : pending ? (
          <span className="muted">Applying…</span>
        ) : (
          <span className="ok">In sync with the canvas{readOnly ? ' (read-only)' : ''}.</span>
        )}
      </div>
      <textarea
        className="json-editor"
        data-testid="json-editor"
        spellCheck={false}
        value={text}
        readOnly={readOnly}
        onChange={(e) => onChange(e.target.value)}
      />
    </div>
  );
}
