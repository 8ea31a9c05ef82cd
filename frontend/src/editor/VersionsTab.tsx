import { useMemo, useState } from 'react';
import { useMutation, useQuery } from '@tanstack/react-query';
import { api } from '../api/client';
import type { WorkflowDoc, WorkflowSummary } from '../api/types';
import { ErrorView, formatTime, Loading } from '../components/common';
import { lineDiff, pretty } from '../model/diff';
import type { Workflow } from '../model/workflow';

function Diff({ from, to }: { from: Workflow; to: Workflow }) {
  const ops = useMemo(() => lineDiff(pretty(from), pretty(to)), [from, to]);
  const changed = ops.filter((o) => o.kind !== 'same').length;
  // Unchanged runs longer than 6 lines are folded to their first and last 3.
  const rows: ({ kind: 'same' | 'add' | 'del'; text: string } | { kind: 'fold'; count: number })[] = [];
  let i = 0;
  while (i < ops.length) {
    if (ops[i]!.kind !== 'same') {
      rows.push(ops[i]!);
      i += 1;
      continue;
    }
    let j = i;
    while (j < ops.length && ops[j]!.kind === 'same') j += 1;
    const run = ops.slice(i, j);
    if (run.length > 6) rows.push(...run.slice(0, 3), { kind: 'fold', count: run.length - 6 }, ...run.slice(-3));
    else rows.push(...run);
    i = j;
  }
  return (
    <div className="diff" data-testid="version-diff">
      <div className="muted small">{changed === 0 ? 'No differences.' : `${changed} changed line(s).`}</div>
      <pre>
        {rows.map((r, k) =>
          r.kind === 'fold' ? (
            <div key={k} className="diff-fold">
              ⋯ {r.count} unchanged line(s)
            </div>
          ) : (
            <div key={k} className={`diff-${r.kind}`}>
              {r.kind === 'add' ? '+ ' : r.kind === 'del' ? '- ' : '  '}
              {r.text}
            </div>
          ),
        )}
      </pre>
    </div>
  );
}

/** Versions newest first; a version compared with the one before it or the latest; restore. */
export function VersionsTab({
  workflow,
  canEdit,
  dirty,
  onRestored,
}: {
  workflow: WorkflowSummary;
  canEdit: boolean;
  dirty: boolean;
  onRestored: (doc: WorkflowDoc) => void;
}) {
  const q = useQuery({
    queryKey: ['versions', workflow.id, workflow.latestVersion],
    queryFn: () => api.listVersions(workflow.id),
  });
  const [selected, setSelected] = useState<number | null>(null);
  const [against, setAgainst] = useState<'previous' | 'latest'>('previous');
  const versions = q.data?.items ?? [];
  const sel = versions.find((v) => v.version === selected) ?? versions[0];
  const base =
    sel && against === 'latest'
      ? versions[0]
      : sel
        ? versions.find((v) => v.version < sel.version)
        : undefined;

  const restore = useMutation({
    mutationFn: async (v: number) => {
      const old = versions.find((x) => x.version === v);
      if (!old) throw new Error(`version ${v} is not loaded`);
      return api.updateWorkflow(workflow.id, old.definition, workflow.latestVersion);
    },
    onSuccess: onRestored,
  });

  if (q.isPending) return <Loading />;
  return (
    <div className="versions-tab" data-testid="versions-tab">
      <ErrorView error={q.error ?? restore.error} />
      <div className="versions-layout">
        <ul className="versions-list" data-testid="versions-list">
          {versions.map((v) => (
            <li
              key={v.version}
              className={v.version === sel?.version ? 'selected' : ''}
              data-testid={`version-row-${v.version}`}
              onClick={() => setSelected(v.version)}
            >
              <div>
                <b>v{v.version}</b>
                {v.version === workflow.latestVersion ? <span className="tag">latest</span> : null}
                {v.version === workflow.publishedVersion ? <span className="tag published">published</span> : null}
              </div>
              <div className="muted small">
                {formatTime(v.createdAtMs)} · {v.createdBy}
              </div>
              {canEdit && v.version !== workflow.latestVersion ? (
                <button
                  type="button"
                  data-testid={`version-restore-${v.version}`}
                  disabled={restore.isPending}
                  onClick={(e) => {
                    e.stopPropagation();
                    if (!dirty || window.confirm('Restoring replaces your unsaved changes. Continue?')) restore.mutate(v.version);
                  }}
                >
                  Restore as v{workflow.latestVersion + 1}
                </button>
              ) : null}
            </li>
          ))}
        </ul>
        <div className="versions-diff">
          {sel ? (
            <>
              <div className="toolbar">
                <span>
                  v{sel.version} compared with{' '}
                  <select data-testid="version-compare" value={against} onChange={(e) => setAgainst(e.target.value as 'previous' | 'latest')}>
                    <option value="previous">the version before</option>
                    <option value="latest">the latest version</option>
                  </select>
                </span>
              </div>
              {base && base.version !== sel.version ? (
                <Diff from={against === 'latest' ? sel.definition : base.definition} to={against === 'latest' ? base.definition : sel.definition} />
              ) : (
                <p className="muted">{against === 'latest' ? 'This is the latest version.' : 'The first version.'}</p>
              )}
            </>
          ) : null}
        </div>
      </div>
    </div>
  );
}
