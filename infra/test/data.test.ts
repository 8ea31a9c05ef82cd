// Tables (docs/dynamodb.md; the compiler's action.store putItem) and queues.
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { defaultStack, logicalId } from './support/app';

const S = (name: string) => ({ AttributeName: name, AttributeType: 'S' });
const keys = (hash: string, range: string) => [
  { AttributeName: hash, KeyType: 'HASH' },
  { AttributeName: range, KeyType: 'RANGE' },
];

describe('tables', () => {
  const { stack, template } = defaultStack();

  test('the control-plane table has the keys, GSIs and stream of docs/dynamodb.md', () => {
    const table = template.toJSON().Resources[logicalId(stack, stack.table)];
    assert.equal(table.Type, 'AWS::DynamoDB::Table');
    const p = table.Properties;
    assert.deepEqual(p.KeySchema, keys('pk', 'sk'));
    assert.deepEqual(
      [...p.AttributeDefinitions].sort((a: any, b: any) => a.AttributeName.localeCompare(b.AttributeName)),
      ['gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'pk', 'sk'].map(S),
    );
    assert.deepEqual(
      p.GlobalSecondaryIndexes.map((g: any) => [g.IndexName, g.KeySchema, g.Projection]),
      [
        ['gsi1', keys('gsi1pk', 'gsi1sk'), { ProjectionType: 'ALL' }],
        ['gsi2', keys('gsi2pk', 'gsi2sk'), { ProjectionType: 'ALL' }],
      ],
    );
    assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(p.StreamSpecification, { StreamViewType: 'NEW_AND_OLD_IMAGES' });
    assert.deepEqual(p.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
    assert.equal(p.DeletionProtectionEnabled, true);
    assert.equal(table.DeletionPolicy, 'Retain');
  });

  test('the datasets table has the keys action.store writes (pk, sk), on demand, no stream', () => {
    const table = template.toJSON().Resources[logicalId(stack, stack.datasetsTable)];
    const p = table.Properties;
    assert.deepEqual(p.KeySchema, keys('pk', 'sk'));
    assert.deepEqual(p.AttributeDefinitions, [S('pk'), S('sk')]);
    assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
    assert.equal(p.StreamSpecification, undefined);
    assert.equal(p.GlobalSecondaryIndexes, undefined);
    assert.deepEqual(p.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
  });

  test('there are exactly these two tables', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 2);
  });
});

describe('queues', () => {
  const { stack, template } = defaultStack();
  const id = (q: { node: { defaultChild?: unknown } }) => logicalId(stack, q);

  test('the triggers queue moves a message to its DLQ after 5 receives', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [id(stack.triggersDlq), 'Arn'] },
        maxReceiveCount: 5,
      },
      VisibilityTimeout: 180,
    });
  });

  test('every queue is encrypted (SSE-SQS) and refuses requests without TLS', () => {
    const queues = template.findResources('AWS::SQS::Queue');
    assert.equal(Object.keys(queues).length, 4);
    for (const [lid, q] of Object.entries(queues)) {
      assert.equal(q.Properties.SqsManagedSseEnabled, true, lid);
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: lid }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });

  test('dead-letter queues keep messages 14 days', () => {
    for (const q of [stack.triggersDlq, stack.eventsDlq, stack.streamDlq]) {
      assert.equal(template.toJSON().Resources[id(q)].Properties.MessageRetentionPeriod, 14 * 24 * 3600);
    }
  });
});
