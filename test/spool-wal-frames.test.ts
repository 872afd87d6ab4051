/**
 * The quota's estimate of what a transaction appends to the WAL
 * (spool-port.ts `walFrames`, `deleteFrames`) against real SQLite: before
 * each write or delete the WAL is truncated to nothing, so its size after is
 * exactly the frames that transaction appended. Rows of 10 B to 9 kB, 1 to
 * 256 a transaction, appended, written between another stream's rows, and
 * deleted oldest first alone or among three other streams' rows. The
 * estimate the quota used before (a write's bytes in whole pages plus 4)
 * fell short, and the quota passed on disk (test/spool-quota-disk.test.ts).
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteSpool } from '../daemon/spool/sqlite-spool.js';
import { SPOOL_ROW_OVERHEAD_BYTES, deleteFrames, walFrames, type StoredRecord } from '../daemon/spool/spool-port.js';
import { makeTempDir, removeTempDir } from './helpers/tmp.js';

const PAGE = 4_096;
const FRAME = PAGE + 24;
const WAL_HEADER = 32;
const ROUNDS = 3;

type Mode = 'append' | 'between' | 'delete' | 'delete among four';

/** The frames each transaction of `mode` appended, and what the estimate allowed for it. */
async function measure(payload: number, batch: number, mode: Mode): Promise<Array<{ appended: number; bound: number; before: number }>> {
  const dir = await makeTempDir('wal-frames');
  const file = join(dir, 'spool.db');
  const { spool } = SqliteSpool.open({ file, synchronous: 'normal' });
  const checkpointer = new Database(file);
  try {
    const row = (seq: number, stream: string): StoredRecord => ({ seq, stream, prio: 0, ts: 0, born: 0, attempt: 0, payload: new Uint8Array(payload).fill(120) });
    const rowBytes = payload + SPOOL_ROW_OVERHEAD_BYTES;
    const streams = mode === 'delete among four' ? ['a', 'b', 'c', 'd'] : ['a'];
    // The rows already there: odd seqs when others are to be written between them.
    const base = Math.max(300, ROUNDS * batch * streams.length);
    const seqOf = (i: number) => (mode === 'between' ? 2 * i + 1 : i + 1);
    for (let i = 0; i < base; i += 100) spool.write(Array.from({ length: Math.min(100, base - i) }, (_, k) => row(seqOf(i + k), streams[(i + k) % streams.length] as string)));
    let rows = base;
    let streamRows = base / streams.length;
    let next = seqOf(base);
    const out = [];
    for (let r = 0; r < ROUNDS; r++) {
      checkpointer.pragma('wal_checkpoint(TRUNCATE)');
      assert.equal(statSync(`${file}-wal`).size, 0, 'the WAL starts empty');
      let bound: number;
      if (mode === 'append') {
        spool.write(Array.from({ length: batch }, () => row(next++, 'a')));
        bound = walFrames(PAGE, batch * rowBytes);
      } else if (mode === 'between') {
        spool.write(Array.from({ length: batch }, (_, k) => row(2 * (r * batch + k) + 2, 'b')));
        bound = walFrames(PAGE, batch * rowBytes, true);
      } else {
        bound = deleteFrames(PAGE, rows * rowBytes, streamRows, batch);
        const gone = spool.deleteOldest('a', 0, Number.MAX_SAFE_INTEGER, batch);
        assert.equal(gone.records, batch);
        rows -= batch;
        streamRows -= batch;
      }
      const wal = statSync(`${file}-wal`).size;
      out.push({ appended: wal - WAL_HEADER, bound, before: (Math.ceil((batch * rowBytes) / PAGE) + 4) * FRAME });
    }
    return out;
  } finally {
    checkpointer.close();
    spool.close();
    await removeTempDir(dir);
  }
}

describe('the WAL frames a spool transaction appends', () => {
  for (const mode of ['append', 'between', 'delete', 'delete among four'] as const) {
    it(`${mode}: never more than the quota allows for`, async () => {
      let shortBefore = 0;
      for (const payload of [10, 400, 2_100, 9_000]) {
        for (const batch of [1, 10, 256]) {
          for (const { appended, bound, before } of await measure(payload, batch, mode)) {
            assert.ok(appended <= bound, `${batch} rows of ${payload} B, ${mode}: ${appended / FRAME} frames appended, ${bound / FRAME} allowed`);
            if (appended > before) shortBefore++;
          }
        }
      }
      // What the quota allowed a write before: its bytes in whole pages plus 4.
      if (mode === 'append' || mode === 'between') assert.ok(shortBefore > 0, 'the estimate before fell short of some write');
    });
  }
});
