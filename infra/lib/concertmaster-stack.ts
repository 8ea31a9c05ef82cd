import * as fs from 'node:fs';
import * as path from 'node:path';
import { Annotations, Aws, CfnOutput, DefaultStackSynthesizer, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpUserPoolAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration, WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as logsDestinations from 'aws-cdk-lib/aws-logs-destinations';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct, IConstruct } from 'constructs';
import { checkSettings, type Settings } from './config';
import { acknowledge, allow, flatten } from './nag';
import { checkArchitecture, checkArtifacts, FUNCTION_NAMES, type FunctionName, RustFunction } from './rust-function';

export interface ConcertMasterStackProps extends StackProps {
  readonly settings: Settings;
}

/** DynamoDB actions of the cm-store ports (docs/dynamodb.md, "IAM permissions"). */
const STORE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
  'dynamodb:BatchGetItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
];
/** What the live-status functions do on the table (functions/README.md). */
const LIVE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
];

/** The control-plane table's global secondary indexes (docs/dynamodb.md). */
export const GSIS = ['gsi1', 'gsi2'] as const;

/** The stage of the WebSocket API (`wss://<id>.execute-api.<region>.amazonaws.com/live`). */
export const WS_STAGE = 'live';

/** Routes the api Lambda serves without a caller (docs/api.md, "Public"): no JWT authorizer. */
export const PUBLIC_ROUTES: Array<[apigwv2.HttpMethod, string]> = [
  [apigwv2.HttpMethod.GET, '/v1/forms/{formId}'],
  [apigwv2.HttpMethod.POST, '/v1/forms/{formId}/responses'],
  [apigwv2.HttpMethod.POST, '/hooks/{token}'],
  [apigwv2.HttpMethod.GET, '/healthz'],
  [apigwv2.HttpMethod.GET, '/openapi.json'],
];

