import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Workflow } from '../src/model/workflow';

const here = dirname(fileURLToPath(import.meta.url));
export const EXAMPLES_DIR = join(here, '..', '..', 'examples');

/** Every examples/*.json workflow, by file name. */
export function examples(): [string, Workflow][] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [f, JSON.parse(readFileSync(join(EXAMPLES_DIR, f), 'utf8')) as Workflow]);
}

export const tiny: Workflow = {
  id: 'tiny',
  name: 'Tiny',
  nodes: [
    { id: 'start', type: 'trigger.manual', config: {}, position: { x: 0, y: 0 } },
    { id: 'check', type: 'condition.if', config: { rules: [{ field: '$.nodes.start.output.n', op: 'gt', value: 1 }] }, position: { x: 250, y: 0 } },
    { id: 'yes', type: 'transform.set', config: { fields: { a: 1 } }, position: { x: 500, y: -100 } },
  ],
  edges: [
    { from: 'start', to: 'check' },
    { from: 'check', fromPort: 'true', to: 'yes' },
  ],
};
