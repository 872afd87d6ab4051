/**
 * Stryker's test command (`stryker.config.mjs`, docs/MUTATION.md): the test
 * files named, one at a time in the order given, stopping at the first that
 * fails. A mutant is then killed by the first fast file that notices it
 * instead of costing the whole suite, and fast-check stops at the first
 * failing sequence without shrinking it (`--import` of
 * `fc-stop-at-failure.js`): a shrink can take a minute, and the mutant is
 * killed either way. Only a surviving mutant runs every file, and the
 * property models run 300 random sequences each (`SPILLWAY_PROPERTY_RUNS`,
 * half of `npm test`'s; the groups' and the shares' a third of that): the
 * run then fits in a session, and a mutant they catch is mostly caught in
 * the first few.
 *
 * A mutant that makes a file hang (a loop that never ends) is stopped after
 * five times that file's time in Stryker's first run, the one without a
 * mutant (at least 10 s), and counts as killed: Stryker's own timeout is
 * the whole suite's time × 1.5 + 45 s, a minute and more for a hang in a
 * file that takes a second.
 *
 * Each file runs with TMPDIR at a fresh directory that is removed after it,
 * whatever became of the run: a file stopped with SIGKILL leaves nothing in
 * /tmp (its own cleanup never ran).
 *
 *   node dist/scripts/mutant-tests.js FILE.test.js ...
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { removeTempDirSync } from '../test/helpers/tmp.js';

const preload = join(dirname(fileURLToPath(import.meta.url)), 'fc-stop-at-failure.js');
const env = { ...process.env, SPILLWAY_PROPERTY_RUNS: process.env['SPILLWAY_PROPERTY_RUNS'] ?? '300' };
/** Each file's time in the run without a mutant, kept in the sandbox for the runs with one. */
const TIMES = '.mutant-test-times.json';
const first = process.env['__STRYKER_ACTIVE_MUTANT__'] === undefined;
const times: Record<string, number> = first ? {} : (JSON.parse(readFileSync(TIMES, 'utf8')) as Record<string, number>);
for (const file of process.argv.slice(2)) {
  const began = performance.now();
  const known = times[file];
  const timeout = known === undefined ? undefined : Math.ceil(Math.max(10_000, 5 * known));
  // The file itself, not `node --test` (which runs it in a child a timeout would leave running).
  const tmp = mkdtempSync(join(tmpdir(), 'spillway-mutant-'));
  const run = spawnSync(process.execPath, ['--import', preload, file], { stdio: 'inherit', env: { ...env, TMPDIR: tmp }, timeout, killSignal: 'SIGKILL' });
  removeTempDirSync(tmp);
  if (first) times[file] = performance.now() - began;
  if (run.status !== 0) {
    if (run.signal !== null) console.log(`# ${file}: stopped after ${timeout} ms (${run.signal})`);
    process.exit(run.status ?? 1);
  }
}
if (first) writeFileSync(TIMES, JSON.stringify(times));
