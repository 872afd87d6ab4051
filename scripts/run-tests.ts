/**
 * `npm test`: every compiled `*.test.js` under dist/, one file at a time,
 * with TMPDIR pointing at a fresh `/tmp/spillway-suite-XXXXXX`, so that
 * whatever the tests (and the programs they start) put in a temp directory
 * lands there. The last file, test/zz-tmp-clean.test.ts, fails if anything
 * is left in it, or if /tmp itself gained an entry during the suite (a
 * program that ignores TMPDIR); the directory is then removed, private keys
 * first, and the runner exits with the test runner's code.
 *
 *   node dist/scripts/run-tests.js [NODE_TEST_OPTION ...] [FILE.test.js ...]
 *
 * runs only the files named (and the guard), e.g. while working on them.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeTempDirSync, TMP_BEFORE_FILE } from '../test/helpers/tmp.js';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SUITE_TMP_ENV = 'SPILLWAY_SUITE_TMPDIR';

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return testFiles(path);
    return e.name.endsWith('.test.js') ? [path] : [];
  });
}

// `node dist/scripts/run-tests.js [FILE.test.js ...]`: only those files (and the guard, last).
const GUARD = join(DIST, 'test', 'zz-tmp-clean.test.js');
const chosen = process.argv.slice(2).filter((a) => a.endsWith('.test.js'));
const options = process.argv.slice(2).filter((a) => !a.endsWith('.test.js'));
const files = (chosen.length > 0 ? [...chosen.map((f) => join(process.cwd(), f)), GUARD] : testFiles(DIST))
  .map((f) => relative(process.cwd(), f))
  .filter((f, i, all) => all.indexOf(f) === i)
  .sort();
const before = readdirSync(tmpdir());
const suiteTmp = mkdtempSync(join(tmpdir(), 'spillway-suite-'));
// Searchable by other users, as /tmp is (not listable): tests check what another user (the service user) can reach.
chmodSync(suiteTmp, 0o711);
writeFileSync(join(suiteTmp, TMP_BEFORE_FILE), JSON.stringify(before));
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...options, ...files], {
  stdio: 'inherit',
  env: { ...process.env, TMPDIR: suiteTmp, [SUITE_TMP_ENV]: suiteTmp },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  removeTempDirSync(suiteTmp);
  process.exit(code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0)));
});
