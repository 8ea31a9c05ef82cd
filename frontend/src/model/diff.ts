// Line diff (Myers' O((N+M)D) algorithm) for comparing workflow versions as pretty JSON.

export type DiffOp = { kind: 'same' | 'add' | 'del'; text: string };

export function lineDiff(aText: string, bText: string): DiffOp[] {
  const a = aText.split('\n');
  const b = bText.split('\n');
  // Common prefix and suffix are cheap and usually most of a document.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA -= 1;
    endB -= 1;
  }
  const mid = myers(a.slice(start, endA), b.slice(start, endB));
  return [
    ...a.slice(0, start).map((text) => ({ kind: 'same' as const, text })),
    ...mid,
    ...a.slice(endA).map((text) => ({ kind: 'same' as const, text })),
  ];
}

/** Past this many changed lines the diff is shown as a replacement (keeps memory bounded). */
const MAX_EDITS = 4000;

function myers(a: string[], b: string[]): DiffOp[] {
  const n = a.length;
  const m = b.length;
  if (n === 0) return b.map((text) => ({ kind: 'add', text }));
  if (m === 0) return a.map((text) => ({ kind: 'del', text }));
  const max = Math.min(n + m, MAX_EDITS);
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  // trace[d] holds v for k in [-d-1, d+1] before round d (index k + d + 1).
  const trace: Int32Array[] = [];
  let found = false;
  outer: for (let d = 0; d <= max; d += 1) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x: number;
      if (k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!)) x = v[offset + k + 1]!;
      else x = v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x += 1;
        y += 1;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = true;
        break outer;
      }
    }
  }
  if (!found) {
    return [...a.map((text) => ({ kind: 'del' as const, text })), ...b.map((text) => ({ kind: 'add' as const, text }))];
  }
  const ops: DiffOp[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d -= 1) {
    const vd = trace[d]!;
    const at = (k: number): number => vd[k + d + 1]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push({ kind: 'same', text: a[x - 1]! });
      x -= 1;
      y -= 1;
    }
    if (d > 0) {
      if (x === prevX) ops.push({ kind: 'add', text: b[y - 1]! });
      else ops.push({ kind: 'del', text: a[x - 1]! });
    }
    x = prevX;
    y = prevY;
  }
  return ops.reverse();
}

/** Pretty JSON with a trailing newline, as shown and diffed. */
export function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
