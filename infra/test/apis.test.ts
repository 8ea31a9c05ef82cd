// HTTP API (JWT authorizer), WebSocket API, EventBridge, Scheduler, the builder, alarms, outputs.
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { PUBLIC_ROUTES } from '../lib/concertmaster-stack';
import { build, defaultStack, logicalId } from './support/app';

describe('HTTP API', () => {
  const { stack, template } = defaultStack();
  const api = logicalId(stack, stack.httpApi);
  const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).filter((r) => r.Properties.ApiId.Ref === api);

  test('a Cognito JWT authorizer: issuer = the stack user pool, audience = the builder client', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      ApiId: { Ref: api },
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: {
        Audience: [{ Ref: logicalId(stack, stack.userPoolClient) }],
        Issuer: {
          'Fn::Join': ['', ['https://cognito-idp.', { Ref: 'AWS::Region' }, '.amazonaws.com/', { Ref: logicalId(stack, stack.userPool) }]],
        },
      },
    });
  });

  test('$default goes to the api function through the authorizer; only the public routes skip it', () => {
    const byKey = Object.fromEntries(routes.map((r) => [r.Properties.RouteKey, r.Properties]));
    assert.deepEqual(
      Object.keys(byKey).sort(),
      ['$default', ...PUBLIC_ROUTES.map(([m, p]) => `${m} ${p}`)].sort(),
    );
    assert.equal(byKey.$default.AuthorizationType, 'JWT');
    for (const [m, p] of PUBLIC_ROUTES) assert.equal(byKey[`${m} ${p}`].AuthorizationType, 'NONE');
    const targets = new Set(routes.map((r) => JSON.stringify(r.Properties.Target)));
    assert.equal(targets.size, 1, 'every route has the one api integration');
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      ApiId: { Ref: api },
      IntegrationType: 'AWS_PROXY',
      IntegrationUri: { 'Fn::GetAtt': [logicalId(stack, stack.functions.api.fn), 'Arn'] },
      PayloadFormatVersion: '2.0',
    });
  });

  test('the $default stage auto-deploys, is throttled and writes access logs', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      ApiId: { Ref: api },
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400 },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
    });
  });

  test('CORS allows the builder origin', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: {
        AllowOrigins: [{ 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [logicalId(stack, stack.distribution), 'DomainName'] }]] }],
        AllowHeaders: Match.arrayWith(['authorization', 'content-type']),
      },
    });
  });

  test('the user pool: no self sign-up, MFA required, custom:org and custom:role only admins can write', () => {
    template.hasResourceProperties('AWS::Cognito::UserPool', {
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
      MfaConfiguration: 'ON',
      Schema: Match.arrayWith([
        Match.objectLike({ Name: 'org', AttributeDataType: 'String' }),
        Match.objectLike({ Name: 'role', AttributeDataType: 'String' }),
      ]),
    });
    const client = template.toJSON().Resources[logicalId(stack, stack.userPoolClient)].Properties;
    assert.ok(client.ReadAttributes.includes('custom:org') && client.ReadAttributes.includes('custom:role'));
    assert.ok(!client.WriteAttributes.some((a: string) => a.startsWith('custom:')));
    assert.equal(client.GenerateSecret, false);
    // The builder's sign-in (USER_PASSWORD_AUTH) and its token renewal; SRP for SDK clients.
    assert.deepEqual(
      [...client.ExplicitAuthFlows].sort(),
      ['ALLOW_REFRESH_TOKEN_AUTH', 'ALLOW_USER_PASSWORD_AUTH', 'ALLOW_USER_SRP_AUTH'],
    );
  });
});

describe('WebSocket API', () => {
  const { stack, template } = defaultStack();
  const api = logicalId(stack, stack.webSocketApi);

  test('routes on $request.body.action: $connect, $disconnect, $default to the ws functions', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'WEBSOCKET',
      RouteSelectionExpression: '$request.body.action',
    });
    const resources = template.toJSON().Resources;
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).filter((r) => r.Properties.ApiId.Ref === api);
    const target = (r: any) => {
      const integration = resources[r.Properties.Target['Fn::Join'][1][1].Ref].Properties;
      return integration.IntegrationUri['Fn::Join'][1].find((x: any) => x['Fn::GetAtt'])['Fn::GetAtt'][0];
    };
    assert.deepEqual(
      Object.fromEntries(routes.map((r) => [r.Properties.RouteKey, target(r)])),
      {
        $connect: logicalId(stack, stack.functions['ws-connect'].fn),
        $disconnect: logicalId(stack, stack.functions['ws-disconnect'].fn),
        $default: logicalId(stack, stack.functions['ws-message'].fn),
      },
    );
  });

  test('the live stage auto-deploys and writes access logs', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      ApiId: { Ref: api },
      StageName: 'live',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('connectionId') },
    });
  });
});

