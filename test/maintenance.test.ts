/**
 * Scheduled spool work (daemon/spool/maintenance.ts) on a real SQLite spool,
 * a real checkpoint worker and real node-cron schedules: a job never runs
 * twice at once, a failing job is logged and runs again on its next tick
 * while the others go on, a failed checkpoint is retried, and a checkpoint
 * worker that dies fails its checkpoint instead of hanging every later one.
 *
 * The engine is a stand-in: its TTL sweep is the job the test makes slow or
 * failing at will (the real sweep is tested with the core).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import cron from 'node-cron';
import { pino } from 'pino';
import type { Engine } from '../daemon/engine.js';
import { Checkpointer } from '../daemon/spool/checkpointer.js';
import { Maintenance, type MaintenanceOptions } from '../daemon/spool/maintenance.js';
import { WAL_CHECKPOINT_BYTES } from '../daemon/spool/spool-port.js';
import { SqliteSpool } from '../daemon/spool/sqlite-spool.js';
import { rec } from './helpers/spool-contract.js';
import { waitFor } from './helpers/wait.js';

interface Line {
  readonly level: number;
  readonly event?: string;
  readonly job?: string;
  readonly [key: string]: unknown;
}

const NEVER = '0 0 0 1 1 *'; // once a year: the job exists but does not fire during a test
const EVERY_SECOND = '* * * * * *';

function harness(opts: Partial<MaintenanceOptions>, expireTtl: () => unknown = () => 0, checkpointFile?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-maint-'));
  const { spool } = SqliteSpool.open({ file: join(dir, 'spool.db'), synchronous: 'normal' });
  const checkpointer = new Checkpointer(checkpointFile?.replace('$DIR', dir) ?? spool.file);
  const lines: Line[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line);
        done();
      },
    }),
  );
  let kicks = 0;
  const engine = {
    expireTtl,
    kick: () => kicks++,
    consumerCount: 0,
    pipeline: { totals: () => ({ ingested: 3, acked: 1, dropped: 0, buffered: 1, spooled: 1, inflight: 0, heldBytes: 10 }) },
  } as unknown as Engine;
  const maintenance = new Maintenance({ checkpointCron: NEVER, reclaimCron: NEVER, ttlCron: NEVER, statsCron: NEVER, quotaBytes: 1024 ** 3, ...opts }, spool, checkpointer, engine, log);
  const events = (event: string) => lines.filter((l) => l.event === event);
  return {
    spool,
    checkpointer,
    maintenance,
    lines,
    events,
    /** Turns the engine was asked for (after each WAL truncate). */
    get kicks() {
      return kicks;
    },
    async close() {
      maintenance.stop();
      await checkpointer.close();
      spool.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('maintenance', () => {
  it('checkpoints the WAL into the database in the worker, and skips the worker when nothing was written', async () => {
    const h = harness({});
    try {
      h.spool.write([rec(1, 'a', 4_000), rec(2, 'a', 4_000), rec(3, 'b', 4_000)]);
      assert.ok(h.spool.fileBytes().wal > 0);
      await h.maintenance.checkpoint();
      const [done] = h.events('spool_checkpoint');
      assert.ok(done !== undefined, 'a checkpoint ran');
      assert.equal(done.complete, true, 'every WAL frame went into the database');
      assert.equal(done.truncated, true);
      assert.equal(done.walBytesAfter, 0, 'and the WAL file was cut to nothing');
      assert.ok((done.walBytesBefore as number) > 0);
      assert.equal(done.busy, 0);
      assert.equal(h.kicks, 1, 'the truncate asked the engine for a turn');
      await h.maintenance.checkpoint();
      assert.equal(h.events('spool_checkpoint').length, 1, 'nothing written since: no second checkpoint');
      assert.equal(h.kicks, 1);
      h.spool.delete([1]);
      await h.maintenance.checkpoint();
      assert.equal(h.events('spool_checkpoint').length, 2, 'a delete writes too');
      h.spool.delete([2]);
      await h.checkpointer.checkpoint('TRUNCATE');
      assert.equal(h.spool.fileBytes().wal, 0);
      await h.maintenance.checkpoint();
      assert.equal(h.events('spool_checkpoint').length, 2, 'an empty WAL: no checkpoint');
    } finally {
      await h.close();
    }
  });

  it('a checkpoint whose worker dies is a WARN, once per failing spell, and the next run retries it even with nothing new written', async () => {
    // The worker cannot open a directory as its database: it throws at start and dies.
    const h = harness({}, undefined, '$DIR/not-a-file');
    try {
      mkdirSync(join(h.spool.file, '..', 'not-a-file'));
      h.spool.write([rec(1, 'a', 100), rec(2, 'a', 100)]);
      await h.maintenance.checkpoint();
      assert.equal(h.events('spool_checkpoint_failed').length, 1);
      assert.equal(h.events('spool_checkpoint_failed')[0]?.level, 40, 'WARN: nothing lost, it is retried');
      await h.maintenance.checkpoint();
      assert.equal(h.events('spool_checkpoint_failed').length, 1, 'retried on the next run, and said once for the spell');
      assert.equal(h.events('spool_checkpoint').length + h.events('spool_checkpoint_recovered').length, 0, 'it never worked');
      assert.equal(h.events('maintenance_failed').length, 0);
    } finally {
      await h.close();
    }
  });

  it('a checkpoint worker that exits while a checkpoint is asked of it fails that checkpoint, and a new worker serves the next', async () => {
    const h = harness({});
    try {
      h.spool.write([rec(1, 'a', 100), rec(2, 'a', 100)]);
      const asked = h.checkpointer.checkpoint('PASSIVE');
      await h.checkpointer.close(); // terminates the worker: an 'exit' without an 'error'
      const outcome = await Promise.race([asked, new Promise((r) => setTimeout(r, 5_000, 'still pending after 5 s')).then((x) => x)]);
      assert.ok(typeof outcome === 'object' && outcome !== null, String(outcome));
      assert.equal((outcome as { ok: boolean }).ok, false);
      assert.match(String((outcome as { error?: string }).error), /^checkpoint worker exited \(code \d+\)$/);
      assert.equal(h.checkpointer.running, false);
      const next = await h.checkpointer.checkpoint('TRUNCATE');
      assert.equal(next.ok, true);
      assert.equal(h.spool.fileBytes().wal, 0, 'TRUNCATE emptied the WAL');
    } finally {
      await h.close();
    }
  });

  it('checkpoints early, without waiting for the schedule, once the WAL has grown past WAL_CHECKPOINT_BYTES', async () => {
    const h = harness({});
    try {
      const n = Math.ceil(WAL_CHECKPOINT_BYTES / 4_000) + 8;
      h.spool.write(Array.from({ length: n }, (_, i) => rec(i + 1, 'a', 4_000)));
      const done = await waitFor(() => h.events('spool_checkpoint')[0], 'the early checkpoint', 5_000);
      assert.ok((done.walBytesBefore as number) > WAL_CHECKPOINT_BYTES);
      assert.equal(done.truncated, true);
    } finally {
      await h.close();
    }
  });

  it('on schedule: a job still running is not started again, a failing job is logged and runs on its next tick, the other jobs go on', async () => {
    let running = 0;
    let maxRunning = 0;
    let calls = 0;
    let release: () => void = () => {};
    // The TTL job: the first run hangs until released, the second throws, the later ones succeed.
    const expireTtl = () => {
      calls++;
      if (calls === 2) throw new Error('planted TTL failure');
      if (calls > 2) return 0;
      running++;
      maxRunning = Math.max(maxRunning, running);
      return new Promise<number>((resolve) => {
        release = () => {
          running--;
          resolve(0);
        };
      });
    };
    const h = harness({ ttlCron: EVERY_SECOND, statsCron: EVERY_SECOND, reclaimCron: EVERY_SECOND, checkpointCron: EVERY_SECOND }, expireTtl);
    try {
      // Work for the scheduled checkpoint and reclaim: WAL frames, and free pages.
      h.spool.write(Array.from({ length: 20 }, (_, i) => rec(i + 1, 'a', 4_000)));
      h.spool.delete(Array.from({ length: 20 }, (_, i) => i + 1));
      await waitFor(() => calls === 1, 'the first TTL run', 3_000);
      const statsAtStart = h.events('stats').length;
      // Two ticks of the TTL job come and are skipped (node-cron says so, as a JSON WARN line) while its run hangs.
      const skipped = () => h.lines.filter((l) => l.event === 'maintenance_cron' && l.job === 'ttl');
      await waitFor(() => skipped().length >= 2, 'two skipped TTL ticks', 5_000);
      assert.equal(calls, 1, 'not started again while it runs');
      assert.ok(skipped().every((l) => l.level === 40), 'each skipped tick is a WARN');
      await waitFor(() => h.events('stats').length >= statsAtStart + 2, 'the other jobs go on meanwhile', 4_000);
      release();
      await waitFor(() => calls >= 3, 'the failing run, then a good one', 4_000);
      assert.equal(maxRunning, 1);
      const failed = h.events('maintenance_failed');
      assert.equal(failed.length, 1, 'one failure, one ERROR line');
      assert.deepEqual({ job: failed[0]?.job, err: failed[0]?.err, level: failed[0]?.level }, { job: 'ttl', err: 'planted TTL failure', level: 50 });
      const stats = h.events('stats').at(-1);
      assert.deepEqual({ ingested: stats?.ingested, acked: stats?.acked, spooled: stats?.spooled, consumers: stats?.consumers }, { ingested: 3, acked: 1, spooled: 1, consumers: 0 });
      assert.ok(typeof stats?.spoolFileBytes === 'number' && stats.spoolFileBytes > 0);
      assert.equal(h.lines.filter((l) => l.level >= 50).length, 1, 'no other error');
      await waitFor(() => h.events('spool_checkpoint').length > 0 && h.events('spool_reclaim').length > 0, 'the scheduled checkpoint and reclaim', 4_000);
      const jobs = () => [...cron.getTasks().values()].map((t) => t.name ?? '').filter((n) => n.startsWith('spillway-')).sort();
      assert.deepEqual(jobs(), ['spillway-checkpoint', 'spillway-reclaim', 'spillway-stats', 'spillway-ttl']);
      h.maintenance.stop();
      assert.deepEqual(jobs(), [], 'stop() destroys every job');
    } finally {
      release();
      await h.close();
    }
  });

  it('reclaim returns the free pages of deleted rows to the file system', async () => {
    const h = harness({});
    try {
      h.spool.write(Array.from({ length: 50 }, (_, i) => rec(i + 1, 'a', 4_000)));
      h.spool.delete(Array.from({ length: 50 }, (_, i) => i + 1));
      await h.checkpointer.checkpoint('TRUNCATE');
      const before = h.spool.fileBytes().db;
      h.maintenance.reclaim();
      const [line] = h.events('spool_reclaim');
      h.maintenance.reclaim();
      assert.equal(h.events('spool_reclaim').length, 1, 'nothing left to return: no line');
      assert.ok(line !== undefined && (line.pages as number) >= 50, `pages freed: ${String(line?.pages)}`);
      await h.checkpointer.checkpoint('TRUNCATE');
      assert.ok(h.spool.fileBytes().db < before - 50 * 4_000, `file shrank from ${before} to ${h.spool.fileBytes().db}`);
    } finally {
      await h.close();
    }
  });

  it('the checkpointer runs one checkpoint at a time: a call while one runs shares it, and `running` says so', async () => {
    const h = harness({});
    try {
      h.spool.write([rec(1, 'a', 100), rec(2, 'a', 100)]);
      assert.equal(h.checkpointer.running, false);
      const first = h.checkpointer.checkpoint('PASSIVE');
      assert.equal(h.checkpointer.running, true);
      assert.equal(h.checkpointer.checkpoint('TRUNCATE'), first, 'the second call shares the first');
      assert.equal((await first).ok, true);
      assert.equal(h.checkpointer.running, false);
    } finally {
      await h.close();
    }
  });

  it('the checkpointer leaves no listener behind: a long run of checkpoints raises no MaxListenersExceededWarning', async () => {
    const h = harness({});
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      for (let i = 1; i <= 12; i++) {
        h.spool.write([rec(2 * i, 'a', 100), rec(2 * i + 1, 'a', 100)]);
        assert.equal((await h.checkpointer.checkpoint('PASSIVE')).ok, true);
      }
      await new Promise((r) => setImmediate(r)); // process warnings are emitted on the next tick
      assert.deepEqual(warnings, []);
    } finally {
      process.off('warning', onWarning);
      await h.close();
    }
  });
});
