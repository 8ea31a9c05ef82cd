import { memo, useMemo, useState } from 'react';
import { CATEGORIES, type NodeTypeDescriptor } from '../model/workflow';
import { DND_TYPE } from './FlowCanvas';

/**
 * Case-insensitive order of the (English) titles. Not `localeCompare`: its first call loads
 * ICU's collation data, 10–15 ms on the editor's first render.
 */
function byTitle(a: NodeTypeDescriptor, b: NodeTypeDescriptor): number {
  const x = a.title.toLowerCase();
  const y = b.title.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Node types grouped by category, filtered by a search over type, title and description. */
export function groupPalette(types: readonly NodeTypeDescriptor[], search: string): [string, NodeTypeDescriptor[]][] {
  const q = search.trim().toLowerCase();
  const match = (t: NodeTypeDescriptor) =>
    !q || t.type.toLowerCase().includes(q) || t.title.toLowerCase().includes(q) || t.description.toLowerCase().includes(q);
  const groups = new Map<string, NodeTypeDescriptor[]>();
  for (const c of CATEGORIES) groups.set(c, []);
  for (const t of types) {
    if (!match(t)) continue;
    const g = groups.get(t.category) ?? [];
    g.push(t);
    groups.set(t.category, g);
  }
  return [...groups.entries()].filter(([, list]) => list.length > 0).map(([c, list]) => [c, list.sort(byTitle)]);
}

function PaletteView({ types, onAdd }: { types: readonly NodeTypeDescriptor[]; onAdd: (type: string) => void }) {
  const [search, setSearch] = useState('');
  const groups = useMemo(() => groupPalette(types, search), [types, search]);
  return (
    <aside className="palette" data-testid="palette">
      <input
        type="search"
        placeholder="Search nodes"
        value={search}
        data-testid="palette-search"
        onChange={(e) => setSearch(e.target.value)}
      />
      <p className="hint">Drag onto the canvas, or click to add.</p>
      {groups.map(([category, list]) => (
        <div key={category} className="palette-group" data-testid={`palette-group-${category}`}>
          <h4>{category}</h4>
          {list.map((t) => (
            <div
              key={t.type}
              className={`palette-item cat-${t.category}`}
              data-testid={`palette-${t.type}`}
              draggable
              role="button"
              tabIndex={0}
              title={t.description}
              onDragStart={(e) => {
                e.dataTransfer.setData(DND_TYPE, t.type);
                e.dataTransfer.setData('text/plain', t.type);
                e.dataTransfer.effectAllowed = 'move';
              }}
              onClick={() => onAdd(t.type)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' || e.key === ' ') {
                  e.preventDefault();
                  onAdd(t.type);
                }
              }}
            >
              <span className="palette-title">{t.title}</span>
              <span className="palette-type">{t.type}</span>
            </div>
          ))}
        </div>
      ))}
      {groups.length === 0 ? <p className="muted">No node type matches.</p> : null}
    </aside>
  );
}

export const Palette = memo(PaletteView);