describe('events and schedules', () => {
  const { stack, template } = defaultStack();

  test('Step Functions execution status changes of the account/region machines go to run-events', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: {
          stateMachineArn: [
            {
              prefix: {
                'Fn::Join': [
                  '',
                  ['arn:', { Ref: 'AWS::Partition' }, ':states:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':stateMachine:'],
                ],
              },
            },
          ],
        },
      },
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(stack, stack.functions['run-events'].fn), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(stack, stack.eventsDlq), 'Arn'] } },
        }),
      ],
    });
  });

  test('every execution log record goes to run-events (the subscription filter and its permission)', () => {
    const group = logicalId(stack, stack.executionLogs);
    const fn = { 'Fn::GetAtt': [logicalId(stack, stack.functions['run-events'].fn), 'Arn'] };
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: `/aws/vendedlogs/states/${stack.stackName}-executions`,
    });
    template.hasResourceProperties('AWS::Logs::SubscriptionFilter', {
      LogGroupName: { Ref: group },
      DestinationArn: fn,
      FilterPattern: '',
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: fn,
      Principal: 'logs.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [group, 'Arn'] },
    });
  });

  test('the schedule group, and a scheduler role only its schedules can assume', () => {
    template.hasResourceProperties('AWS::Scheduler::ScheduleGroup', { Name: 'concertmaster' });
    const role = template.toJSON().Resources[logicalId(stack, stack.schedulerRole)].Properties;
    const stmt = role.AssumeRolePolicyDocument.Statement[0];
    assert.deepEqual(stmt.Principal, { Service: 'scheduler.amazonaws.com' });
    assert.deepEqual(stmt.Condition.StringEquals, { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } });
    assert.match(JSON.stringify(stmt.Condition.ArnLike), /:schedule\/concertmaster\/\*/);
  });
});

describe('builder', () => {
  const { stack, template } = defaultStack();

  test('CloudFront serves the bucket through OAC with the SPA fallback (403/404 → /index.html)', () => {
    template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        DefaultRootObject: 'index.html',
        CustomErrorResponses: [
          { ErrorCode: 403, ResponseCode: 200, ResponsePagePath: '/index.html', ErrorCachingMinTTL: 0 },
          { ErrorCode: 404, ResponseCode: 200, ResponsePagePath: '/index.html', ErrorCachingMinTTL: 0 },
        ],
        DefaultCacheBehavior: Match.objectLike({ ViewerProtocolPolicy: 'redirect-to-https' }),
        Origins: [Match.objectLike({ OriginAccessControlId: Match.anyValue() })],
        Logging: Match.objectLike({ Prefix: 'cloudfront/' }),
      }),
    });
    template.resourceCountIs('AWS::CloudFront::OriginAccessControl', 1);
  });

  test('the buckets block public access, refuse plain HTTP, and the builder bucket logs access', () => {
    const buckets = template.findResources('AWS::S3::Bucket');
    assert.equal(Object.keys(buckets).length, 2);
    for (const [lid, b] of Object.entries(buckets)) {
      assert.deepEqual(
        b.Properties.PublicAccessBlockConfiguration,
        { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        lid,
      );
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: lid },
        PolicyDocument: {
          Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
        },
      });
    }
    template.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: { DestinationBucketName: Match.anyValue(), LogFilePrefix: 'builder-bucket/' },
    });
  });

  test('the builder files and config.json are deployed with an invalidation', () => {
    template.hasResourceProperties('Custom::CDKBucketDeployment', {
      DistributionId: { Ref: logicalId(stack, stack.distribution) },
      DistributionPaths: ['/*'],
    });
    const deployment = Object.values(template.findResources('Custom::CDKBucketDeployment'))[0];
    assert.equal(deployment.Properties.SourceObjectKeys.length, 2, 'the builder files and config.json');
    // config.json is filled at deploy time with the API URLs and the user pool.
    const markers = JSON.stringify(deployment.Properties.SourceMarkers);
    for (const ref of [logicalId(stack, stack.httpApi), logicalId(stack, stack.webSocketApi), logicalId(stack, stack.userPool), logicalId(stack, stack.userPoolClient)]) {
      assert.ok(markers.includes(`"${ref}"`), ref);
    }
  });
});

describe('alarms and outputs', () => {
  const { stack, template } = defaultStack();

  test('each dead-letter queue alarms as soon as it holds a message', () => {
    for (const q of [stack.triggersDlq, stack.eventsDlq, stack.streamDlq]) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Namespace: 'AWS/SQS',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack, q), 'QueueName'] } }],
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        AlarmActions: [{ Ref: logicalId(stack, stack.alarmTopic) }],
      });
    }
    template.resourceCountIs('AWS::CloudWatch::Alarm', 9 + 3);
  });

  test('the alarm topic is encrypted with a rotated key CloudWatch may use', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] }),
        ]),
      },
    });
  });

  test('outputs: the URLs, the user pool and the table', () => {
    const outputs = template.toJSON().Outputs;
    for (const o of ['HttpApiUrl', 'WebSocketUrl', 'BuilderUrl', 'UserPoolId', 'UserPoolClientId', 'TableName']) {
      assert.ok(outputs[o], o);
    }
    assert.match(JSON.stringify(outputs.WebSocketUrl.Value), /"wss:\/\/".*"\/live"/);
  });
});

describe('builder without a build', () => {
  test('a missing frontend/dist deploys a placeholder page instead of failing', () => {
    const { stack, template } = build({ builderDir: '/nonexistent/frontend/dist' });
    const deployment = Object.values(template.findResources('Custom::CDKBucketDeployment'))[0];
    assert.equal(deployment.Properties.SourceObjectKeys.length, 2);
    Annotations.fromStack(stack).hasWarning('*', Match.stringLikeRegexp('deploying a placeholder page'));
    Annotations.fromStack(defaultStack().stack).hasNoWarning('*', Match.anyValue());
  });
});
