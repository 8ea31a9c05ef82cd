// The nine Rust Lambdas: runtime, architecture, code, settings, event sources.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { settingsFromContext } from '../lib/config';
import { pascal } from '../lib/concertmaster-stack';
import { artifactPath, bootstrapHead, checkArchitecture, elfArch, FUNCTION_NAMES, type FunctionName } from '../lib/rust-function';
import { build, defaultStack, logicalId, temporary } from './support/app';
import { makePlaceholders } from './support/placeholders';

/** The environment each function gets (names only; the lead's Rust reads exactly these). */
const EXPECTED_ENV: Record<FunctionName, string[]> = {
  api: [
    'CONCERTMASTER_DATASETS_TABLE',
    'CONCERTMASTER_NODE_RUNNER_FUNCTION',
    'CONCERTMASTER_PUBLIC_URL',
    'CONCERTMASTER_QUEUE_URL_PREFIX',
    'CONCERTMASTER_SCHEDULER_DLQ_ARN',
    'CONCERTMASTER_SCHEDULER_ROLE_ARN',
    'CONCERTMASTER_SCHEDULER_TARGET_ARN',
    'CONCERTMASTER_SCHEDULE_GROUP',
    'CONCERTMASTER_SIGNING_KEY_SECRET_ARN',
    'CONCERTMASTER_STATE_MACHINE_ARN_PREFIX',
    'CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN',
    'CONCERTMASTER_STATE_MACHINE_ROLE_ARN',
    'CONCERTMASTER_TABLE',
  ],
  'node-runner': ['CONCERTMASTER_APPROVAL_BASE_URL', 'CONCERTMASTER_TABLE'],
  'ws-connect': ['CONCERTMASTER_SIGNING_KEY_SECRET_ARN', 'CONCERTMASTER_TABLE'],
  'ws-disconnect': ['CONCERTMASTER_TABLE'],
  'ws-message': ['CONCERTMASTER_TABLE', 'CONCERTMASTER_WS_ENDPOINT'],
  'status-pusher': ['CONCERTMASTER_TABLE', 'CONCERTMASTER_WS_ENDPOINT'],
  'trigger-consumer': ['CONCERTMASTER_STATE_MACHINE_ARN_PREFIX', 'CONCERTMASTER_TABLE'],
  'run-events': ['CONCERTMASTER_STATE_MACHINE_ARN_PREFIX', 'CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN', 'CONCERTMASTER_TABLE'],
  scheduler: ['CONCERTMASTER_STATE_MACHINE_ARN_PREFIX', 'CONCERTMASTER_TABLE'],
};

