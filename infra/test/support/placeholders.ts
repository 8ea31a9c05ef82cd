// Asset stand-ins for template tests: the stack needs a code directory per function and the
// builder's files, not real binaries (the template, not the artifact, is what is tested).
// Real deploys use the cargo-lambda zips (scripts/build-lambdas) and frontend/dist.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FUNCTION_NAMES } from '../../lib/rust-function';

export interface Placeholders {
  readonly root: string;
  readonly lambdaDir: string;
  readonly builderDir: string;
}

/** Writes `<root>/lambda/<name>/bootstrap` for every function and `<root>/builder/index.html`. */
export function makePlaceholders(root: string = fs.mkdtempSync(path.join(os.tmpdir(), 'cm-infra-'))): Placeholders {
  const lambdaDir = path.join(root, 'lambda');
  const builderDir = path.join(root, 'builder');
  for (const name of FUNCTION_NAMES) {
    const dir = path.join(lambdaDir, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'bootstrap'), `#!/bin/sh\n# placeholder for ${name}: not a deployable function\nexit 1\n`, {
      mode: 0o755,
    });
  }
  fs.mkdirSync(builderDir, { recursive: true });
  fs.writeFileSync(path.join(builderDir, 'index.html'), '<!doctype html><title>placeholder builder</title>\n');
  return { root, lambdaDir, builderDir };
}
