// The one custom node: memoized, no hooks beyond what React Flow's Handle needs. Everything it
// shows comes precomputed in `data` (see graph/decorate.ts).

import { memo } from 'react';
import { Handle, Position, type NodeProps } from '@xyflow/react';
import type { ViewNode } from '../graph/decorate';
import { formatDuration } from '../live/runState';

/** A one-letter category mark (fonts on build machines lack most symbol glyphs). */
const MARKS: Record<string, string> = { trigger: 'T', transform: 'X', condition: 'C', action: 'A', flow: 'F' };

function CmNodeView({ data, selected }: NodeProps<ViewNode>) {
  const { wf, ports } = data;
  const single = ports.length === 1 && ports[0]!.name === 'out';
  const cls = [
    'cm-node',
    `cat-${data.category}`,
    selected ? 'selected' : '',
    data.problem ? `has-${data.problem}` : '',
    data.status ? `run-${data.status}` : '',
  ].join(' ');
  return (
    <div className={cls} data-testid={`node-${wf.id}`} title={data.typeTitle}>
      {data.trigger ? null : <Handle type="target" position={Position.Left} id="in" className="port-in" />}
      <div className="cm-node-head">
        <span className="cm-node-icon" aria-hidden>
          {MARKS[data.category] ?? '?'}
        </span>
        <span className="cm-node-label">{data.label}</span>
        {data.problemCount > 0 ? (
          <span className={`cm-node-problems ${data.problem}`} data-testid={`node-problems-${wf.id}`} title={`${data.problemCount} problem(s)`}>
            {data.problemCount}
          </span>
        ) : null}
      </div>
      <div className="cm-node-sub">
        <span className="cm-node-id">{wf.id}</span> · {wf.type}
      </div>
      {data.status ? (
        <div className={`cm-node-status status-${data.status}`} data-testid={`node-status-${wf.id}`} data-status={data.status}>
          {data.status}
          {data.durationMs !== undefined ? ` · ${formatDuration(data.durationMs)}` : ''}
          {data.visits && data.visits > 1 ? ` · ×${data.visits}` : ''}
        </div>
      ) : null}
      {single ? (
        <Handle type="source" position={Position.Right} id="out" className="port-out" data-testid={`port-${wf.id}-out`} />
      ) : (
        <div className="cm-node-ports">
          {ports.map((p) => (
            <div key={p.name} className={`cm-port ${p.name === 'error' ? 'port-error' : ''}`}>
              <span className="cm-port-label">
                {p.label || p.name}
                {p.required ? '' : ''}
              </span>
              <Handle type="source" position={Position.Right} id={p.name} className="port-out" data-testid={`port-${wf.id}-${p.name}`} />
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

export const CmNode = memo(CmNodeView);

/** Stable object outside components: React Flow re-creates node renderers when it changes. */
export const nodeTypes = { cm: CmNode };
