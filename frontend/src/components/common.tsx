import type { ReactNode } from 'react';
import { ApiError } from '../api/client';

/** An error from the API (or anything thrown) with its message, code and located findings. */
export function ErrorView({ error, testId = 'error', onFinding }: { error: unknown; testId?: string; onFinding?: (nodeId: string) => void }) {
  if (!error) return null;
  const e = error instanceof Error ? error : new Error(String(error));
  const api = e instanceof ApiError ? e : null;
  return (
    <div className="error-box" role="alert" data-testid={testId}>
      <div className="error-message">
        {api && api.status > 0 ? <span className="error-code">{api.code}</span> : null}
        {e.message}
      </div>
      {api && api.findings.length > 0 ? (
        <ul className="error-findings">
          {api.findings.map((f, i) => {
            const node = f.nodeId;
            return (
              <li key={i}>
                <code>{f.code}</code>
                {node ? (
                  onFinding ? (
                    <button type="button" className="link" onClick={() => onFinding(node)}>
                      {node}
                    </button>
                  ) : (
                    <b> {node}</b>
                  )
                ) : null}
                {f.path ? <span className="path"> {f.path}</span> : null} {f.message}
              </li>
            );
          })}
        </ul>
      ) : null}
      {api && api.violations.length > 0 ? (
        <ul className="error-findings">
          {api.violations.map((v, i) => (
            <li key={i}>
              {v.path ? <span className="path">{v.path} </span> : null}
              {v.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function JsonBlock({ value, testId, maxHeight }: { value: unknown; testId?: string; maxHeight?: number }) {
  let text: string;
  if (typeof value === 'string') {
    try {
      text = JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      text = value;
    }
  } else {
    text = value === undefined ? '—' : JSON.stringify(value, null, 2);
  }
  return (
    <pre className="json-block" data-testid={testId} style={maxHeight ? { maxHeight } : undefined}>
      {text}
    </pre>
  );
}

export function StatusBadge({ status, testId }: { status: string; testId?: string }) {
  return (
    <span className={`status-badge status-${status.toLowerCase()}`} data-testid={testId}>
      {status.toLowerCase().replace('_', ' ')}
    </span>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return <div className="loading">{what}…</div>;
}

export function formatTime(ms: number | null | undefined): string {
  if (!ms) return '—';
  return new Date(ms).toLocaleString();
}

export function Section({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="section">
      <div className="section-head">
        <h3>{title}</h3>
        {actions}
      </div>
      {children}
    </section>
  );
}
