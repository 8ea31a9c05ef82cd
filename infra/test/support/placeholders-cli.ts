// node --import tsx test/support/placeholders-cli.ts DIR — writes the asset stand-ins into DIR
// (scripts/lib/infra.sh synthesizes with -c lambdaDir=DIR/lambda -c builderDir=DIR/builder).
import { makePlaceholders } from './placeholders';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: placeholders-cli.ts DIR');
  process.exit(2);
}
const p = makePlaceholders(dir);
console.log(`${p.lambdaDir} ${p.builderDir}`);
