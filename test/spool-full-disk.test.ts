/**
 * The SQLite spool on a real full file system (a 512 KiB tmpfs): the write
 * that finds the disk full fails as SpoolFullError and leaves the spool as
 * it was; once there is room again the same spool goes on.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SpoolError, SpoolFullError } from '../daemon/spool/spool-port.js';
import { SqliteSpool } from '../daemon/spool/sqlite-spool.js';
import { rec, snapshot } from './helpers/spool-contract.js';

describe('sqlite spool on a full file system', () => {
  it('a write that finds the disk full is SpoolFullError and leaves the spool as it was; with room again it goes on', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-fullfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', dir]);
    try {
      const { spool } = SqliteSpool.open({ file: join(dir, 'spool.db'), synchronous: 'normal' });
      try {
        let seq = 1;
        let before: unknown;
        let failure: unknown;
        for (let i = 0; i < 200 && failure === undefined; i++) {
          before = snapshot(spool);
          try {
            spool.write(Array.from({ length: 4 }, () => rec(seq++, 'a', 2_000)));
          } catch (err) {
            failure = err;
          }
        }
        assert.ok(failure instanceof SpoolFullError, `the disk filled up: ${String(failure)}`);
        assert.equal((failure as { cause?: { code?: string } }).cause?.code, 'SQLITE_FULL');
        assert.deepEqual(snapshot(spool), before, 'the failed batch left nothing behind');
        const held = spool.summary()[0]?.records ?? 0;
        assert.ok(held >= 4 && held % 4 === 0, `whole batches fitted (${held} records)`);
        // With a WAL that has no room to grow even a delete fails (the quota and
        // max_page_count exist to keep the spool from getting here), and changes nothing.
        assert.throws(() => spool.deleteOldest('a', 0, 1e9, 4), (err: unknown) => err instanceof SpoolError && !(err instanceof SpoolFullError));
        assert.deepEqual(snapshot(spool), before);
        // The operator frees space: the same spool goes on.
        execFileSync('mount', ['-o', 'remount,size=4m', dir]);
        assert.deepEqual(spool.deleteOldest('a', 0, 1e9, held), { records: held, payloadBytes: held * 2_000 });
        spool.write([rec(seq, 'b', 100), rec(seq + 1, 'b', 100)]);
        assert.deepEqual(spool.summary(), [{ stream: 'b', records: 2, payloadBytes: 200, maxSeq: seq + 1 }]);
      } finally {
        spool.close();
      }
    } finally {
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
