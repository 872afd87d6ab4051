/**
 * writeAtomically and fsyncDir (daemon/spool/atomic-file.ts), checked in the
 * order of the system calls a real process makes (strace): durable, the temp
 * file is fsynced before its rename and the directory after it; not durable,
 * nothing is fsynced; every file opened is closed, even when a write fails.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { STRACE } from './helpers/strace.js';

const MODULE = new URL('../daemon/spool/atomic-file.js', import.meta.url).href;

/**
 * Runs `script` (with `writeAtomically` and `fsyncDir` imported) in a node
 * process under strace; returns the calls that name a path in `dir`, as
 * "call path" (the path relative to `dir`, `.` for `dir` itself, `full` for
 * /dev/full), a failed call marked `!`.
 */
function traced(dir: string, script: string): string[] {
  const log = join(dir, 'trace');
  const run = spawnSync(
    STRACE,
    ['-f', '-yy', '-e', 'trace=openat,write,fsync,fdatasync,close,rename,renameat,renameat2', '-o', log, '--', process.execPath, '--input-type=module', '-e', `import { writeAtomically, fsyncDir } from '${MODULE}';\n${script}`],
    { encoding: 'utf8' },
  );
  assert.equal(run.error, undefined, `strace runs (${STRACE})`);
  assert.equal(run.status, 0, `the traced script exits 0: ${run.stderr}`);
  const inDir = (p: string) => (p === dir ? '.' : p === '/dev/full' ? 'full' : p.startsWith(`${dir}/`) ? p.slice(dir.length + 1) : undefined);
  const calls: string[] = [];
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const m = /^(?:\d+ +)?(\w+)\((.*)\) += (-?\d+)/.exec(line);
    if (m === null) continue;
    const [, call, args, ret] = m as unknown as [string, string, string, string];
    const failed = Number(ret) < 0 ? ' !' : '';
    if (call.startsWith('rename')) {
      const names = [...args.matchAll(/"([^"]*)"/g)].map((x) => inDir(x[1] as string));
      if (names.every((n) => n !== undefined)) calls.push(`rename ${names.join(' ')}${failed}`);
      continue;
    }
    // openat names the path as a string, the others an fd as N</path>.
    const path = call === 'openat' ? /"([^"]*)"/.exec(args)?.[1] : /^\d+<([^<>]*)/.exec(args)?.[1];
    const rel = path === undefined ? undefined : inDir(path);
    if (rel !== undefined && rel !== 'trace') calls.push(`${call} ${rel}${failed}`);
  }
  return calls;
}

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-atomic-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('writeAtomically', () => {
  it('durable: the temp file written, fsynced and closed, renamed over the file, then the directory fsynced', () =>
    withDir((dir) => {
      const calls = traced(dir, `writeAtomically(${JSON.stringify(join(dir, 'state'))}, 'new\\n', true);`);
      assert.deepEqual(calls, ['openat state.tmp', 'write state.tmp', 'fsync state.tmp', 'close state.tmp', 'rename state.tmp state', 'openat .', 'fsync .', 'close .']);
      assert.equal(readFileSync(join(dir, 'state'), 'utf8'), 'new\n');
      assert.deepEqual(readdirSync(dir).sort(), ['state', 'trace'], 'no temp file left');
    }));

  it('not durable: the same steps without a single fsync', () =>
    withDir((dir) => {
      const calls = traced(dir, `writeAtomically(${JSON.stringify(join(dir, 'state'))}, 'new\\n', false);`);
      assert.deepEqual(calls, ['openat state.tmp', 'write state.tmp', 'close state.tmp', 'rename state.tmp state']);
      assert.equal(readFileSync(join(dir, 'state'), 'utf8'), 'new\n');
    }));

  it('a write that fails closes the temp file, renames nothing and throws', () =>
    withDir((dir) => {
      // The temp file's path leads to /dev/full, where every write fails with ENOSPC.
      const calls = traced(
        dir,
        `import { symlinkSync } from 'node:fs';
symlinkSync('/dev/full', ${JSON.stringify(join(dir, 'state.tmp'))});
try { writeAtomically(${JSON.stringify(join(dir, 'state'))}, 'new\\n', true); process.exit(3); } catch (err) { if (err.code !== 'ENOSPC') throw err; }`,
      );
      assert.deepEqual(calls, ['openat state.tmp', 'write full !', 'close full'], 'closed, and nothing fsynced or renamed');
    }));
});

describe('fsyncDir', () => {
  it('opens the directory, fsyncs it and closes it', () =>
    withDir((dir) => {
      assert.deepEqual(traced(dir, `fsyncDir(${JSON.stringify(dir)});`), ['openat .', 'fsync .', 'close .']);
    }));
});
