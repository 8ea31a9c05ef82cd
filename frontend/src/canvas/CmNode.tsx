// The one custom node: memoized, no hooks beyond what React Flow's Handle needs and the canvas's
// level of detail. Everything it shows comes precomputed in `data` (see graph/decorate.ts).

import { createContext, memo, useContext } from 'react';
import { Handle, Position, type NodeProps } from '@xyflow/react';
import type { ViewNode } from '../graph/decorate';
import { formatDuration } from '../live/runState';

/** A one-letter category mark (fonts on build machines lack most symbol glyphs). */
const MARKS: Record<string, string> = { trigger: 'T', transform: 'X', condition: 'C', action: 'A', flow: 'F' };

/**
 * Zoomed far out (text unreadable anyway): nodes draw no text, only blocks of the same size, so
 * a fitted view of hundreds of nodes lays out and paints a fraction of the text. The sizes do
 * not change (fixed line heights in styles.css), so handles and edges stay put and crossing the
 * threshold re-renders the nodes once without re-measuring them. One context for the canvas,
 * not one store subscription per node.
 */
export const FarContext = createContext(false);

function CmNodeView({ data, selected }: NodeProps<ViewNode>) {
  const far = useContext(FarContext);
  const { wf, ports } = data;
  const single = ports.length === 1 && ports[0]!.name === 'out';
  const cls = [
    'cm-node',
    `cat-${data.category}`,
    selected ? 'selected' : '',
    data.problem ? `has-${data.problem}` : '',
    data.status ? `run-${data.status}` : '',
    far ? 'far' : '',
  ].join(' ');
  return (
    <div className={cls} data-testid={`node-${wf.id}`} title={far ? undefined : data.typeTitle}>
      {data.trigger ? null : <Handle type="target" position={Position.Left} id="in" className="port-in" />}
      {far ? (
        <div className="cm-node-head">
          <span className="cm-node-icon" />
          <span className="cm-node-bar" />
          {data.problemCount > 0 ? <span className={`cm-node-problems ${data.problem}`} data-testid={`node-problems-${wf.id}`} /> : null}
        </div>
      ) : (
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
      )}
      {far ? (
        <div className="cm-node-sub" />
      ) : (
        <div className="cm-node-sub">
          <span className="cm-node-id">{wf.id}</span> · {wf.type}
        </div>
      )}
      {data.status ? (
        <div className={`cm-node-status status-${data.status}`} data-testid={`node-status-${wf.id}`} data-status={data.status}>
          {far ? null : (
            <>
              {data.status}
              {data.durationMs !== undefined ? ` · ${formatDuration(data.durationMs)}` : ''}
              {data.visits && data.visits > 1 ? ` · ×${data.visits}` : ''}
            </>
          )}
        </div>
      ) : null}
      {single ? (
        <Handle type="source" position={Position.Right} id="out" className="port-out" data-testid={`port-${wf.id}-out`} />
      ) : (
        <div className="cm-node-ports">
          {ports.map((p) => (
            <div key={p.name} className={`cm-port ${p.name === 'error' ? 'port-error' : ''}`}>
              {far ? null : <span className="cm-port-label">{p.label || p.name}</span>}
              <Handle type="source" position={Position.Right} id={p.name} className="port-out" data-testid={`port-${wf.id}-${p.name}`} />
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

/**
 * Renders again only when what it draws changed: React Flow also passes the node's position and
 * measured size, which change on every drag step and on the first measurement, and which it
 * does not draw. (The level of detail comes by context, which memo does not block.)
 */
export const CmNode = memo(CmNodeView, (a, b) => a.data === b.data && a.selected === b.selected);

/** Stable object outside components: React Flow re-creates node renderers when it changes. */
export const nodeTypes = { cm: CmNode };
