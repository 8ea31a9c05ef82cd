import { useEffect, useState } from 'react';
import { useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate } from 'react-router';
import { api } from '../api/client';
import type { WorkflowSummary } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { ErrorView, formatTime, Loading } from '../components/common';
import type { Workflow } from '../model/workflow';

const WORKFLOW_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function newWorkflow(id: string, name: string): Workflow {
  return {
    id,
    name,
    nodes: [{ id: 'start', type: 'trigger.manual', config: {}, position: { x: 0, y: 0 } }],
    edges: [],
  };
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

interface CreateState {
  /** Copy this workflow (duplicate), or start empty. */
  source: WorkflowSummary | null;
  id: string;
  name: string;
}

export default function WorkflowListPage() {
  const { canEdit, canDelete } = useAuth();
  const [search, setSearch] = useState('');
  const q = useDebounced(search.trim(), 250);
  const [create, setCreate] = useState<CreateState | null>(null);
  const navigate = useNavigate();
  const qc = useQueryClient();

  const list = useInfiniteQuery({
    queryKey: ['workflows', q],
    queryFn: ({ pageParam }) => api.listWorkflows({ search: q || undefined, cursor: pageParam, limit: 100 }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.nextCursor,
  });

  const createMut = useMutation({
    mutationFn: async (c: CreateState) => {
      if (!c.source) return api.createWorkflow(newWorkflow(c.id, c.name.trim() || c.id));
      const doc = await api.getWorkflow(c.source.id);
      const def: Workflow = { ...doc.definition, id: c.id, name: c.name.trim() || c.id };
      if (def.version !== undefined) def.version = 1;
      return api.createWorkflow(def);
    },
    onSuccess: (doc) => {
      qc.invalidateQueries({ queryKey: ['workflows'] });
      navigate(`/workflows/${encodeURIComponent(doc.workflow.id)}`);
    },
  });

  const deleteMut = useMutation({
    mutationFn: (id: string) => api.deleteWorkflow(id),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['workflows'] }),
  });

  const items = list.data?.pages.flatMap((p) => p.items) ?? [];
  const idValid = create ? WORKFLOW_ID.test(create.id) : false;

  return (
    <div className="page">
      <div className="page-head">
        <h2>Workflows</h2>
        <input
          type="search"
          className="search"
          placeholder="Search by id, name or description"
          data-testid="workflow-search"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
        {canEdit ? (
          <button
            type="button"
            className="primary"
            data-testid="workflow-new"
            onClick={() => setCreate({ source: null, id: '', name: '' })}
          >
            New workflow
          </button>
        ) : null}
      </div>

      {create ? (
        <form
          className="card create-form"
          data-testid="workflow-create-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (idValid) createMut.mutate(create);
          }}
        >
          <h3>{create.source ? `Duplicate ${create.source.id}` : 'New workflow'}</h3>
          <label>
            Id
            <input
              data-testid="new-workflow-id"
              value={create.id}
              placeholder="letters, digits, - and _"
              autoFocus
              onChange={(e) => setCreate({ ...create, id: e.target.value })}
            />
          </label>
          {create.id && !idValid ? <div className="field-error">1–64 letters, digits, - or _</div> : null}
          <label>
            Name
            <input data-testid="new-workflow-name" value={create.name} onChange={(e) => setCreate({ ...create, name: e.target.value })} />
          </label>
          <ErrorView error={createMut.error} testId="create-error" />
          <div className="buttons">
            <button type="submit" className="primary" data-testid="workflow-create-submit" disabled={!idValid || createMut.isPending}>
              {create.source ? 'Duplicate' : 'Create'}
            </button>
            <button type="button" onClick={() => setCreate(null)}>
              Cancel
            </button>
          </div>
        </form>
      ) : null}

      <ErrorView error={list.error ?? deleteMut.error} />
      {list.isPending ? (
        <Loading />
      ) : (
        <table className="table" data-testid="workflow-list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Id</th>
              <th>Version</th>
              <th>Published</th>
              <th>Updated</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((w) => (
              <tr key={w.id} data-testid={`workflow-row-${w.id}`}>
                <td>
                  <Link to={`/workflows/${encodeURIComponent(w.id)}`} data-testid={`workflow-open-${w.id}`}>
                    {w.name || w.id}
                  </Link>
                  {w.isTemplate ? <span className="tag">template</span> : null}
                  {w.description ? <div className="muted small">{w.description}</div> : null}
                </td>
                <td>
                  <code>{w.id}</code>
                </td>
                <td>v{w.latestVersion}</td>
                <td>{w.publishedVersion ? `v${w.publishedVersion}` : '—'}</td>
                <td className="small">
                  {formatTime(w.updatedAtMs)}
                  <div className="muted">{w.updatedBy}</div>
                </td>
                <td className="actions">
                  {canEdit ? (
                    <button
                      type="button"
                      data-testid={`workflow-duplicate-${w.id}`}
                      onClick={() => setCreate({ source: w, id: `${w.id}-copy`.slice(0, 64), name: `${w.name} (copy)` })}
                    >
                      Duplicate
                    </button>
                  ) : null}
                  {canDelete ? (
                    <button
                      type="button"
                      className="danger"
                      data-testid={`workflow-delete-${w.id}`}
                      onClick={() => {
                        if (window.confirm(`Delete workflow ${w.id} and all its versions?`)) deleteMut.mutate(w.id);
                      }}
                    >
                      Delete
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
            {items.length === 0 ? (
              <tr>
                <td colSpan={6} className="muted" data-testid="workflow-list-empty">
                  {q ? `No workflow matches “${q}”.` : 'No workflows yet.'}
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      )}
      {list.hasNextPage ? (
        <button type="button" onClick={() => list.fetchNextPage()} disabled={list.isFetchingNextPage}>
          Load more
        </button>
      ) : null}
    </div>
  );
}
