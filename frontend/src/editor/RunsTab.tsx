import { useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api } from '../api/client';
import { RUN_STATUSES, type RunStatus } from '../api/types';
import { ErrorView, formatTime, Loading, StatusBadge } from '../components/common';
import { formatDuration } from '../live/runState';

/** Run history of one workflow (or all), newest first, filtered by status. */
export function RunsTab({ workflowId }: { workflowId?: string }) {
  const [status, setStatus] = useState<RunStatus | ''>('');
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const q = useQuery({
    queryKey: ['runs', workflowId ?? '', status, cursor ?? ''],
    queryFn: () => api.listRuns({ workflowId, status, cursor, limit: 50 }),
    refetchInterval: (query) => (query.state.data?.items.some((r) => r.status === 'RUNNING') ? 3000 : false),
  });
  return (
    <div className="runs-tab" data-testid="runs-tab">
      <div className="toolbar">
        <label>
          Status{' '}
          <select
            data-testid="runs-filter-status"
            value={status}
            onChange={(e) => {
              setStatus(e.target.value as RunStatus | '');
              setCursors([undefined]);
            }}
          >
            <option value="">any</option>
            {RUN_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.toLowerCase().replace('_', ' ')}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => q.refetch()} data-testid="runs-refresh">
          Refresh
        </button>
      </div>
      <ErrorView error={q.error} />
      {q.isPending ? (
        <Loading />
      ) : (
        <table className="table" data-testid="runs-list">
          <thead>
            <tr>
              <th>Run</th>
              <th>Status</th>
              {workflowId ? null : <th>Workflow</th>}
              <th>Version</th>
              <th>Trigger</th>
              <th>Started</th>
              <th>Duration</th>
            </tr>
          </thead>
          <tbody>
            {q.data?.items.map((r) => (
              <tr key={r.id} data-testid={`run-row-${r.id}`}>
                <td>
                  <Link to={`/runs/${r.id}`}>
                    <code>{r.id.slice(0, 8)}</code>
                  </Link>
                  {r.retryOf ? <span className="tag">retry</span> : null}
                </td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                {workflowId ? null : <td>{r.workflowId}</td>}
                <td>v{r.workflowVersion}</td>
                <td>{r.trigger.replace('trigger.', '')}</td>
                <td className="small">
                  {formatTime(r.startedAtMs)}
                  <div className="muted">{r.startedBy}</div>
                </td>
                <td>{r.endedAtMs ? formatDuration(r.endedAtMs - r.startedAtMs) : '…'}</td>
              </tr>
            ))}
            {q.data?.items.length === 0 ? (
              <tr>
                <td colSpan={7} className="muted" data-testid="runs-empty">
                  No runs{status ? ` with status ${status.toLowerCase()}` : ''}.
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      )}
      <div className="buttons">
        {cursors.length > 1 ? (
          <button type="button" onClick={() => setCursors(cursors.slice(0, -1))}>
            Newer
          </button>
        ) : null}
        {q.data?.nextCursor ? (
          <button type="button" onClick={() => setCursors([...cursors, q.data!.nextCursor])}>
            Older
          </button>
        ) : null}
      </div>
    </div>
  );
}
