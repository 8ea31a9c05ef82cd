import { useQuery } from '@tanstack/react-query';
import { api } from '../api/client';
import { ErrorView, JsonBlock, Loading } from '../components/common';

/** The compiled Step Functions definition of the saved latest version, read-only. */
export function AslTab({ workflowId, version, dirty, onFocusNode }: { workflowId: string; version: number; dirty: boolean; onFocusNode: (id: string) => void }) {
  const q = useQuery({
    queryKey: ['compile', workflowId, version],
    queryFn: () => api.compile(workflowId, version),
    staleTime: 60_000,
  });
  return (
    <div className="asl-tab" data-testid="asl-tab">
      <p className="muted">
        Version {version} as compiled by the server{dirty ? ' — unsaved changes are not included; save to see them' : ''}.
      </p>
      {q.isPending ? <Loading what="Compiling" /> : null}
      <ErrorView error={q.error} testId="asl-error" onFinding={onFocusNode} />
      {q.data ? (
        <>
          <dl className="facts" data-testid="asl-facts">
            <dt>Execution type</dt>
            <dd data-testid="asl-execution-type">{q.data.executionType}</dd>
            <dt>Why</dt>
            <dd>{q.data.executionTypeReason}</dd>
            {Object.entries(q.data.stats ?? {}).map(([k, v]) => (
              <span key={k} className="fact">
                <dt>{k}</dt>
                <dd>{String(v)}</dd>
              </span>
            ))}
          </dl>
          {q.data.warnings?.length ? (
            <ul className="warnings">
              {q.data.warnings.map((w, i) => (
                <li key={i}>
                  ⚠ {w.nodeId ? <b>{w.nodeId} </b> : null}
                  {w.message}
                </li>
              ))}
            </ul>
          ) : null}
          <JsonBlock value={q.data.definition} testId="asl-view" />
        </>
      ) : null}
    </div>
  );
}
