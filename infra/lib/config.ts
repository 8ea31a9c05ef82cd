import * as path from 'node:path';
import type { Node } from 'constructs';

/** The infra/ directory (relative defaults are resolved against it). */
export const INFRA_DIR = path.resolve(__dirname, '..');

export type Arch = 'arm64' | 'x86_64';

/** What the stack can be told (as stack props, or as `-c key=value` context through `bin/`). */
export interface Settings {
  /** Where `cargo lambda build --output-format zip` wrote `<name>/bootstrap.zip` (context `lambdaDir`). */
  readonly lambdaDir: string;
  /** The builder's static files (`frontend/dist`; context `builderDir`). Missing → a placeholder page. */
  readonly builderDir: string;
  /** CPU architecture of every function (context `architecture`, default arm64). */
  readonly architecture: Arch;
  /** Email address subscribed to the alarm topic (context `alarmEmail`; none by default). */
  readonly alarmEmail?: string;
  /** Origins allowed by the HTTP API's CORS besides the builder's (context `corsOrigins`, comma-separated). */
  readonly extraCorsOrigins: string[];
  /** Days the functions' and APIs' log groups keep events (context `logRetentionDays`, default 30). */
  readonly logRetentionDays: number;
  /** Plugin Lambdas state machines may invoke are named with this prefix (context `pluginFunctionPrefix`). */
  readonly pluginFunctionPrefix: string;
  /** `action.queue` queues are `<prefix><queue>` (context `queueNamePrefix`). */
  readonly queueNamePrefix: string;
  /** EventBridge Scheduler schedule group of schedule triggers (context `scheduleGroupName`). */
  readonly scheduleGroupName: string;
  /** HTTP API stage throttling: steady requests per second and burst (context `apiRateLimit`, `apiBurstLimit`). */
  readonly apiRateLimit: number;
  readonly apiBurstLimit: number;
}

export const DEFAULTS = {
  lambdaDir: path.resolve(INFRA_DIR, '..', 'target', 'lambda'),
  builderDir: path.resolve(INFRA_DIR, '..', 'frontend', 'dist'),
  architecture: 'arm64' as Arch,
  logRetentionDays: 30,
  pluginFunctionPrefix: 'concertmaster-plugin-',
  queueNamePrefix: 'concertmaster-',
  scheduleGroupName: 'concertmaster',
  apiRateLimit: 200,
  apiBurstLimit: 400,
};

/** Log retention periods CloudWatch Logs accepts. */
const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

function str(node: Node, key: string): string | undefined {
  const v = node.tryGetContext(key);
  if (v === undefined || v === null || v === '') return undefined;
  return String(v);
}

function int(node: Node, key: string, dflt: number): number {
  const v = str(node, key);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`context ${key} must be a positive integer, got \`${v}\``);
  return n;
}

/** Checks settings given as props (the same checks as for context). */
export function checkSettings(s: Settings): Settings {
  if (s.architecture !== 'arm64' && s.architecture !== 'x86_64') {
    throw new Error(`architecture must be arm64 or x86_64, got \`${s.architecture}\``);
  }
  if (!RETENTION_DAYS.includes(s.logRetentionDays)) {
    throw new Error(`logRetentionDays must be one of ${RETENTION_DAYS.join(', ')}, got ${s.logRetentionDays}`);
  }
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(s.pluginFunctionPrefix)) {
    throw new Error(`pluginFunctionPrefix must be 1-40 of [A-Za-z0-9_-], got \`${s.pluginFunctionPrefix}\``);
  }
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(s.queueNamePrefix)) {
    throw new Error(`queueNamePrefix must be 1-40 of [A-Za-z0-9_-], got \`${s.queueNamePrefix}\``);
  }
  if (!/^[0-9a-zA-Z-_.]{1,64}$/.test(s.scheduleGroupName)) {
    throw new Error(`scheduleGroupName must be 1-64 of [0-9a-zA-Z-_.], got \`${s.scheduleGroupName}\``);
  }
  for (const o of s.extraCorsOrigins) {
    if (!/^https?:\/\/[^/\s]+$/.test(o)) throw new Error(`corsOrigins: \`${o}\` is not an origin (scheme://host[:port])`);
  }
  return s;
}

/** Settings from the app's context (`cdk.json` or `-c key=value`), defaults for what is not set. */
export function settingsFromContext(node: Node): Settings {
  const arch = str(node, 'architecture') ?? DEFAULTS.architecture;
  return checkSettings({
    lambdaDir: path.resolve(str(node, 'lambdaDir') ?? DEFAULTS.lambdaDir),
    builderDir: path.resolve(str(node, 'builderDir') ?? DEFAULTS.builderDir),
    architecture: arch as Arch,
    alarmEmail: str(node, 'alarmEmail'),
    extraCorsOrigins: (str(node, 'corsOrigins') ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter((o) => o.length > 0),
    logRetentionDays: int(node, 'logRetentionDays', DEFAULTS.logRetentionDays),
    pluginFunctionPrefix: str(node, 'pluginFunctionPrefix') ?? DEFAULTS.pluginFunctionPrefix,
    queueNamePrefix: str(node, 'queueNamePrefix') ?? DEFAULTS.queueNamePrefix,
    scheduleGroupName: str(node, 'scheduleGroupName') ?? DEFAULTS.scheduleGroupName,
    apiRateLimit: int(node, 'apiRateLimit', DEFAULTS.apiRateLimit),
    apiBurstLimit: int(node, 'apiBurstLimit', DEFAULTS.apiBurstLimit),
  });
}
