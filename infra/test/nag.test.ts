// cdk-nag (AwsSolutions) over the stack: nothing unacknowledged, no acknowledgment without a
// finding behind it, every reason written down, and README.md's table equal to the code's.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { INFRA_DIR } from '../lib/config';
import { defaultStack } from './support/app';
import { acknowledgments, everyFinding, nagTable, unacknowledged } from './support/nag';

describe('cdk-nag AwsSolutions', () => {
  const { app } = defaultStack();

  test('has no unacknowledged finding (errors and warnings)', () => {
    const left = unacknowledged(app);
    assert.deepEqual(
      left.map((f) => `${f.severity} ${f.rule} at ${f.path}`),
      [],
      'acknowledge a finding only with a specific reason (lib/nag.ts), or fix the resource',
    );
  });

  test('finds what a stack without acknowledgments would be refused for (the check runs)', () => {
    const all = everyFinding(app);
    assert.ok(all.length > 0, 'cdk-nag found nothing: is the pack running?');
    for (const rule of ['AwsSolutions-SMG4', 'AwsSolutions-APIG4', 'AwsSolutions-IAM5[Resource::*]']) {
      assert.ok(all.some((f) => f.rule === rule), rule);
    }
  });

  test('every acknowledgment hides a real finding on its construct (none is stale)', () => {
    const all = everyFinding(app);
    const stale = acknowledgments(app).filter(
      (a) => !all.some((f) => f.rule === a.rule && (f.path === a.path || f.path.startsWith(`${a.path}/`))),
    );
    assert.deepEqual(
      stale.map((a) => `${a.rule} at ${a.path}`),
      [],
    );
  });

  test('every acknowledgment is specific: a finding id, and a reason of a sentence or more', () => {
    const acks = acknowledgments(app);
    assert.ok(acks.length > 0);
    for (const a of acks) {
      assert.match(a.rule, /^AwsSolutions-[A-Z]+[0-9]+(\[.+\])?$/, a.rule);
      assert.ok(a.reason.length >= 60, `reason for ${a.rule} at ${a.path} is too short: ${a.reason}`);
    }
    // IAM5 is acknowledged finding by finding, never as a whole rule.
    assert.ok(!acks.some((a) => a.rule === 'AwsSolutions-IAM5'));
  });

  test("README.md's suppression table is the one the stack has (npm run nag-table)", () => {
    const readme = fs.readFileSync(path.join(INFRA_DIR, 'README.md'), 'utf8');
    const m = readme.match(/<!-- nag-table:start -->\n([\s\S]*?)\n<!-- nag-table:end -->/);
    assert.ok(m, 'README.md has no nag-table markers');
    assert.equal(m[1], nagTable(app), 'README.md is out of date: paste the output of `npm run nag-table`');
  });
});
