/**
 * Temp directories for tests: every one is named `spillway-<label>-XXXXXX`
 * under the OS temp dir (`npm test` points TMPDIR at a directory of its own,
 * scripts/run-tests.ts), and removed, private keys first, by
 * `removeTempDir` or at the latest when the test process exits.
 */
import { mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TMP_PREFIX = 'spillway-';

/** Made by this process and not removed yet. */
const live = new Set<string>();
process.once('exit', () => {
  for (const dir of live) removeTempDirSync(dir);
});

export async function makeTempDir(label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${TMP_PREFIX}${label}-`));
  live.add(dir);
  return dir;
}

export function makeTempDirSync(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${TMP_PREFIX}${label}-`));
  live.add(dir);
  return dir;
}

export async function removeTempDir(dir: string | undefined): Promise<void> {
  if (dir !== undefined) removeTempDirSync(dir);
}

/** Private keys first (a crash halfway leaves no key behind), then the rest. */
/** In the suite's temp directory (scripts/run-tests.ts): the entries the system temp directory had when the suite began, a JSON list, for test/zz-tmp-clean.test.ts. */
export const TMP_BEFORE_FILE = '.tmp-before.json';

export function removeTempDirSync(dir: string): void {
  live.delete(dir);
  for (const key of findKeys(dir)) unlinkSync(key);
  rmSync(dir, { recursive: true, force: true });
}

function findKeys(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return findKeys(path);
    return /\.key$|key\.pem$|private/i.test(e.name) ? [path] : [];
  });
}
