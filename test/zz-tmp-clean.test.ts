/**
 * Runs last (the test runner sorts the files; zz- sorts last): the suite's
 * temp directory (TMPDIR, a fresh /tmp/spillway-suite-XXXXXX set by
 * scripts/run-tests.ts for every test and every program a test starts) must
 * be empty, so every test removed what it made; and the directory above it
 * (/tmp) must hold no entry it did not hold when the suite began, so no
 * program a test started wrote there, ignoring TMPDIR. Entries of other
 * runs going on at the same time are not this suite's: another suite's
 * `spillway-suite-*` (its own guard checks it) and a mutation run's
 * `spillway-mutant-*` (scripts/mutant-tests.ts removes each one). No test
 * names a path in /tmp itself (which would escape TMPDIR).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TMP_BEFORE_FILE } from './helpers/tmp.js';


/**
 * Prefixes of directories left by tests of files the lead owns
 * (daemon/core/fifo-contract.test.ts: one per property run;
 * daemon/core/pipeline.test.ts): allowed until those tests remove them.
 */
const PENDING: string[] = [];
const DIST = join(dirname(fileURLToPath(import.meta.url)), '..');

it('the suite left nothing in its temp directory', () => {
  const suite = process.env['SPILLWAY_SUITE_TMPDIR'];
  assert.ok(suite !== undefined && suite !== '', 'run the whole suite with npm test (scripts/run-tests.ts sets SPILLWAY_SUITE_TMPDIR)');
  const left = readdirSync(suite).filter((n) => n !== TMP_BEFORE_FILE && !PENDING.some((p) => n.startsWith(p)));
  assert.deepEqual(left, [], `left behind in ${suite}`);
});

it('the suite left nothing in /tmp itself', () => {
  const suite = process.env['SPILLWAY_SUITE_TMPDIR'];
  assert.ok(suite !== undefined && suite !== '', 'run the whole suite with npm test (scripts/run-tests.ts sets SPILLWAY_SUITE_TMPDIR)');
  const had = new Set(JSON.parse(readFileSync(join(suite, TMP_BEFORE_FILE), 'utf8')) as string[]);
  const gained = readdirSync(dirname(suite)).filter((n) => !had.has(n) && n !== basename(suite) && !n.startsWith('spillway-suite-') && !n.startsWith('spillway-mutant-'));
  assert.deepEqual(gained, [], `left behind in ${dirname(suite)}`);
});

it('no test writes to a path in /tmp itself', () => {
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.js') && (dir.includes('/test') || e.name.endsWith('.test.js')) ? [join(dir, e.name)] : []));
  const hardcoded = files(DIST).filter((f) => /['"`]\/tmp\//.test(readFileSync(f, 'utf8')));
  assert.deepEqual(hardcoded, []);
});