const PLACEHOLDER_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ConcertMaster</title></head>
<body><h1>ConcertMaster</h1>
<p>The builder was not built when this stack was deployed: build <code>frontend/</code>
(<code>npm ci && npm run build</code>) and deploy again. The API works without it.</p>
</body></html>
`;

/**
 * ConcertMaster on AWS: the control-plane table (+ stream) and the datasets table, the
 * triggers queue and dead-letter queues, the nine Rust Lambdas, the HTTP API (Cognito JWT
 * authorizer) and the WebSocket API, the EventBridge rule and the Scheduler group and role,
 * the role published state machines run as, the builder on S3 + CloudFront, alarms.
 */
export class ConcertMasterStack extends Stack {
  readonly table: dynamodb.Table;
  readonly datasetsTable: dynamodb.Table;
  readonly triggersQueue: sqs.Queue;
  readonly triggersDlq: sqs.Queue;
  readonly eventsDlq: sqs.Queue;
  readonly streamDlq: sqs.Queue;
  readonly functions: Record<FunctionName, RustFunction>;
  readonly stateMachineRole: iam.Role;
  readonly schedulerRole: iam.Role;
  /** The log group every state machine logs its executions to (followed by run-events). */
  readonly executionLogs: logs.LogGroup;
  readonly httpApi: apigwv2.HttpApi;
  readonly webSocketApi: apigwv2.WebSocketApi;
  readonly userPool: cognito.UserPool;
  readonly userPoolClient: cognito.UserPoolClient;
  readonly distribution: cloudfront.Distribution;
  readonly alarmTopic: sns.Topic;

  constructor(scope: Construct, id: string, props: ConcertMasterStackProps) {
    super(scope, id, props);
    const s = checkSettings(props.settings);
    checkArtifacts(s.lambdaDir);
    checkArchitecture(s.lambdaDir, s.architecture);

    const arn = (service: string, resource: string) =>
      `arn:${Aws.PARTITION}:${service}:${Aws.REGION}:${Aws.ACCOUNT_ID}:${resource}`;
    // State machines are named `<org>.<workflowId>` (cm-api; organisation ids have no dot):
    // `*.*` covers every organisation's machines (and only machines with a dot in their name).
    const stateMachineArnPrefix = arn('states', 'stateMachine:');
    const orgMachines = arn('states', 'stateMachine:*.*');
    const orgExecutions = arn('states', 'execution:*.*:*');

    // ------------------------------------------------------------------ data

    this.table = new dynamodb.Table(this, 'ControlPlane', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const gsi of GSIS) {
      this.table.addGlobalSecondaryIndex({
        indexName: gsi,
        partitionKey: { name: `${gsi}pk`, type: dynamodb.AttributeType.STRING },
        sortKey: { name: `${gsi}sk`, type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
    // What `action.store` writes (cm-compiler emit.rs: putItem of pk, sk, data, runId, nodeId, storedAt).
    this.datasetsTable = new dynamodb.Table(this, 'Datasets', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const dlq = (qid: string) =>
      new sqs.Queue(this, qid, {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
    this.triggersDlq = dlq('TriggersDlq');
    this.triggersQueue = new sqs.Queue(this, 'Triggers', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Six times the consumer's timeout (AWS's advice for Lambda event sources).
      visibilityTimeout: Duration.seconds(180),
      deadLetterQueue: { queue: this.triggersDlq, maxReceiveCount: 5 },
    });
    this.eventsDlq = dlq('EventsDlq');
    this.streamDlq = dlq('StreamDlq');
    for (const [q, what] of [
      [this.eventsDlq, 'EventBridge and EventBridge Scheduler deliveries, and failed asynchronous invocations of run-events and scheduler'],
      [this.streamDlq, 'stream batches the status-pusher still failed after its retries (the on-failure destination of its event source mapping)'],
    ] as const) {
      acknowledge(
        q,
        'AwsSolutions-SQS3',
        `This queue is itself a dead-letter queue: it receives ${what}. SQS3 only recognises queues named in another queue's redrive policy.`,
      );
    }

    // ------------------------------------------------------------------ identities and secrets

    // HS256 key of the api (hook tokens, form ids, tokens where no authorizer is in front) and of
    // ws-connect. 44 alphanumerics are valid standard base64 of 33 bytes (no padding needed).
    const signingKey = new secretsmanager.Secret(this, 'SigningKey', {
      description: 'ConcertMaster token signing key (base64 of 33 random bytes)',
      generateSecretString: { passwordLength: 44, excludePunctuation: true, includeSpace: false },
    });
    acknowledge(
      signingKey,
      'AwsSolutions-SMG4',
      'The signing key keys published webhook URLs and form ids: rotating it would silently break every published hook and form link, so it is rotated deliberately (new secret version, then redeploy), not on a schedule.',
    );
    // The functions read it from Secrets Manager when they start (not an environment variable
    // holding the value, which anyone who may read the function's configuration would see).
    const useSigningKey = (fn: RustFunction) => {
      fn.addEnvironment('CONCERTMASTER_SIGNING_KEY_SECRET_ARN', signingKey.secretArn);
      allow(fn.role, new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [signingKey.secretArn] }));
    };

    this.userPool = new cognito.UserPool(this, 'Users', {
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      autoVerify: { email: true },
      standardAttributes: { email: { required: true, mutable: true } },
      customAttributes: {
        // Read by the api as the caller's organisation and role (claims custom:org, custom:role).
        org: new cognito.StringAttribute({ minLen: 1, maxLen: 15, mutable: true }),
        role: new cognito.StringAttribute({ minLen: 1, maxLen: 10, mutable: true }),
      },
      passwordPolicy: {
        minLength: 12,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
      },
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      featurePlan: cognito.FeaturePlan.ESSENTIALS,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledge(
      this.userPool,
      'AwsSolutions-COG8',
      'Users are created by administrators only (no self sign-up) and MFA is required; the Plus feature plan (threat protection) is billed per monthly active user and left to operators who want it.',
    );
    this.userPoolClient = this.userPool.addClient('Builder', {
      // The builder signs in with USER_PASSWORD_AUTH (the password goes over TLS to Cognito
      // only, never to ConcertMaster); SRP stays on for SDK-based clients.
      authFlows: { userSrp: true, userPassword: true },
      generateSecret: false,
      disableOAuth: true,
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
      idTokenValidity: Duration.hours(1),
      accessTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.days(30),
      readAttributes: new cognito.ClientAttributes()
        .withStandardAttributes({ email: true, emailVerified: true })
        .withCustomAttributes('org', 'role'),
      // Users cannot change their own organisation or role: only administrators
      // (AdminUpdateUserAttributes) set custom:org and custom:role.
      writeAttributes: new cognito.ClientAttributes().withStandardAttributes({ email: true }),
    });

    // ------------------------------------------------------------------ builder (S3 + CloudFront)

    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      // CloudFront's standard logs are delivered with ACLs.
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const site = new s3.Bucket(this, 'Builder', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'builder-bucket/',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.distribution = new cloudfront.Distribution(this, 'BuilderCdn', {
      comment: 'ConcertMaster builder',
      defaultRootObject: 'index.html',
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(site),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
      },
      // The builder is a single-page app: unknown paths (S3 answers 403 without ListBucket) serve
      // index.html, and the app's router shows the page.
      errorResponses: [403, 404].map((httpStatus) => ({
        httpStatus,
        responseHttpStatus: 200,
        responsePagePath: '/index.html',
        ttl: Duration.seconds(0),
      })),
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      enableLogging: true,
      logBucket: accessLogs,
      logFilePrefix: 'cloudfront/',
    });
    acknowledge(
      this.distribution,
      'AwsSolutions-CFR1',
      'The builder serves an organisation-scoped, authenticated application to users anywhere; there is no country to block by default.',
    );
    acknowledge(
      this.distribution,
      'AwsSolutions-CFR2',
      'The distribution serves static files only (every API call goes to API Gateway, which has its own throttling); a WAF web ACL is billed monthly and left to operators who want one.',
    );
    acknowledge(
      this.distribution,
      'AwsSolutions-CFR4',
      'The distribution uses the default *.cloudfront.net certificate, whose security policy CloudFront fixes (TLSv1); choosing TLSv1.2_2021 needs a custom domain and certificate, which this stack does not create.',
    );
    const builderUrl = `https://${this.distribution.distributionDomainName}`;

    // ------------------------------------------------------------------ functions

    const fn = (name: FunctionName, description: string, memorySize: number, timeoutSeconds: number) =>
      new RustFunction(this, pascal(name), {
        name,
        description,
        lambdaDir: s.lambdaDir,
        architecture: s.architecture,
        memorySize,
        timeout: Duration.seconds(timeoutSeconds),
        logRetentionDays: s.logRetentionDays,
        environment: { CONCERTMASTER_TABLE: this.table.tableName },
      });
    const f: Record<FunctionName, RustFunction> = {
      api: fn('api', 'ConcertMaster HTTP API (cm-api router behind API Gateway)', 512, 29),
      'node-runner': fn('node-runner', 'ConcertMaster node runner (Task states of compiled workflows)', 512, 300),
      'ws-connect': fn('ws-connect', 'ConcertMaster live status: $connect', 256, 10),
      'ws-disconnect': fn('ws-disconnect', 'ConcertMaster live status: $disconnect', 256, 10),
      'ws-message': fn('ws-message', 'ConcertMaster live status: messages ($default)', 256, 29),
      'status-pusher': fn('status-pusher', 'ConcertMaster live status: table stream to WebSocket frames', 256, 60),
      'trigger-consumer': fn('trigger-consumer', 'ConcertMaster queue triggers: SQS messages to runs', 256, 30),
      'run-events': fn('run-events', 'ConcertMaster run state from Step Functions execution events', 256, 30),
      scheduler: fn('scheduler', 'ConcertMaster schedule triggers: EventBridge Scheduler target', 256, 30),
    };
    this.functions = f;

    const tableArn = this.table.tableArn;
    const tableAccess = (name: FunctionName, actions: string[], indexes: readonly string[]) => {
      allow(f[name].role, new iam.PolicyStatement({ actions, resources: [tableArn] }));
      if (indexes.length > 0) {
        const resources = indexes.map((g) => `${tableArn}/index/${g}`);
        allow(f[name].role, new iam.PolicyStatement({ actions: ['dynamodb:Query'], resources }));
      }
    };
    tableAccess('api', STORE_ACTIONS, GSIS);
    tableAccess('node-runner', ['dynamodb:GetItem', 'dynamodb:PutItem'], []);
    for (const n of ['ws-connect', 'ws-disconnect', 'ws-message', 'status-pusher'] as const) tableAccess(n, LIVE_ACTIONS, []);
    // The trigger consumer finds the published queue triggers by listing routes (gsi2).
    tableAccess('trigger-consumer', STORE_ACTIONS, ['gsi2']);
    for (const n of ['run-events', 'scheduler'] as const) tableAccess(n, STORE_ACTIONS, []);

    // ------------------------------------------------------------------ what state machines run as

    this.stateMachineRole = new iam.Role(this, 'StateMachineRole', {
      description: 'ConcertMaster: the role published workflow state machines run as',
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: { 'aws:SourceArn': arn('states', 'stateMachine:*') },
        },
      }),
    });
    const sm = this.stateMachineRole;
    allow(sm, new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [f['node-runner'].fn.functionArn] }));
    allow(
      sm,
      new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: [arn('lambda', `function:${s.pluginFunctionPrefix}*`)],
      }),
      `Plugin node types are Lambdas the operator deploys after this stack (their lambdaArn comes from the plugin descriptor); they are invokable only when named with the prefix \`${s.pluginFunctionPrefix}\`.`,
    );
    allow(sm, new iam.PolicyStatement({ actions: ['dynamodb:PutItem'], resources: [this.datasetsTable.tableArn] }));
    allow(
      sm,
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [arn('sqs', `${s.queueNamePrefix}*`)] }),
      `action.queue sends to the queue a workflow names (CONCERTMASTER_QUEUE_URL_PREFIX ends with the prefix \`${s.queueNamePrefix}\`): queue names are chosen by workflow authors, only the prefix is fixed.`,
    );
    allow(
      sm,
      new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [orgMachines] }),
      'flow.subworkflow starts the state machine of another workflow of the organisation; machines are created at publish time and named <org>.<workflow>, so only the dot-separated pattern is fixed.',
    );
    allow(
      sm,
      new iam.PolicyStatement({ actions: ['states:DescribeExecution', 'states:StopExecution'], resources: [orgExecutions] }),
      'A waiting flow.subworkflow (startExecution.sync:2) follows and, when stopped, stops its child execution; execution ARNs name the <org>.<workflow> machine and a run id, both known only at run time.',
    );
    allow(
      sm,
      new iam.PolicyStatement({
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [arn('events', 'rule/StepFunctionsGetEventsForStepFunctionsExecutionRule')],
      }),
    );
    allow(
      sm,
      new iam.PolicyStatement({
        actions: [
          'logs:CreateLogDelivery',
          'logs:GetLogDelivery',
          'logs:UpdateLogDelivery',
          'logs:DeleteLogDelivery',
          'logs:ListLogDeliveries',
          'logs:PutResourcePolicy',
          'logs:DescribeResourcePolicies',
          'logs:DescribeLogGroups',
        ],
        resources: ['*'],
      }),
      'State machines log their executions to CloudWatch Logs through log deliveries; these CloudWatch Logs actions support no resource-level permissions (AWS documents Resource "*" for Step Functions logging).',
    );
    // Every state machine logs every execution event here (level ALL, with execution data):
    // the only history of Express executions, and how run-events follows runs in flight.
    this.executionLogs = new logs.LogGroup(this, 'ExecutionLogs', {
      logGroupName: `/aws/vendedlogs/states/${this.stackName}-executions`,
      retention: s.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const executionLogs = this.executionLogs;

    // ------------------------------------------------------------------ schedule triggers

    const scheduleGroup = new scheduler.ScheduleGroup(this, 'Schedules', {
      scheduleGroupName: s.scheduleGroupName,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const groupSchedules = arn('scheduler', `schedule/${s.scheduleGroupName}/*`);
    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: 'ConcertMaster: EventBridge Scheduler schedules of schedule triggers invoke the scheduler function',
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: { 'aws:SourceArn': groupSchedules },
        },
      }),
    });
    allow(this.schedulerRole, new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [f.scheduler.fn.functionArn] }));
    allow(this.schedulerRole, new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.eventsDlq.queueArn] }));

    // ------------------------------------------------------------------ api function

    const api = f.api;
    const apiRole = api.role;
    allow(
      apiRole,
      new iam.PolicyStatement({
        actions: [
          'states:CreateStateMachine',
          'states:UpdateStateMachine',
          'states:DescribeStateMachine',
          'states:PublishStateMachineVersion',
          'states:CreateStateMachineAlias',
          'states:UpdateStateMachineAlias',
          'states:DescribeStateMachineAlias',
          'states:StartExecution',
          'states:SendTaskSuccess',
        ],
        resources: [orgMachines],
      }),
      'Publishing creates one state machine per workflow, named <org>.<workflow> at run time (versions and aliases are <machine>:<qualifier>); approvals answer task tokens of those machines. Only the dot-separated pattern is fixed.',
    );
    allow(
      apiRole,
      new iam.PolicyStatement({
        actions: ['states:DescribeExecution', 'states:GetExecutionHistory', 'states:StopExecution', 'states:RedriveExecution'],
        resources: [orgExecutions],
      }),
      'Runs are executions of the <org>.<workflow> machines named by run ids, both known only at run time.',
    );
    allow(
      apiRole,
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.stateMachineRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'states.amazonaws.com' } },
      }),
    );
    allow(
      apiRole,
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.schedulerRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    );
    allow(
      apiRole,
      new iam.PolicyStatement({
        actions: ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule', 'scheduler:GetSchedule'],
        resources: [groupSchedules],
      }),
      `Publishing a schedule-triggered workflow creates its schedule in the group \`${s.scheduleGroupName}\`; schedule names come from workflow ids at run time, the group is fixed.`,
    );
    api.addEnvironment('CONCERTMASTER_STATE_MACHINE_ROLE_ARN', this.stateMachineRole.roleArn);
    api.addEnvironment('CONCERTMASTER_STATE_MACHINE_ARN_PREFIX', stateMachineArnPrefix);
    api.addEnvironment('CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN', executionLogs.logGroupArn);
    useSigningKey(api);
    api.addEnvironment('CONCERTMASTER_NODE_RUNNER_FUNCTION', f['node-runner'].fn.functionArn);
    api.addEnvironment('CONCERTMASTER_DATASETS_TABLE', this.datasetsTable.tableName);
    api.addEnvironment(
      'CONCERTMASTER_QUEUE_URL_PREFIX',
      `https://sqs.${Aws.REGION}.${Aws.URL_SUFFIX}/${Aws.ACCOUNT_ID}/${s.queueNamePrefix}`,
    );
    api.addEnvironment('CONCERTMASTER_SCHEDULER_ROLE_ARN', this.schedulerRole.roleArn);
    api.addEnvironment('CONCERTMASTER_SCHEDULER_TARGET_ARN', f.scheduler.fn.functionArn);
    api.addEnvironment('CONCERTMASTER_SCHEDULE_GROUP', scheduleGroup.scheduleGroupName);
    api.addEnvironment('CONCERTMASTER_SCHEDULER_DLQ_ARN', this.eventsDlq.queueArn);

    // ------------------------------------------------------------------ node-runner, triggers, run events

    f['node-runner'].addEnvironment('CONCERTMASTER_APPROVAL_BASE_URL', builderUrl);

    for (const n of ['trigger-consumer', 'scheduler', 'run-events'] as const) {
      f[n].addEnvironment('CONCERTMASTER_STATE_MACHINE_ARN_PREFIX', stateMachineArnPrefix);
    }
    for (const n of ['trigger-consumer', 'scheduler'] as const) {
      allow(
        f[n].role,
        new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [orgMachines] }),
        'Trigger events start the published state machine of the workflow they name: <org>.<workflow>, known only at run time.',
      );
    }
    allow(
      f['run-events'].role,
      new iam.PolicyStatement({ actions: ['states:DescribeExecution', 'states:GetExecutionHistory'], resources: [orgExecutions] }),
      'Execution status events name executions of the <org>.<workflow> machines by run id, known only at run time.',
    );
    // Express executions' status and history are read back from the execution logs.
    for (const n of ['api', 'run-events'] as const) {
      allow(f[n].role, new iam.PolicyStatement({ actions: ['logs:FilterLogEvents'], resources: [executionLogs.logGroupArn] }));
    }
    f['run-events'].addEnvironment('CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN', executionLogs.logGroupArn);
    // Every execution event → run-events: node statuses while runs are in flight, and the
    // end of Express runs (Step Functions sends no status-change events for those).
    new logs.SubscriptionFilter(this, 'ExecutionLogsToRunEvents', {
      logGroup: executionLogs,
      destination: new logsDestinations.LambdaDestination(f['run-events'].fn),
      filterPattern: logs.FilterPattern.allEvents(),
      filterName: 'run-events',
    });

    f['trigger-consumer'].fn.addEventSource(
      new sources.SqsEventSource(this.triggersQueue, { batchSize: 10, reportBatchItemFailures: true }),
    );

    new events.Rule(this, 'ExecutionStatusChanges', {
      description: 'ConcertMaster: Step Functions execution status changes of workflow state machines to run-events',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { stateMachineArn: [{ prefix: stateMachineArnPrefix }] },
      },
      targets: [
        new targets.LambdaFunction(f['run-events'].fn, {
          deadLetterQueue: this.eventsDlq,
          retryAttempts: 8,
          maxEventAge: Duration.hours(6),
        }),
      ],
    });
    for (const n of ['run-events', 'scheduler'] as const) {
      new lambda.EventInvokeConfig(this, `${pascal(n)}AsyncFailures`, {
        function: f[n].fn,
        retryAttempts: 2,
        maxEventAge: Duration.hours(6),
        onFailure: new destinations.SqsDestination(this.eventsDlq),
      });
    }

    // ------------------------------------------------------------------ HTTP API

    const accessLogGroup = (lid: string) =>
      new logs.LogGroup(this, lid, {
        retention: s.logRetentionDays as logs.RetentionDays,
        removalPolicy: RemovalPolicy.DESTROY,
      });
    const apiIntegration = new HttpLambdaIntegration('Api', api.fn, {
      payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
    });
    this.httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      apiName: `${this.stackName}-http`,
      description: 'ConcertMaster HTTP API',
      createDefaultStage: false,
      defaultIntegration: apiIntegration,
      defaultAuthorizer: new HttpUserPoolAuthorizer('Cognito', this.userPool, {
        userPoolClients: [this.userPoolClient],
        identitySource: ['$request.header.Authorization'],
      }),
      corsPreflight: {
        allowOrigins: [builderUrl, ...s.extraCorsOrigins],
        allowMethods: [
          apigwv2.CorsHttpMethod.GET,
          apigwv2.CorsHttpMethod.POST,
          apigwv2.CorsHttpMethod.PUT,
          apigwv2.CorsHttpMethod.DELETE,
          apigwv2.CorsHttpMethod.OPTIONS,
        ],
        allowHeaders: ['authorization', 'content-type'],
        maxAge: Duration.hours(1),
      },
    });
    new apigwv2.HttpStage(this, 'HttpStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: s.apiRateLimit, burstLimit: s.apiBurstLimit },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogGroup('HttpApiAccessLogs')),
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            latencyMs: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
            authorizerError: '$context.authorizer.error',
          }),
        ),
      },
    });
    for (const [method, routePath] of PUBLIC_ROUTES) {
      for (const route of this.httpApi.addRoutes({
        path: routePath,
        methods: [method],
        integration: apiIntegration,
        authorizer: new apigwv2.HttpNoneAuthorizer(),
      })) {
        acknowledge(
          route,
          'AwsSolutions-APIG4',
          'A public route by design (docs/api.md): form definitions and submissions, webhooks (HMAC-signed when the trigger has a secret, checked by the api), health and the OpenAPI document.',
        );
      }
    }
    const publicUrl = this.httpApi.apiEndpoint;
    api.addEnvironment('CONCERTMASTER_PUBLIC_URL', publicUrl);

    // ------------------------------------------------------------------ WebSocket API (live status)

    const wsIntegration = (name: FunctionName) => new WebSocketLambdaIntegration(pascal(name), f[name].fn);
    this.webSocketApi = new apigwv2.WebSocketApi(this, 'LiveApi', {
      apiName: `${this.stackName}-live`,
      description: 'ConcertMaster live status (WebSocket)',
      routeSelectionExpression: '$request.body.action',
      connectRouteOptions: { integration: wsIntegration('ws-connect') },
      disconnectRouteOptions: { integration: wsIntegration('ws-disconnect') },
      defaultRouteOptions: { integration: wsIntegration('ws-message') },
    });
    const wsStage = new apigwv2.WebSocketStage(this, 'LiveStage', {
      webSocketApi: this.webSocketApi,
      stageName: WS_STAGE,
      autoDeploy: true,
      throttle: { rateLimit: s.apiRateLimit, burstLimit: s.apiBurstLimit },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogGroup('LiveApiAccessLogs')),
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            eventType: '$context.eventType',
            routeKey: '$context.routeKey',
            status: '$context.status',
            connectionId: '$context.connectionId',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    for (const [routeKey, why] of [
      ['$connect', 'ws-connect authenticates the upgrade itself (the HS256 ?token= of the api key; 401 refuses it), as docs/api.md describes'],
      ['$disconnect', 'API Gateway allows an authorizer on $connect only; $disconnect belongs to a connection $connect authenticated'],
      ['$default', 'API Gateway allows an authorizer on $connect only; messages belong to a connection $connect authenticated and ws-message checks every topic against its organisation'],
    ]) {
      const route = this.webSocketApi.node.tryFindChild(`${routeKey}-Route`);
      if (!route) throw new Error(`no WebSocket route ${routeKey}`);
      acknowledge(route, 'AwsSolutions-APIG4', `No API Gateway authorizer: ${why}.`);
    }
    const manageConnections = arn('execute-api', `${this.webSocketApi.apiId}/${WS_STAGE}/POST/@connections/*`);
    for (const n of ['ws-message', 'status-pusher'] as const) {
      allow(
        f[n].role,
        new iam.PolicyStatement({ actions: ['execute-api:ManageConnections'], resources: [manageConnections] }),
        'PostToConnection on connections of this API and stage only; connection ids are assigned by API Gateway at connect time.',
      );
      f[n].addEnvironment('CONCERTMASTER_WS_ENDPOINT', wsStage.callbackUrl);
    }
    useSigningKey(f['ws-connect']);

    const pusher = f['status-pusher'];
    pusher.fn.addEventSource(
      new sources.DynamoEventSource(this.table, {
        startingPosition: lambda.StartingPosition.LATEST,
        batchSize: 100,
        maxBatchingWindow: Duration.seconds(1),
        bisectBatchOnError: true,
        retryAttempts: 3,
        maxRecordAge: Duration.hours(1),
        reportBatchItemFailures: true,
        onFailure: new sources.SqsDlq(this.streamDlq),
        // Only run items (sk RUN) and node executions (sk N#…) become live events.
        filters: [lambda.FilterCriteria.filter({ dynamodb: { Keys: { sk: { S: ['RUN', { prefix: 'N#' }] } } } })],
      }),
    );
    acknowledge(
      pusher.role,
      'AwsSolutions-IAM5[Resource::*]',
      'dynamodb:ListStreams (added by the DynamoDB event source mapping) supports no resource-level permissions; the stream reads themselves are scoped to the table stream ARN.',
    );

    // ------------------------------------------------------------------ alarms

    const topicKey = new kms.Key(this, 'AlarmTopicKey', {
      description: 'ConcertMaster alarm topic encryption',
      enableKeyRotation: true,
    });
    topicKey.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.alarmTopic = new sns.Topic(this, 'Alarms', {
      displayName: 'ConcertMaster alarms',
      masterKey: topicKey,
      enforceSSL: true,
    });
    if (s.alarmEmail) this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(s.alarmEmail));
    const notify = new cwActions.SnsAction(this.alarmTopic);
    for (const name of FUNCTION_NAMES) {
      new cloudwatch.Alarm(this, `${pascal(name)}Errors`, {
        alarmDescription: `ConcertMaster ${name}: the function returned errors`,
        metric: f[name].fn.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }).addAlarmAction(notify);
    }
    for (const [lid, q, what] of [
      ['TriggersDlqDepth', this.triggersDlq, 'queue-trigger messages failed 5 receives'],
      ['EventsDlqDepth', this.eventsDlq, 'execution events or schedule ticks could not be delivered or processed'],
      ['StreamDlqDepth', this.streamDlq, 'table stream batches could not be pushed to WebSocket clients'],
    ] as const) {
      new cloudwatch.Alarm(this, lid, {
        alarmDescription: `ConcertMaster: ${what} (dead-letter queue not empty)`,
        metric: q.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }).addAlarmAction(notify);
    }

    // ------------------------------------------------------------------ builder content

    const builderBuilt = fs.existsSync(path.join(s.builderDir, 'index.html'));
    if (!builderBuilt) {
      Annotations.of(this).addWarningV2(
        '@concertmaster/infra:builderNotBuilt',
        `no builder in ${s.builderDir} (index.html): deploying a placeholder page; build frontend/ and deploy again`,
      );
    }
    const deployment = new s3deploy.BucketDeployment(this, 'BuilderFiles', {
      destinationBucket: site,
      sources: [
        builderBuilt ? s3deploy.Source.asset(s.builderDir) : s3deploy.Source.data('index.html', PLACEHOLDER_PAGE),
        // What the builder needs to find the APIs and sign users in.
        s3deploy.Source.jsonData('config.json', {
          apiUrl: publicUrl,
          webSocketUrl: wsStage.url,
          region: Aws.REGION,
          userPoolId: this.userPool.userPoolId,
          userPoolClientId: this.userPoolClient.userPoolClientId,
        }),
      ],
      distribution: this.distribution,
      distributionPaths: ['/*'],
      memoryLimit: 512,
    });
    acknowledgeBucketDeployment(this, site);
    void deployment;

    // ------------------------------------------------------------------ outputs

    const out = (oid: string, value: string, description: string) => new CfnOutput(this, oid, { value, description });
    out('HttpApiUrl', publicUrl, 'HTTP API (CONCERTMASTER_PUBLIC_URL)');
    out('WebSocketUrl', wsStage.url, 'WebSocket API for live status (add ?token=)');
    out('BuilderUrl', builderUrl, 'The builder (CloudFront)');
    out('UserPoolId', this.userPool.userPoolId, 'Cognito user pool (create users with custom:org and custom:role)');
    out('UserPoolClientId', this.userPoolClient.userPoolClientId, 'Cognito app client of the builder');
    out('TableName', this.table.tableName, 'Control-plane DynamoDB table');
    out('DatasetsTableName', this.datasetsTable.tableName, 'DynamoDB table action.store writes to');
    out('TriggersQueueUrl', this.triggersQueue.queueUrl, 'SQS queue the trigger-consumer reads');
    out('AlarmTopicArn', this.alarmTopic.topicArn, 'SNS topic of the alarms (subscribe to it)');
    out('SigningKeySecretArn', signingKey.secretArn, 'Secrets Manager secret holding the HS256 signing key');
  }
}

