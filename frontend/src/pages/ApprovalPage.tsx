import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { api } from '../api/client';
import { useAuth } from '../auth/AuthContext';
import { ErrorView, formatTime, JsonBlock, Loading, StatusBadge } from '../components/common';

export default function ApprovalPage() {
  const { id = '' } = useParams();
  const { canEdit, session } = useAuth();
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ['approval', id], queryFn: () => api.getApproval(id) });
  const [comment, setComment] = useState('');
  const decide = useMutation({
    mutationFn: (approve: boolean) => api.decide(id, approve, comment),
    onSuccess: (a) => {
      qc.setQueryData(['approval', id], a);
      void qc.invalidateQueries({ queryKey: ['approvals'] });
    },
  });
  if (q.isPending) return <Loading />;
  if (q.error) {
    return (
      <div className="page narrow">
        <ErrorView error={q.error} testId="approval-load-error" />
      </div>
    );
  }
  const a = q.data;
  const pending = a.status === 'pending';
  const mayDecide = canEdit && (a.approvers.length === 0 || a.approvers.includes(session?.sub ?? '') || session?.role === 'admin');
  return (
    <div className="page narrow" data-testid="approval-page">
      <h2 data-testid="approval-title">{a.title || 'Approval'}</h2>
      <p>
        <StatusBadge status={a.status} testId="approval-status" /> requested {formatTime(a.createdAtMs)}
        {a.expiresAtMs ? <> · expires {formatTime(a.expiresAtMs)}</> : null}
      </p>
      {a.message ? (
        <p className="approval-message" data-testid="approval-message">
          {a.message}
        </p>
      ) : null}
      <dl className="facts">
        <dt>Workflow</dt>
        <dd>
          <Link to={`/workflows/${encodeURIComponent(a.workflowId)}`}>{a.workflowId}</Link> · node <code>{a.nodeId}</code>
        </dd>
        <dt>Run</dt>
        <dd>
          <Link to={`/runs/${a.runId}`} data-testid="approval-run-link">
            {a.runId}
          </Link>
        </dd>
        <dt>Approvers</dt>
        <dd>{a.approvers.length ? a.approvers.join(', ') : 'any editor'}</dd>
      </dl>
      <h4>Data</h4>
      <JsonBlock value={a.data} testId="approval-data" maxHeight={320} />
      {a.decision ? (
        <>
          <h4>Decision</h4>
          <JsonBlock value={a.decision} testId="approval-decision" />
        </>
      ) : null}
      {pending ? (
        mayDecide ? (
          <div className="decide">
            <label>
              Comment
              <textarea data-testid="approval-comment" rows={3} value={comment} onChange={(e) => setComment(e.target.value)} />
            </label>
            <div className="buttons">
              <button type="button" className="primary" data-testid="approval-approve" disabled={decide.isPending} onClick={() => decide.mutate(true)}>
                Approve
              </button>
              <button type="button" className="danger" data-testid="approval-reject" disabled={decide.isPending} onClick={() => decide.mutate(false)}>
                Reject
              </button>
            </div>
          </div>
        ) : (
          <p className="muted" data-testid="approval-not-allowed">
            {canEdit ? `Only ${a.approvers.join(', ')} (or an admin) may decide.` : 'Viewers cannot decide approvals.'}
          </p>
        )
      ) : null}
      <ErrorView error={decide.error} testId="approval-error" />
    </div>
  );
}