const smPrefix = {
  'Fn::Join': [
    '',
    ['arn:', { Ref: 'AWS::Partition' }, ':states:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':stateMachine:'],
  ],
};

describe('functions', () => {
  const { stack, template } = defaultStack();
  const resources = template.toJSON().Resources;
  const fnOf = (name: FunctionName) => resources[logicalId(stack, stack.functions[name].fn)];
  const getAtt = (c: { node: { defaultChild?: unknown } }, attr = 'Arn') => ({ 'Fn::GetAtt': [logicalId(stack, c), attr] });

  test('nine Rust functions on provided.al2023, arm64, handler bootstrap', () => {
    const rust = Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (r) => r.Properties.Runtime === 'provided.al2023',
    );
    assert.equal(rust.length, FUNCTION_NAMES.length);
    for (const name of FUNCTION_NAMES) {
      const p = fnOf(name).Properties;
      assert.equal(p.Runtime, 'provided.al2023', name);
      assert.equal(p.Handler, 'bootstrap', name);
      assert.deepEqual(p.Architectures, ['arm64'], name);
      assert.deepEqual(p.LoggingConfig.LogFormat, 'JSON', name);
      assert.ok(p.Code.S3Key, `${name} code is an asset`);
    }
  });

  test('each function gets exactly its settings', () => {
    for (const name of FUNCTION_NAMES) {
      const vars = fnOf(name).Properties.Environment.Variables;
      assert.deepEqual(Object.keys(vars).sort(), [...EXPECTED_ENV[name]].sort(), name);
      assert.deepEqual(vars.CONCERTMASTER_TABLE, { Ref: logicalId(stack, stack.table) }, name);
    }
  });

  test('the api is told the compile options and the roles it hands to Step Functions and Scheduler', () => {
    const v = fnOf('api').Properties.Environment.Variables;
    assert.deepEqual(v.CONCERTMASTER_NODE_RUNNER_FUNCTION, getAtt(stack.functions['node-runner'].fn));
    assert.deepEqual(v.CONCERTMASTER_DATASETS_TABLE, { Ref: logicalId(stack, stack.datasetsTable) });
    assert.deepEqual(v.CONCERTMASTER_STATE_MACHINE_ROLE_ARN, getAtt(stack.stateMachineRole));
    assert.deepEqual(v.CONCERTMASTER_STATE_MACHINE_ARN_PREFIX, smPrefix);
    assert.deepEqual(v.CONCERTMASTER_SCHEDULER_ROLE_ARN, getAtt(stack.schedulerRole));
    assert.deepEqual(v.CONCERTMASTER_SCHEDULER_TARGET_ARN, getAtt(stack.functions.scheduler.fn));
    assert.deepEqual(v.CONCERTMASTER_SCHEDULER_DLQ_ARN, getAtt(stack.eventsDlq));
    assert.equal(v.CONCERTMASTER_SCHEDULE_GROUP, 'concertmaster');
    assert.deepEqual(v.CONCERTMASTER_PUBLIC_URL, getAtt(stack.httpApi, 'ApiEndpoint'));
    assert.deepEqual(v.CONCERTMASTER_QUEUE_URL_PREFIX, {
      'Fn::Join': [
        '',
        ['https://sqs.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/', { Ref: 'AWS::AccountId' }, '/concertmaster-'],
      ],
    });
    for (const n of ['trigger-consumer', 'run-events', 'scheduler'] as const) {
      assert.deepEqual(fnOf(n).Properties.Environment.Variables.CONCERTMASTER_STATE_MACHINE_ARN_PREFIX, smPrefix, n);
    }
  });

  test('the signing key is read from Secrets Manager when the functions start: only its ARN is configured', () => {
    const secret = Object.keys(template.findResources('AWS::SecretsManager::Secret'));
    assert.equal(secret.length, 1);
    const text = JSON.stringify(template.toJSON());
    assert.ok(!text.includes('{{resolve:secretsmanager:'), 'no dynamic reference puts the value in a configuration');
    for (const name of ['api', 'ws-connect'] as const) {
      const vars = fnOf(name).Properties.Environment.Variables;
      assert.equal(vars.CONCERTMASTER_SIGNING_KEY, undefined, name);
      assert.deepEqual(vars.CONCERTMASTER_SIGNING_KEY_SECRET_ARN, { Ref: secret[0] }, name);
    }
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: { PasswordLength: 44, ExcludePunctuation: true, IncludeSpace: false },
    });
  });

  test('the WebSocket functions post to this API and stage', () => {
    const endpoint = fnOf('status-pusher').Properties.Environment.Variables.CONCERTMASTER_WS_ENDPOINT;
    assert.match(JSON.stringify(endpoint), new RegExp(`"${logicalId(stack, stack.webSocketApi)}".*/live"`));
  });

  test('each function logs to its own log group, kept 30 days', () => {
    for (const name of FUNCTION_NAMES) {
      const lg = fnOf(name).Properties.LoggingConfig.LogGroup;
      assert.deepEqual(lg, { Ref: logicalId(stack, stack.functions[name].logGroup) }, name);
      assert.equal(resources[lg.Ref].Properties.RetentionInDays, 30, name);
    }
  });

  test('trigger-consumer reads the triggers queue, reporting batch item failures', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalId(stack, stack.functions['trigger-consumer'].fn) },
      EventSourceArn: getAtt(stack.triggersQueue),
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 10,
    });
  });

  test("status-pusher reads the table's stream (run and node items), reporting batch item failures", () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalId(stack, stack.functions['status-pusher'].fn) },
      EventSourceArn: getAtt(stack.table, 'StreamArn'),
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      StartingPosition: 'LATEST',
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 3,
      DestinationConfig: { OnFailure: { Destination: getAtt(stack.streamDlq) } },
      FilterCriteria: {
        Filters: [{ Pattern: JSON.stringify({ dynamodb: { Keys: { sk: { S: ['RUN', { prefix: 'N#' }] } } } }) }],
      },
    });
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
  });

  test('failed asynchronous invocations of run-events and scheduler go to the events DLQ', () => {
    for (const n of ['run-events', 'scheduler'] as const) {
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: logicalId(stack, stack.functions[n].fn) },
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: getAtt(stack.eventsDlq) } },
      });
    }
  });

  test('every function has an Errors alarm to the alarm topic', () => {
    for (const name of FUNCTION_NAMES) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'Errors',
        Namespace: 'AWS/Lambda',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(stack, stack.functions[name].fn) } }],
        Statistic: 'Sum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        AlarmActions: [{ Ref: logicalId(stack, stack.alarmTopic) }],
      });
    }
  });
});

