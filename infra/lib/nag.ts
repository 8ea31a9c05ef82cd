import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';

/**
 * cdk-nag findings the stack accepts, each with its reason. cdk-nag (v3) runs as a CDK
 * validation plugin: an unacknowledged finding fails `cdk synth`. The README's suppression
 * table is generated from these acknowledgments (`npm run nag-table`) and a test keeps the two
 * equal.
 */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (reason.trim().length < 20) throw new Error(`acknowledgment of ${id} needs a real reason`);
  Validations.of(scope).acknowledge({ id, reason });
}

/** How cdk-nag prints a policy resource (its `flattenCfnReference`): `<Logical.Attr>`, joins concatenated. */
export function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/}/g, '>');
  const o = node as Record<string, unknown>;
  if (o['Fn::Join']) {
    const [sep, items] = o['Fn::Join'] as [string, unknown[]];
    return items.map(flatten).join(sep);
  }
  if (o['Fn::Sub']) return flatten(o['Fn::Sub']);
  if (o['Fn::GetAtt']) {
    const [res, attr] = o['Fn::GetAtt'] as [unknown, unknown];
    return `<${flatten(res)}.${flatten(attr)}>`;
  }
  if (o['Fn::ImportValue']) return flatten(o['Fn::ImportValue']);
  if (o['Ref']) return `<${flatten(o['Ref'])}>`;
  return JSON.stringify(node);
}

/** The AwsSolutions-IAM5 finding ids of a statement's wildcard actions and resources. */
export function wildcardFindings(scope: IConstruct, statement: iam.PolicyStatement): string[] {
  const json = Stack.of(scope).resolve(statement.toStatementJson()) as { Action?: unknown; Resource?: unknown };
  const list = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  const findings: string[] = [];
  for (const a of list(json.Action) as string[]) if (a.includes('*')) findings.push(`Action::${a}`);
  for (const r of list(json.Resource)) {
    const f = flatten(r);
    if (f.includes('*')) findings.push(`Resource::${f}`);
  }
  return findings.map((f) => `AwsSolutions-IAM5[${f}]`);
}

/**
 * Adds `statement` to `role`'s policy. If it has wildcards (an action family, or a resource
 * whose name is only known at run time), they are acknowledged with `reason`, finding by
 * finding, so that any other wildcard on the role still fails synth.
 */
export function allow(role: iam.IRole, statement: iam.PolicyStatement, reason?: string): void {
  role.addToPrincipalPolicy(statement);
  const findings = wildcardFindings(role, statement);
  if (findings.length > 0 && reason === undefined) {
    throw new Error(`statement ${JSON.stringify(statement.toStatementJson())} has wildcards and no reason`);
  }
  for (const id of findings) acknowledge(role, id, reason!);
}