/** `node-runner` → `NodeRunner`. */
export function pascal(name: string): string {
  return name
    .split('-')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
}

/**
 * BucketDeployment brings a CDK-owned Lambda (a singleton per stack) and its role; what nag
 * finds there is CDK's design, acknowledged here on those constructs only.
 */
function acknowledgeBucketDeployment(stack: Stack, site: s3.Bucket): void {
  const handlers: IConstruct[] = stack.node.children.filter((c) => c.node.id.startsWith('Custom::CDKBucketDeployment'));
  if (handlers.length !== 1) throw new Error('expected one BucketDeployment handler');
  const handler = handlers[0];
  const owned = "CDK's BucketDeployment handler (runs only during deployments; its role is created by aws-cdk-lib)";
  acknowledge(
    handler,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    `${owned} has the AWS managed basic execution role for its logs, which aws-cdk-lib does not let be replaced.`,
  );
  acknowledge(handler, 'AwsSolutions-L1', `${owned} uses the runtime aws-cdk-lib pins with its own code.`);
  const qualifier = stack.node.tryGetContext('@aws-cdk/core:bootstrapQualifier') ?? DefaultStackSynthesizer.DEFAULT_QUALIFIER;
  const stagingBucket = flatten(DefaultStackSynthesizer.DEFAULT_FILE_ASSETS_BUCKET_NAME.replace('${Qualifier}', qualifier));
  const copy = `${owned} copies the builder files from the CDK asset bucket into the builder bucket and prunes old ones: object-level S3 action families on those two buckets only.`;
  for (const finding of [
    'Action::s3:GetBucket*',
    'Action::s3:GetObject*',
    'Action::s3:List*',
    'Action::s3:Abort*',
    'Action::s3:DeleteObject*',
    `Resource::arn:<AWS::Partition>:s3:::${stagingBucket}/*`,
    `Resource::${flatten(stack.resolve(site.bucketArn))}/*`,
  ]) {
    acknowledge(handler, `AwsSolutions-IAM5[${finding}]`, copy);
  }
  acknowledge(
    handler,
    'AwsSolutions-IAM5[Resource::*]',
    `${owned} invalidates the builder distribution after a deployment; cloudfront:CreateInvalidation and GetInvalidation support no resource-level scoping in aws-cdk-lib's grant.`,
  );
}