describe('settings', () => {
  test('architecture x86_64 is one setting away', () => {
    const { stack, template } = build({ architecture: 'x86_64' });
    for (const name of FUNCTION_NAMES) {
      const fn = template.toJSON().Resources[stack.getLogicalId(stack.functions[name].fn.node.defaultChild as never)];
      assert.deepEqual(fn.Properties.Architectures, ['x86_64'], name);
    }
  });

  test('context is read and checked', () => {
    const app = new App({
      context: { architecture: 'x86_64', corsOrigins: 'http://localhost:5173, https://b.example', logRetentionDays: '90' },
    });
    const s = settingsFromContext(app.node);
    assert.equal(s.architecture, 'x86_64');
    assert.deepEqual(s.extraCorsOrigins, ['http://localhost:5173', 'https://b.example']);
    assert.equal(s.logRetentionDays, 90);
    assert.ok(s.lambdaDir.endsWith(path.join('target', 'lambda')));
    assert.throws(() => settingsFromContext(new App({ context: { architecture: 'arm' } }).node), /arm64 or x86_64/);
    assert.throws(() => settingsFromContext(new App({ context: { logRetentionDays: '2' } }).node), /logRetentionDays/);
    assert.throws(() => settingsFromContext(new App({ context: { corsOrigins: 'example.com' } }).node), /not an origin/);
  });

  test('missing artifacts fail synth naming every function and how to build them', () => {
    const empty = temporary('cm-infra-empty-');
    fs.mkdirSync(path.join(empty, 'api'));
    fs.writeFileSync(path.join(empty, 'api', 'bootstrap.zip'), 'zip');
    assert.throws(
      () => build({ lambdaDir: empty }),
      (e: Error) =>
        /no Lambda artifact for node-runner, ws-connect/.test(e.message) &&
        !/for api/.test(e.message) &&
        /scripts\/build-lambdas/.test(e.message),
    );
  });

  test("cargo-lambda's bootstrap.zip is preferred over a bootstrap directory", () => {
    const dir = temporary('cm-infra-art-');
    fs.mkdirSync(path.join(dir, 'api'));
    assert.equal(artifactPath(dir, 'api'), undefined);
    fs.writeFileSync(path.join(dir, 'api', 'bootstrap'), '');
    assert.equal(artifactPath(dir, 'api'), path.join(dir, 'api'));
    fs.writeFileSync(path.join(dir, 'api', 'bootstrap.zip'), '');
    assert.equal(artifactPath(dir, 'api'), path.join(dir, 'api', 'bootstrap.zip'));
  });

  test('artifacts built for another architecture are refused, in a directory or in the zip', () => {
    /** The first bytes of a 64-bit little-endian ELF executable for `machine`. */
    const elf = (machine: number) => {
      const h = Buffer.alloc(64);
      h.writeUInt32BE(0x7f454c46, 0);
      h[4] = 2; // 64-bit
      h[5] = 1; // little-endian
      h.writeUInt16LE(machine, 18);
      return h;
    };
    /** A zip with one stored entry `bootstrap` (what matters is its local header and data). */
    const storedZip = (data: Buffer) => {
      const header = Buffer.alloc(30);
      header.writeUInt32LE(0x04034b50, 0);
      header.writeUInt16LE(0, 8);
      header.writeUInt32LE(data.length, 18);
      header.writeUInt32LE(data.length, 22);
      header.writeUInt16LE('bootstrap'.length, 26);
      return Buffer.concat([header, Buffer.from('bootstrap'), data]);
    };
    assert.equal(elfArch(elf(0xb7)), 'arm64');
    assert.equal(elfArch(elf(0x3e)), 'x86_64');
    assert.equal(elfArch(Buffer.from('#!/bin/sh\nexit 1\n'.padEnd(64))), undefined);

    const ph = makePlaceholders(temporary('cm-infra-arch-'));
    for (const name of FUNCTION_NAMES) fs.writeFileSync(path.join(ph.lambdaDir, name, 'bootstrap'), elf(0xb7));
    checkArchitecture(ph.lambdaDir, 'arm64');
    assert.throws(() => checkArchitecture(ph.lambdaDir, 'x86_64'), /not built for x86_64: api \(arm64\)/);
    fs.writeFileSync(path.join(ph.lambdaDir, 'node-runner', 'bootstrap.zip'), storedZip(elf(0x3e)));
    assert.equal(elfArch(bootstrapHead(path.join(ph.lambdaDir, 'node-runner', 'bootstrap.zip'))!), 'x86_64');
    assert.throws(
      () => build({ lambdaDir: ph.lambdaDir, builderDir: ph.builderDir }),
      (e: Error) => /not built for arm64: node-runner \(x86_64\)\./.test(e.message) && /-c architecture=/.test(e.message),
    );
  });

  test('construct ids follow the crate names', () => {
    assert.equal(pascal('node-runner'), 'NodeRunner');
    const { stack } = defaultStack();
    for (const name of FUNCTION_NAMES) assert.equal(stack.functions[name].node.id, pascal(name));
  });
});
