import { memo, useState } from 'react';
import type { Problem, ProblemMap } from '../graph/problems';

export function ProblemItems({
  problems,
  onFocusNode,
  onFocusEdge,
  testIdPrefix = 'problem',
}: {
  problems: readonly Problem[];
  onFocusNode?: (id: string) => void;
  onFocusEdge?: (id: string) => void;
  testIdPrefix?: string;
}) {
  return (
    <ul className="problem-items">
      {problems.map((p, i) => {
        const target = p.nodeId ?? (p.edgeId ? 'edge' : undefined);
        const clickable = (p.nodeId && onFocusNode) || (p.edgeId && onFocusEdge);
        return (
          <li
            key={p.key}
            className={`problem ${p.severity} ${clickable ? 'clickable' : ''}`}
            data-testid={`${testIdPrefix}-${i}`}
            data-code={p.finding.code}
            data-node={p.nodeId ?? ''}
            onClick={() => {
              if (p.nodeId && onFocusNode) onFocusNode(p.nodeId);
              else if (p.edgeId && onFocusEdge) onFocusEdge(p.edgeId);
            }}
          >
            <span className={`sev ${p.severity}`}>{p.severity === 'error' ? '✖' : '⚠'}</span>
            {target ? <b className="problem-target">{p.nodeId ?? `edge ${p.finding.edge ?? ''}`}</b> : null}
            <span className="problem-message">{p.finding.message}</span>
            <code className="problem-code">{p.finding.code}</code>
          </li>
        );
      })}
    </ul>
  );
}

function ProblemsListView({
  problems,
  onFocusNode,
  onFocusEdge,
  validating,
}: {
  problems: ProblemMap;
  onFocusNode: (id: string) => void;
  onFocusEdge: (id: string) => void;
  validating: boolean;
}) {
  const [open, setOpen] = useState(true);
  const { errors, warnings } = problems;
  return (
    <div className={`problems ${open ? 'open' : ''}`} data-testid="problems-list">
      <button type="button" className="problems-head" onClick={() => setOpen(!open)} data-testid="problems-summary">
        <span className={errors ? 'sev error' : 'sev ok'}>{errors ? '✖' : '✓'}</span> {errors} error{errors === 1 ? '' : 's'}, {warnings} warning
        {warnings === 1 ? '' : 's'}
        {validating ? <span className="muted"> · validating…</span> : null}
        <span className="spacer" />
        {open ? '▾' : '▸'}
      </button>
      {open && problems.list.length > 0 ? <ProblemItems problems={problems.list} onFocusNode={onFocusNode} onFocusEdge={onFocusEdge} /> : null}
    </div>
  );
}

export const ProblemsList = memo(ProblemsListView);
