// Least privilege: scoped statements per role, "*" only where AWS offers nothing narrower.
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import { FUNCTION_NAMES } from '../lib/rust-function';
import { defaultStack, logicalId } from './support/app';

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, unknown>;
}

const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const text = (v: unknown) => JSON.stringify(v);

describe('IAM', () => {
  const { stack, template } = defaultStack();
  const resources = template.toJSON().Resources;
  const roleId = (role: IRole) => logicalId(stack, role as never);

  /** Every statement of the role's inline/default policies, one action per entry. */
  const statementsOf = (role: IRole): Array<{ action: string; resources: string[]; condition?: unknown }> => {
    const id = roleId(role);
    const out: Array<{ action: string; resources: string[]; condition?: unknown }> = [];
    for (const p of Object.values(template.findResources('AWS::IAM::Policy'))) {
      if (!p.Properties.Roles.some((r: { Ref: string }) => r.Ref === id)) continue;
      for (const s of p.Properties.PolicyDocument.Statement as Statement[]) {
        assert.equal(s.Effect, 'Allow');
        for (const a of list(s.Action)) out.push({ action: a, resources: list(s.Resource).map(text), condition: s.Condition });
      }
    }
    return out;
  };
  const actionsOf = (role: IRole) => [...new Set(statementsOf(role).map((s) => s.action))].sort();
  const resourcesFor = (role: IRole, action: string) => statementsOf(role).filter((s) => s.action === action).flatMap((s) => s.resources);
  const arnOf = (c: { node: { defaultChild?: unknown } }) => text({ 'Fn::GetAtt': [logicalId(stack, c), 'Arn'] });

  test('no role of ours has a managed policy, and none but CDK\'s deployment handler has an action wildcard', () => {
    for (const [lid, r] of Object.entries(template.findResources('AWS::IAM::Role'))) {
      if (lid.startsWith('CustomCDKBucketDeployment')) continue;
      assert.equal(r.Properties.ManagedPolicyArns, undefined, lid);
    }
    for (const [lid, p] of Object.entries(template.findResources('AWS::IAM::Policy'))) {
      if (lid.startsWith('CustomCDKBucketDeployment')) continue;
      for (const s of p.Properties.PolicyDocument.Statement as Statement[]) {
        for (const a of list(s.Action)) assert.ok(!a.includes('*'), `${lid}: ${a}`);
      }
    }
  });

  test('Resource "*" only for actions without resource-level permissions', () => {
    const star: string[] = [];
    for (const [lid, p] of Object.entries(template.findResources('AWS::IAM::Policy'))) {
      for (const s of p.Properties.PolicyDocument.Statement as Statement[]) {
        if (list(s.Resource).includes('*')) star.push(...list(s.Action).map((a) => `${lid.replace(/[0-9A-F]{8}$/, '')}: ${a}`));
      }
    }
    assert.deepEqual(star.sort(), [
      'CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C512MiBServiceRoleDefaultPolicy: cloudfront:CreateInvalidation',
      'CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C512MiBServiceRoleDefaultPolicy: cloudfront:GetInvalidation',
      'StateMachineRoleDefaultPolicy: logs:CreateLogDelivery',
      'StateMachineRoleDefaultPolicy: logs:DeleteLogDelivery',
      'StateMachineRoleDefaultPolicy: logs:DescribeLogGroups',
      'StateMachineRoleDefaultPolicy: logs:DescribeResourcePolicies',
      'StateMachineRoleDefaultPolicy: logs:GetLogDelivery',
      'StateMachineRoleDefaultPolicy: logs:ListLogDeliveries',
      'StateMachineRoleDefaultPolicy: logs:PutResourcePolicy',
      'StateMachineRoleDefaultPolicy: logs:UpdateLogDelivery',
      'StatusPusherRoleDefaultPolicy: dynamodb:ListStreams',
    ]);
  });

  test('each function writes only to its own log group', () => {
    for (const name of FUNCTION_NAMES) {
      const f = stack.functions[name];
      assert.deepEqual(resourcesFor(f.role, 'logs:PutLogEvents'), [arnOf(f.logGroup)], name);
      const trust = resources[roleId(f.role)].Properties.AssumeRolePolicyDocument.Statement;
      assert.deepEqual(trust.map((s: Statement & { Principal: unknown }) => s.Principal), [{ Service: 'lambda.amazonaws.com' }], name);
    }
  });

  test('the node-runner reads and writes table items, nothing more', () => {
    const r = stack.functions['node-runner'].role;
    assert.deepEqual(actionsOf(r), ['dynamodb:GetItem', 'dynamodb:PutItem', 'logs:CreateLogStream', 'logs:PutLogEvents']);
    assert.deepEqual(resourcesFor(r, 'dynamodb:PutItem'), [arnOf(stack.table)]);
  });

  test('the live-status functions have the table actions functions/README.md lists, and no index', () => {
    for (const n of ['ws-connect', 'ws-disconnect', 'ws-message', 'status-pusher'] as const) {
      const r = stack.functions[n].role;
      const dynamo = actionsOf(r).filter((a) => a.startsWith('dynamodb:') && !a.startsWith('dynamodb:DescribeStream'));
      const expected = ['BatchWriteItem', 'ConditionCheckItem', 'GetItem', 'PutItem', 'Query'].map((a) => `dynamodb:${a}`);
      assert.deepEqual(
        dynamo.filter((a) => !['dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'].includes(a)),
        expected,
        n,
      );
      assert.deepEqual(resourcesFor(r, 'dynamodb:Query'), [arnOf(stack.table)], n);
    }
    const pusher = stack.functions['status-pusher'].role;
    assert.deepEqual(resourcesFor(pusher, 'dynamodb:GetRecords'), [text({ 'Fn::GetAtt': [logicalId(stack, stack.table), 'StreamArn'] })]);
    for (const n of ['ws-message', 'status-pusher'] as const) {
      const manage = resourcesFor(stack.functions[n].role, 'execute-api:ManageConnections');
      assert.equal(manage.length, 1, n);
      assert.match(manage[0], new RegExp(`"${logicalId(stack, stack.webSocketApi)}"\\},"/live/POST/@connections/\\*"`), n);
    }
    assert.ok(!actionsOf(stack.functions['ws-connect'].role).includes('execute-api:ManageConnections'));
  });

  test('the api: the store on the table and its two indexes (Query only), Step Functions on <org>.* machines', () => {
    const r = stack.functions.api.role;
    assert.deepEqual(resourcesFor(r, 'dynamodb:Query').sort(), [
      arnOf(stack.table),
      text({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack, stack.table), 'Arn'] }, '/index/gsi1']] }),
      text({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack, stack.table), 'Arn'] }, '/index/gsi2']] }),
    ].sort());
    assert.deepEqual(resourcesFor(r, 'dynamodb:UpdateItem'), [arnOf(stack.table)]);
    for (const a of ['CreateStateMachine', 'UpdateStateMachine', 'DescribeStateMachine', 'PublishStateMachineVersion', 'CreateStateMachineAlias', 'UpdateStateMachineAlias', 'DescribeStateMachineAlias', 'StartExecution', 'SendTaskSuccess']) {
      const res = resourcesFor(r, `states:${a}`);
      assert.equal(res.length, 1, a);
      assert.match(res[0], /:stateMachine:\*\.\*"\]\]\}$/, a);
    }
    for (const a of ['StopExecution', 'DescribeExecution', 'GetExecutionHistory', 'RedriveExecution']) {
      assert.match(resourcesFor(r, `states:${a}`)[0], /:execution:\*\.\*:\*"\]\]\}$/, a);
    }
    for (const a of ['CreateSchedule', 'UpdateSchedule', 'DeleteSchedule', 'GetSchedule']) {
      assert.match(resourcesFor(r, `scheduler:${a}`)[0], /:schedule\/concertmaster\/\*"\]\]\}$/, a);
    }
  });

  test('the api may pass each role only to its service', () => {
    const passes = statementsOf(stack.functions.api.role).filter((s) => s.action === 'iam:PassRole');
    assert.deepEqual(
      passes.map((s) => [s.resources, s.condition]),
      [
        [[arnOf(stack.stateMachineRole)], { StringEquals: { 'iam:PassedToService': 'states.amazonaws.com' } }],
        [[arnOf(stack.schedulerRole)], { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } }],
      ],
    );
  });

  test('the state machine role: what compiled workflows call, and only that', () => {
    const r = stack.stateMachineRole;
    const trust = resources[roleId(r)].Properties.AssumeRolePolicyDocument.Statement[0];
    assert.deepEqual(trust.Principal, { Service: 'states.amazonaws.com' });
    assert.deepEqual(trust.Condition.StringEquals, { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } });
    const invoke = resourcesFor(r, 'lambda:InvokeFunction');
    assert.deepEqual(invoke[0], arnOf(stack.functions['node-runner'].fn));
    assert.match(invoke[1], /:function:concertmaster-plugin-\*"\]\]\}$/);
    assert.equal(invoke.length, 2);
    assert.deepEqual(resourcesFor(r, 'dynamodb:PutItem'), [arnOf(stack.datasetsTable)]);
    assert.match(resourcesFor(r, 'sqs:SendMessage')[0], /:concertmaster-\*"\]\]\}$/);
    assert.match(resourcesFor(r, 'states:StartExecution')[0], /:stateMachine:\*\.\*"\]\]\}$/);
    assert.match(resourcesFor(r, 'events:PutRule')[0], /rule\/StepFunctionsGetEventsForStepFunctionsExecutionRule"\]\]\}$/);
    assert.deepEqual(
      actionsOf(r).filter((a) => !a.startsWith('logs:')),
      [
        'dynamodb:PutItem',
        'events:DescribeRule',
        'events:PutRule',
        'events:PutTargets',
        'lambda:InvokeFunction',
        'sqs:SendMessage',
        'states:DescribeExecution',
        'states:StartExecution',
        'states:StopExecution',
      ],
    );
  });

  test('of the workers, only the trigger consumer queries an index (gsi2, the routes by kind)', () => {
    const gsi2 = text({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack, stack.table), 'Arn'] }, '/index/gsi2']] });
    assert.deepEqual(resourcesFor(stack.functions['trigger-consumer'].role, 'dynamodb:Query').sort(), [arnOf(stack.table), gsi2].sort());
    for (const n of ['run-events', 'scheduler'] as const) {
      assert.deepEqual(resourcesFor(stack.functions[n].role, 'dynamodb:Query'), [arnOf(stack.table)], n);
    }
  });

  test('triggers start executions; run-events reads them; the scheduler role invokes the scheduler only', () => {
    for (const n of ['trigger-consumer', 'scheduler'] as const) {
      assert.match(resourcesFor(stack.functions[n].role, 'states:StartExecution')[0], /:stateMachine:\*\.\*"\]\]\}$/, n);
    }
    const runEvents = stack.functions['run-events'].role;
    assert.ok(!actionsOf(runEvents).includes('states:StartExecution'));
    assert.match(resourcesFor(runEvents, 'states:GetExecutionHistory')[0], /:execution:\*\.\*:\*"\]\]\}$/);
    // Express executions' history: only the execution log group, by the api and run-events.
    const group = arnOf(stack.executionLogs);
    for (const n of ['api', 'run-events'] as const) {
      assert.deepEqual(resourcesFor(stack.functions[n].role, 'logs:FilterLogEvents'), [group], n);
    }
    for (const n of ['trigger-consumer', 'scheduler', 'node-runner'] as const) {
      assert.ok(!actionsOf(stack.functions[n].role).includes('logs:FilterLogEvents'), n);
    }
    // The signing key: only the api (it signs) and ws-connect (it verifies) may read it.
    const secret = text({ Ref: Object.keys(template.findResources('AWS::SecretsManager::Secret'))[0] });
    for (const [name, f] of Object.entries(stack.functions)) {
      const may = resourcesFor(f.role, 'secretsmanager:GetSecretValue');
      assert.deepEqual(may, name === 'api' || name === 'ws-connect' ? [secret] : [], name);
    }
    assert.deepEqual(actionsOf(stack.schedulerRole), ['lambda:InvokeFunction', 'sqs:SendMessage']);
    assert.deepEqual(resourcesFor(stack.schedulerRole, 'lambda:InvokeFunction'), [arnOf(stack.functions.scheduler.fn)]);
    assert.deepEqual(resourcesFor(stack.schedulerRole, 'sqs:SendMessage'), [arnOf(stack.eventsDlq)]);
  });
});
