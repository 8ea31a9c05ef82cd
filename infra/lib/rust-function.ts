import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { Arch } from './config';

/** Every Lambda of ConcertMaster: the crate under functions/ and the artifact cargo-lambda builds. */
export const FUNCTION_NAMES = [
  'api',
  'node-runner',
  'ws-connect',
  'ws-disconnect',
  'ws-message',
  'status-pusher',
  'trigger-consumer',
  'run-events',
  'scheduler',
] as const;

export type FunctionName = (typeof FUNCTION_NAMES)[number];

/**
 * Where the artifact of `name` is: `<dir>/<name>/bootstrap.zip` (what
 * `cargo lambda build --release --output-format zip` writes), else a directory
 * `<dir>/<name>/` holding a `bootstrap` executable (`--output-format binary`). Undefined when
 * neither exists.
 */
export function artifactPath(dir: string, name: string): string | undefined {
  const zip = path.join(dir, name, 'bootstrap.zip');
  if (fs.existsSync(zip)) return zip;
  if (fs.existsSync(path.join(dir, name, 'bootstrap'))) return path.join(dir, name);
  return undefined;
}

/** Fails with one message naming every function whose artifact is missing. */
export function checkArtifacts(dir: string): void {
  const missing = FUNCTION_NAMES.filter((n) => artifactPath(dir, n) === undefined);
  if (missing.length > 0) {
    throw new Error(
      `no Lambda artifact for ${missing.join(', ')} in ${dir} ` +
        `(expected <name>/bootstrap.zip): run scripts/build-lambdas from the repository root ` +
        `(cargo lambda build --release --arm64 --output-format zip), or pass -c lambdaDir=DIR`,
    );
  }
}

/** The architecture of an ELF executable's header (`e_machine`), undefined if not ELF. */
export function elfArch(head: Buffer): Arch | 'other' | undefined {
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const machine = head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
  return machine === 0xb7 ? 'arm64' : machine === 0x3e ? 'x86_64' : 'other';
}

/**
 * The first bytes of the artifact's `bootstrap`: the file itself, or the first entry of
 * `bootstrap.zip` (stored or deflated) when it is named `bootstrap`. Undefined if unreadable.
 */
export function bootstrapHead(artifact: string): Buffer | undefined {
  try {
    if (!artifact.endsWith('.zip')) {
      const fd = fs.openSync(path.join(artifact, 'bootstrap'), 'r');
      try {
        const head = Buffer.alloc(64);
        return head.subarray(0, fs.readSync(fd, head, 0, 64, 0));
      } finally {
        fs.closeSync(fd);
      }
    }
    const zip = fs.readFileSync(artifact);
    if (zip.length < 30 || zip.readUInt32LE(0) !== 0x04034b50) return undefined;
    const method = zip.readUInt16LE(8);
    const nameLength = zip.readUInt16LE(26);
    const extraLength = zip.readUInt16LE(28);
    if (zip.subarray(30, 30 + nameLength).toString() !== 'bootstrap') return undefined;
    const data = zip.subarray(30 + nameLength + extraLength, 30 + nameLength + extraLength + 65536);
    if (method === 0) return data.subarray(0, 64);
    if (method === 8) return zlib.inflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, 64);
    return undefined;
  } catch {
    return undefined;
  }
}

/**
 * Fails when an artifact is an executable for another architecture than the functions'
 * (a binary built for the host deployed to arm64 Lambdas would fail at every cold start).
 * Files that are not ELF (the tests' stand-ins) are not judged.
 */
export function checkArchitecture(dir: string, architecture: Arch): void {
  const wrong: string[] = [];
  for (const name of FUNCTION_NAMES) {
    const artifact = artifactPath(dir, name);
    const head = artifact === undefined ? undefined : bootstrapHead(artifact);
    const arch = head === undefined ? undefined : elfArch(head);
    if (arch !== undefined && arch !== architecture) wrong.push(`${name} (${arch})`);
  }
  if (wrong.length > 0) {
    throw new Error(
      `Lambda artifacts in ${dir} are not built for ${architecture}: ${wrong.join(', ')}. ` +
        `Rebuild them (scripts/build-lambdas builds arm64) or pass -c architecture=<their architecture>`,
    );
  }
}

export interface RustFunctionProps {
  readonly name: FunctionName;
  readonly description: string;
  readonly lambdaDir: string;
  readonly architecture: Arch;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly logRetentionDays: number;
  readonly environment?: Record<string, string>;
}

/**
 * One Rust Lambda: `provided.al2023`, handler `bootstrap`, its own role (no managed policy:
 * only what the stack grants, plus writing to its own log group) and its own log group with a
 * retention. Logs are JSON with Lambda's advanced logging controls, which also set
 * `AWS_LAMBDA_LOG_LEVEL` for the functions' log setup.
 */
export class RustFunction extends Construct {
  readonly fn: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RustFunctionProps) {
    super(scope, id);
    const artifact = artifactPath(props.lambdaDir, props.name);
    if (artifact === undefined) checkArtifacts(props.lambdaDir);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `ConcertMaster ${props.name} function`,
    });
    this.logGroup.grantWrite(this.role);
    this.fn = new lambda.Function(this, 'Function', {
      description: props.description,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: props.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(artifact!, { exclude: artifact!.endsWith('.zip') ? undefined : ['*.zip'] }),
      memorySize: props.memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      environment: props.environment,
    });
  }

  addEnvironment(key: string, value: string): void {
    this.fn.addEnvironment(key, value);
  }
}
