/**
 * Bytes on disk per spooled row: the daemon's spool against a bare
 * better-sqlite3 table holding the same rows (seq, stream, prio, ts, born,
 * attempt, payload; rowid = seq, no index, default rollback journal).
 *
 * Both get ROWS 100-byte rows over STREAMS interleaved streams in
 * transactions of 256. The bare table's figure is its file after the
 * inserts; the spool's is the peak of db + WAL sampled after every batch
 * (its WAL checkpointed as the daemon does, by `WalGuard` in a worker) and
 * the file after a final TRUNCATE checkpoint.
 *
 *   node dist/scripts/bench/spool-layout.js    (BENCH_LAYOUT_RATE=20000: paced, rows/s)
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Checkpointer } from '../../daemon/spool/checkpointer.js';
import { SqliteSpool } from '../../daemon/spool/sqlite-spool.js';
import { WalGuard } from '../../daemon/spool/wal-guard.js';

const ROWS = Number(process.env['BENCH_LAYOUT_ROWS'] ?? 90_000);
const STREAMS = 4;
const BATCH = 256;
const PAYLOAD = new Uint8Array(100).fill(0x61);
const TS = 1_780_000_000_000;
/** Rows a second the spill is paced at (0: as fast as the disk takes them). */
const RATE = Number(process.env['BENCH_LAYOUT_RATE'] ?? 0);

const size = (p: string) => {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
};

function bare(file: string): number {
  const db = new Database(file);
  db.exec('CREATE TABLE records (seq INTEGER PRIMARY KEY, stream INTEGER NOT NULL, prio INTEGER NOT NULL, ts INTEGER NOT NULL, born INTEGER NOT NULL, attempt INTEGER NOT NULL, payload BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)');
  const tx = db.transaction((first: number) => {
    for (let s = first; s < first + BATCH && s <= ROWS; s++) insert.run(s, s % STREAMS, 1, TS + s, TS + s, 0, PAYLOAD);
  });
  for (let s = 1; s <= ROWS; s += BATCH) tx(s);
  db.close();
  return size(file);
}

async function spool(file: string): Promise<{ peak: number; peakWal: number; final: number; slowest: number; ms: number }> {
  const s = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
  const checkpointer = new Checkpointer(file);
  const guard = new WalGuard(s, checkpointer, undefined, { pollMs: 50 });
  let peak = 0;
  let peakWal = 0;
  let slowest = 0;
  const started = performance.now();
  for (let first = 1; first <= ROWS; first += BATCH) {
    const batch = [];
    for (let seq = first; seq < first + BATCH && seq <= ROWS; seq++) batch.push({ seq, stream: `s${seq % STREAMS}`, prio: 1, ts: TS + seq, born: TS + seq, attempt: 0, payload: PAYLOAD });
    const t0 = performance.now();
    s.write(batch);
    slowest = Math.max(slowest, performance.now() - t0);
    const f = s.fileBytes();
    peak = Math.max(peak, f.db + f.wal);
    peakWal = Math.max(peakWal, f.wal);
    // Let the worker's replies in, as the daemon's event loop does between spills.
    const due = RATE > 0 ? started + (first * 1_000) / RATE - performance.now() : 0;
    await new Promise((r) => (due > 0 ? setTimeout(r, due) : setImmediate(r)));
  }
  while (checkpointer.running) await guard.checkpoint();
  guard.stop();
  await checkpointer.checkpoint('TRUNCATE');
  await checkpointer.close();
  const final = s.fileBytes().db + s.fileBytes().wal;
  s.close();
  return { peak, peakWal, final, slowest, ms: performance.now() - started };
}

const dir = mkdtempSync(join(tmpdir(), 'spillway-layout-'));
try {
  const b = bare(join(dir, 'bare.db'));
  const s = await spool(join(dir, 'spool.db'));
  const per = (n: number) => (n / ROWS).toFixed(1);
  console.log(`${ROWS} rows of ${PAYLOAD.length} bytes, ${STREAMS} streams, ${RATE > 0 ? `paced at ${RATE} rows/s` : 'as fast as they go'}`);
  console.log(`bare table:       ${per(b)} bytes/row (${b} bytes)`);
  console.log(`spool, peak:      ${per(s.peak)} bytes/row (db + WAL ${s.peak} bytes; WAL peak ${s.peakWal}) = ${(s.peak / b).toFixed(2)}x bare`);
  console.log(`spool, writes:     ${ROWS} rows in ${s.ms.toFixed(0)} ms, slowest batch of ${BATCH} ${s.slowest.toFixed(1)} ms (it waits for a TRUNCATE checkpoint's lock)`);
  console.log(`spool, at rest:   ${per(s.final)} bytes/row (${s.final} bytes) = ${(s.final / b).toFixed(2)}x bare`);
} finally {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
}
