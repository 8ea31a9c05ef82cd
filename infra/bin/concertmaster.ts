#!/usr/bin/env node
// The CDK app: `npx cdk synth` / `npx cdk deploy` from infra/ (cdk.json runs this file).
// Settings come from context (-c key=value); see README.md.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { settingsFromContext } from '../lib/config';
import { ConcertMasterStack } from '../lib/concertmaster-stack';

const app = new App();
// cdk-nag's AwsSolutions pack as a validation plugin: an unacknowledged finding fails synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
const stackName = app.node.tryGetContext('stackName') ?? 'ConcertMaster';
// No `env`: the template is environment-agnostic (the account and region of the deploying
// credentials are used).
new ConcertMasterStack(app, stackName, {
  description: 'ConcertMaster: workflows on AWS Step Functions (tables, queues, functions, APIs, builder)',
  settings: settingsFromContext(app.node),
});
app.synth();
