/**
 * SeqState (daemon/spool/seq-state.ts): a seq is never handed out twice nor
 * goes backwards, across restarts, a process killed while it reserves, and a
 * seq.next that a torn or failed write left truncated or garbled (which must
 * stop the start, never restart the count lower).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SpillwayError } from '../daemon/errors.js';
import { SEQ_BLOCK, SeqState } from '../daemon/spool/seq-state.js';

function withDir(body: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-seq-'));
  return Promise.resolve()
    .then(() => body(dir))
    .finally(() => rmSync(dir, { recursive: true, force: true }));
}

describe('SeqState', () => {
  it('reserves a block ahead of the seq it is given, on disk, and only when that seq is not covered yet', () =>
    withDir((dir) => {
      const s = SeqState.load(dir);
      assert.equal(s.reserved, 1, 'a fresh directory starts at 1');
      s.ensure(1);
      assert.equal(s.reserved, 1 + SEQ_BLOCK);
      assert.equal(readFileSync(join(dir, 'seq.next'), 'utf8'), `${1 + SEQ_BLOCK}\n`);
      writeFileSync(join(dir, 'seq.next'), 'sentinel');
      s.ensure(SEQ_BLOCK); // still covered: no write
      assert.equal(readFileSync(join(dir, 'seq.next'), 'utf8'), 'sentinel');
      s.ensure(1 + SEQ_BLOCK);
      assert.equal(s.reserved, 1 + 2 * SEQ_BLOCK);
      assert.equal(SeqState.load(dir).reserved, 1 + 2 * SEQ_BLOCK, 'a restart starts above every seq reserved');
    }));

  it('ignores a torn temp file left by a crash before the rename, and overwrites it on the next reservation', () =>
    withDir((dir) => {
      SeqState.load(dir).ensure(1);
      writeFileSync(join(dir, 'seq.next.tmp'), '20'); // half of "200001\n"
      const s = SeqState.load(dir);
      assert.equal(s.reserved, 1 + SEQ_BLOCK);
      s.ensure(s.reserved);
      assert.equal(SeqState.load(dir).reserved, 1 + 2 * SEQ_BLOCK);
    }));

  for (const [what, text] of [
    ['empty (a write lost after the rename)', ''],
    ['zero bytes of a preallocated block', '\0\0\0\0\0\0\0'],
    ['garbled', '2x0001\n'],
    ['negative', '-5\n'],
    ['fractional', '1.5\n'],
    ['truncated to a shorter number', '10000'],
    ['a number without its terminating newline', '100001'],
  ] as const) {
    it(`refuses a seq.next that is ${what}: the start fails with SEQ_STATE, seqs never restart lower`, () =>
      withDir((dir) => {
        SeqState.load(dir).ensure(1);
        writeFileSync(join(dir, 'seq.next'), text);
        assert.throws(
          () => SeqState.load(dir),
          (err: unknown) => err instanceof SpillwayError && err.code === 'SEQ_STATE' && err.message.includes(join(dir, 'seq.next')),
        );
      }));
  }

  it('a process killed while it reserves never leaves a reservation below a seq it handed out', () =>
    withDir(async (dir) => {
      // The child hands out seqs as the engine does (ensure before use) and prints each block it got.
      const child = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { SeqState } from ${JSON.stringify(new URL('../daemon/spool/seq-state.js', import.meta.url).href)};
           const s = SeqState.load(process.argv[1]);
           for (let next = s.reserved; ; next += ${SEQ_BLOCK}) { s.ensure(next); process.stdout.write(next + '\\n'); }`,
          dir,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.setEncoding('utf8');
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: string) => {
          out += chunk;
          // Kill it mid-stream, after a few dozen reservations: somewhere in a write, an fsync or a rename.
          if (out.split('\n').length > 40 && child.exitCode === null) {
            child.kill('SIGKILL');
            resolve();
          }
        });
      });
      await new Promise((r) => child.once('close', r));
      const handedOut = out.trim().split('\n').map(Number);
      const highest = Math.max(...handedOut.filter(Number.isSafeInteger));
      const after = SeqState.load(dir).reserved;
      assert.ok(after > highest, `restart at ${after} is above every seq handed out (up to ${highest})`);
      assert.ok(after <= highest + 2 * SEQ_BLOCK, `and wastes at most the block in progress (${after} vs ${highest})`);
    }));

  it('a seq.next that cannot be read is SEQ_STATE naming the file, with the cause', () =>
    withDir((dir) => {
      mkdirSync(join(dir, 'seq.next'));
      assert.throws(
        () => SeqState.load(dir),
        (err: unknown) =>
          err instanceof SpillwayError && err.code === 'SEQ_STATE' && err.message.startsWith(`cannot read ${join(dir, 'seq.next')}: `) && (err.cause as NodeJS.ErrnoException).code === 'EISDIR',
      );
    }));

  it('reserving leaves no file descriptor open', () =>
    withDir((dir) => {
      const fds = () => readdirSync('/proc/self/fd').length;
      const s = SeqState.load(dir);
      s.ensure(1);
      const before = fds();
      for (let i = 0; i < 50; i++) s.ensure(s.reserved);
      assert.equal(fds(), before);
      assert.equal(SeqState.load(dir).reserved, 1 + 51 * SEQ_BLOCK);
    }));
});
