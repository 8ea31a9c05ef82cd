// npm run nag-table — prints the cdk-nag acknowledgment table for README.md (between the
// `nag-table` markers; test/nag.test.ts checks that the README has exactly this table).
import { build } from './app';
import { nagTable } from './nag';

console.log(nagTable(build().app));
