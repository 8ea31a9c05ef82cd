// What cdk-nag finds in an app, with and without the stack's acknowledgments, and the
// README's table of acknowledgments.
import { Stack, Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';

export interface Finding {
  readonly rule: string;
  readonly path: string;
  readonly severity: string;
}

export interface Acknowledgment {
  /** Construct path (from the app) of the construct the acknowledgment is on. */
  readonly path: string;
  readonly rule: string;
  readonly reason: string;
}

function findings(pack: AwsSolutionsChecks, app: App): Finding[] {
  const report = pack.validateScope(app);
  return report.violations.flatMap((v) =>
    v.violatingResources.map((r) => ({ rule: v.ruleName, path: r.constructPath ?? '', severity: v.severity ?? '' })),
  );
}

/** Findings the stack did not acknowledge (what fails `cdk synth`). */
export function unacknowledged(app: App): Finding[] {
  return findings(new AwsSolutionsChecks(app), app);
}

/** Every finding, acknowledged or not. */
export function everyFinding(app: App): Finding[] {
  const pack = new AwsSolutionsChecks(app);
  // cdk-nag asks this (private) method; answering "no" shows what the acknowledgments hide.
  (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
  return findings(pack, app);
}

/** The acknowledgments recorded in the construct tree (Validations.of(x).acknowledge). */
export function acknowledgments(app: App): Acknowledgment[] {
  const out: Acknowledgment[] = [];
  for (const c of app.node.findAll()) {
    for (const m of c.node.metadata) {
      if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(m.data as Record<string, string>)) {
        out.push({ path: c.node.path, rule: id.replace(/^annotation::/i, ''), reason });
      }
    }
  }
  return out;
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/**
 * The README's suppression table: one row per (construct, reason), listing the rules (IAM5
 * findings by what they allow) that reason covers.
 */
export function nagTable(app: App): string {
  const rows = new Map<string, { where: string; rules: string[]; reason: string }>();
  for (const a of acknowledgments(app)) {
    const where = a.path.split('/').slice(1).join('/');
    const key = `${where}\u0000${a.reason}`;
    const row = rows.get(key) ?? { where, rules: [], reason: a.reason };
    row.rules.push(a.rule.replace(/^AwsSolutions-/, ''));
    rows.set(key, row);
  }
  const lines = ['| construct | rule (finding) | reason |', '|---|---|---|'];
  for (const r of rows.values()) {
    // Reasons are prose: `<org>` must not read as an HTML tag. Code spans keep `<` as it is.
    const reason = cell(r.reason).replace(/</g, '&lt;').replace(/>/g, '&gt;');
    lines.push(`| \`${cell(r.where)}\` | ${r.rules.map((x) => `\`${cell(x)}\``).join('<br>')} | ${reason} |`);
  }
  return lines.join('\n');
}

/** The stack of an app with one stack. */
export function onlyStack(app: App): Stack {
  const stacks = app.node.children.filter((c): c is Stack => Stack.isStack(c));
  if (stacks.length !== 1) throw new Error('expected one stack');
  return stacks[0];
}
