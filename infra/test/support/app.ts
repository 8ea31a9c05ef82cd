// Builds the stack for template tests: the app gets cdk.json's context (the same feature
// flags as `cdk synth`) and asset stand-ins from placeholders.ts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { DEFAULTS, INFRA_DIR, type Settings } from '../../lib/config';
import { ConcertMasterStack } from '../../lib/concertmaster-stack';
import { makePlaceholders } from './placeholders';

export interface Built {
  readonly app: App;
  readonly stack: ConcertMasterStack;
  readonly template: Template;
}

/** A temporary directory removed when the test process exits (synth copies assets into it). */
export function temporary(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (temporaries.length === 0) {
    process.once('exit', () => {
      for (const d of temporaries) fs.rmSync(d, { recursive: true, force: true });
    });
  }
  temporaries.push(dir);
  return dir;
}
const temporaries: string[] = [];

/** cdk.json's context (feature flags), as `cdk synth` passes it to the app. */
export function cdkJsonContext(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(INFRA_DIR, 'cdk.json'), 'utf8')).context;
}

/** A fresh app and stack; `overrides` change settings (e.g. the architecture). */
export function build(overrides: Partial<Settings> = {}, stackName = 'ConcertMaster'): Built {
  const ph = makePlaceholders(temporary('cm-infra-assets-'));
  const app = new App({ context: cdkJsonContext(), outdir: temporary('cm-infra-cdk-out-') });
  const stack = new ConcertMasterStack(app, stackName, {
    settings: {
      ...DEFAULTS,
      extraCorsOrigins: [],
      lambdaDir: ph.lambdaDir,
      builderDir: ph.builderDir,
      ...overrides,
    },
  });
  return { app, stack, template: Template.fromStack(stack) };
}

let cached: Built | undefined;
/** The default stack, built once per test file. */
export function defaultStack(): Built {
  cached ??= build();
  return cached;
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalId(stack: ConcertMasterStack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as never);
}
