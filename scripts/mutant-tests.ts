/**
 * Stryker's test command (`stryker.config.mjs`, docs/MUTATION.md): the test
 * files named, one at a time in the order given, stopping at the first that
 * fails. A mutant is then killed by the first fast file that notices it
 * instead of costing the whole suite, and fast-check stops at the first
 * failing sequence without shrinking it (`--import` of
 * `fc-stop-at-failure.js`): a shrink can take a minute, and the mutant is
 * killed either way. Only a surviving mutant runs every file, and the
 * property models run 300 random sequences each (`SPILLWAY_PROPERTY_RUNS`,
 * half of `npm test`'s; the groups' a third of that): the run then fits in
 * a session, and a mutant they catch is mostly caught in the first few.
 *
 *   node dist/scripts/mutant-tests.js FILE.test.js ...
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const preload = join(dirname(fileURLToPath(import.meta.url)), 'fc-stop-at-failure.js');
const env = { ...process.env, SPILLWAY_PROPERTY_RUNS: process.env['SPILLWAY_PROPERTY_RUNS'] ?? '300' };
for (const file of process.argv.slice(2)) {
  const run = spawnSync(process.execPath, ['--import', preload, '--test', file], { stdio: 'inherit', env });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
