/**
 * A full disk, for real: the daemon (a child process) keeps its data
 * directory on a 16 MiB tmpfs, most of it taken by a filler file, and spills
 * with no consumer until the spool's writes fail. It must not crash, must
 * count the drops as spool_full and report the spool on /healthz; once the
 * filler is deleted, spilling must work again, /healthz must be 200 within
 * seconds, and with a consumer connected no new record may be dropped;
 * conservation holds exactly throughout. Cleared and drained with nothing
 * new to spill, /healthz must be 200 again all the same.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Checkpointer } from '../daemon/spool/checkpointer.js';
import { SpoolFullError, type StoredRecord } from '../daemon/spool/spool-port.js';
import { SqliteSpool } from '../daemon/spool/sqlite-spool.js';
import { WalGuard } from '../daemon/spool/wal-guard.js';
import { acker } from './helpers/acker.js';
import { startDaemon, testConfig, type DaemonProcess, type Metrics } from './helpers/daemon.js';
import { startMosquitto } from './helpers/mosquitto.js';
import { publishAll } from './helpers/publisher.js';
import { startSensors } from './helpers/sensors.js';
import { waitFor } from './helpers/wait.js';

const mounts: string[] = [];
after(() => {
  for (const dir of mounts) {
    try {
      execFileSync('umount', [dir]);
    } catch {
      // Not mounted (the test unmounted it already, or mount failed): only the directory is left.
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

const SPOOL_REASON = /spool writes are failing/;

function tmpfs(size: string): string {
  const mnt = mkdtempSync(join(tmpdir(), 'spillway-fulldisk-'));
  mounts.push(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt]);
  return mnt;
}

function unmount(mnt: string): void {
  execFileSync('umount', [mnt]);
  rmSync(mnt, { recursive: true, force: true });
  mounts.splice(mounts.indexOf(mnt), 1);
}

/** A daemon spilling on a 16 MiB tmpfs, 13 MiB of it a filler file, filled until its spool writes fail. */
async function fullDisk(memoryBudgetBytes = 128 * 1024) {
  // The spool fills the rest but the 1 MiB reserve (sqlite-spool.ts); freeing the filler leaves room
  // for everything after, even if all of it spills, and the WAL peaks in between. Those peaks, while
  // the drain deletes and spills at once on a busy machine, took up to 4 MiB beyond the WAL guard's
  // 1 MiB: with 5 MiB freed (an 8 MiB tmpfs) one run in 16 hit the reserve again and dropped records.
  const mnt = tmpfs('16m');
  const filler = join(mnt, 'filler');
  writeFileSync(filler, Buffer.alloc(13 * 1024 * 1024, 1));
  const mosquitto = await startMosquitto();
  let d: DaemonProcess;
  try {
    d = await startDaemon(
      testConfig({
        sources: { mqtt: [{ url: mosquitto.url, subscriptions: [{ topic: 'full/#', qos: 1 }] }] },
        streamDefaults: { capacityRecords: 100 },
        limits: { memoryBudgetBytes },
        spool: { spillBatchRecords: 64 },
      }),
      { dataDir: join(mnt, 'var') },
    );
  } catch (err) {
    await mosquitto.stop();
    unmount(mnt);
    throw err;
  }
  const payload = (tag: string, i: number) => `${tag}-${i}:`.padEnd(1_000, 'x');
  const metrics = () => d.metrics();
  const ingested = async (n: number) => waitFor(async () => ((await metrics()).sum('spillway_records_ingested_total') >= n ? true : undefined), `${n} ingested`, 30_000);
  const publish = (tag: string, from: number, n: number) => publishAll(mosquitto.url, Array.from({ length: n }, (_, i) => ({ topic: `full/${i % 2}`, payload: payload(tag, from + i) })));
  const close = async () => {
    try {
      assert.equal(await d.stop(), 0, JSON.stringify(d.logs.slice(-5)));
    } finally {
      await mosquitto.stop();
      unmount(mnt);
    }
  };
  try {
    let sent = 0;
    let m: Metrics = await metrics();
    while (m.sum('spillway_spool_write_failures_total') === 0) {
      assert.ok(sent < 12_000, `the spool never failed after ${sent} records on a 3 MiB-free tmpfs`);
      await publish('fill', sent, 500);
      sent += 500;
      await ingested(sent);
      m = await metrics();
    }
    const dropped = m.sum('spillway_records_dropped_total', { reason: 'spool_full' });
    // While the disk stays full, /healthz says so. (A checkpoint can free a little room and let one spill
    // through, which makes it 200 until the next failure: keep spilling while looking.)
    let more = 0;
    const full = await waitFor(async () => {
      await publish('more', more, 50);
      more += 50;
      const r = await d.health();
      return r.status === 503 ? r : undefined;
    }, '/healthz 503 while the disk is full', 10_000);
    sent += more;
    await ingested(sent);
    return { d, mosquitto, filler, sent, dropped, full, m: await metrics(), metrics, ingested, publish, close };
  } catch (err) {
    await close();
    throw err;
  }
}

describe('a full disk', () => {
  it('is survived, counted, reported, and recovered from once there is room', async () => {
    const h = await fullDisk();
    const { d, mosquitto, filler, metrics, ingested } = h;
    let { sent, m } = h;
    try {
      // 1. Spilled until the disk was full: still running, drops counted, /healthz 503.
      assert.equal(d.child.exitCode, null, 'still running');
      assert.ok(h.dropped > 0, 'drops counted as spool_full');
      assert.equal(m.imbalance(), 0, 'conserved while full');
      assert.match(JSON.stringify(h.full.body['reasons']), SPOOL_REASON);

      // 2. Room again: the next spill works, /healthz is 200 within seconds.
      rmSync(filler);
      const spilledBefore = m.sum('spillway_records_spilled_total');
      await h.publish('room', 0, 300);
      sent += 300;
      await ingested(sent);
      const freed = Date.now();
      await waitFor(async () => ((await d.health()).status === 200 ? true : undefined), '/healthz 200 after space was freed', 10_000);
      const healthyAfterMs = Date.now() - freed;
      m = await metrics();
      assert.ok(m.sum('spillway_records_spilled_total') > spilledBefore, 'spilling resumed');
      assert.equal(m.imbalance(), 0);

      // 3. A consumer: what is held is delivered, and no new record is dropped.
      const droppedBefore = m.sum('spillway_records_dropped_total');
      const failuresBefore = m.sum('spillway_spool_write_failures_total');
      const got = new Set<string>();
      const c = await acker(d.consumerUrl, got, 200);
      // Small records: 2,000 of them fit in the room made even if every one spills.
      await publishAll(mosquitto.url, Array.from({ length: 2_000 }, (_, i) => ({ topic: `full/${i % 2}`, payload: `new-${i}` })));
      sent += 2_000;
      const end = await waitFor(
        async () => {
          const t = await metrics();
          return t.sum('spillway_records_ingested_total') === sent && t.sum('spillway_buffer_records') + t.sum('spillway_spool_records') + t.sum('spillway_inflight_records') === 0 ? t : undefined;
        },
        'everything held delivered',
        30_000,
      );
      await c.close();
      const why = JSON.stringify({ reasons: end.samples.filter((x) => x.name === 'spillway_records_dropped_total' && x.value > 0), failures: end.sum('spillway_spool_write_failures_total') - failuresBefore });
      assert.equal(end.sum('spillway_records_dropped_total'), droppedBefore, `no record dropped once there was room and a consumer: ${why}`);
      assert.equal([...got].filter((p) => p.startsWith('new-')).length, 2_000, 'all 2,000 new records delivered');
      assert.equal(end.imbalance(), 0, 'recovered + ingested = acked + dropped + buffered + spooled + inflight');
      assert.equal(end.sum('spillway_records_acked_total'), got.size);
      assert.equal((await d.health()).status, 200);
      assert.ok(healthyAfterMs < 10_000);
    } finally {
      await h.close();
    }
  });

  it('cleared and drained by a consumer, with nothing new to spill: /healthz is 200 again', async () => {
    // Spills come from the full rings (100 records each); the budget leaves room to read the backlog
    // back beside them, so the drain itself spills nothing and only the deletes can say the disk works.
    const h = await fullDisk(1024 * 1024);
    try {
      assert.match(JSON.stringify(h.full.body['reasons']), SPOOL_REASON);
      rmSync(h.filler);
      const spilledBefore = h.m.sum('spillway_records_spilled_total');
      const got = new Set<string>();
      const c = await acker(h.d.consumerUrl, got, 200);
      const end = await waitFor(
        async () => {
          const t = await h.metrics();
          return t.sum('spillway_buffer_records') + t.sum('spillway_spool_records') + t.sum('spillway_inflight_records') === 0 ? t : undefined;
        },
        'everything held delivered',
        30_000,
      );
      await c.close();
      assert.equal(end.sum('spillway_records_spilled_total'), spilledBefore, 'nothing spilled after the disk was cleared');
      assert.equal(end.imbalance(), 0);
      const health = await waitFor(async () => {
        const r = await h.d.health();
        return r.status === 200 ? r : undefined;
      }, '/healthz 200 once the deletes went through with room on disk', 10_000);
      assert.equal(health.status, 200);
    } finally {
      await h.close();
    }
  });

  it('the spool itself, with no reserve: ENOSPC is a SpoolFullError, hasRoom() stays false until a write goes through, and after room is made writes, deletes and checkpoints work again', async () => {
    const mnt = tmpfs('4m');
    const filler = join(mnt, 'filler');
    writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024, 1));
    const file = join(mnt, 'spool.db');
    const { spool } = SqliteSpool.open({ file, synchronous: 'normal', diskReserveBytes: 0 });
    const checkpointer = new Checkpointer(file);
    const guard = new WalGuard(spool, checkpointer, undefined, { pollMs: 20 });
    try {
      let seq = 1;
      const batch = (n: number): StoredRecord[] => Array.from({ length: n }, () => ({ seq: seq++, stream: 'a', prio: 1, ts: 0, born: 0, attempt: 0, payload: Buffer.alloc(500, 7) }));
      let failed: unknown;
      for (let i = 0; i < 2_000 && failed === undefined; i++) {
        const b = batch(32);
        try {
          spool.write(b);
        } catch (err) {
          failed = err;
          seq -= b.length;
        }
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(failed instanceof SpoolFullError, `a full disk is a SpoolFullError (${String(failed)})`);
      assert.match((failed as Error).message, /disk is full/);
      const held = spool.summary()[0]?.records ?? 0;
      assert.ok(held > 0);
      rmSync(filler);
      assert.equal(spool.hasRoom(), false, 'SQLite refused the last write: room is not taken on trust from statfs');
      spool.write(batch(32)); // the same connection, no reopen: not poisoned
      assert.equal(spool.hasRoom(), true, 'a write it took says so');
      spool.deleteOldest('a', 0, 1e9, held);
      const round = await waitFor(async () => {
        const r = await guard.checkpoint(true);
        return r?.truncated === true ? r : undefined;
      }, 'a checkpoint that truncates the WAL', 10_000);
      assert.equal(round.walBytesAfter, 0);
      assert.equal(spool.fileBytes().wal, 0);
      assert.deepEqual(spool.summary().map((x) => x.records), [32]);
    } finally {
      guard.stop();
      await checkpointer.close();
      spool.close();
      unmount(mnt);
    }
  });

  it('the reserve: writes are refused while the disk has less free, deletes go on, and hasRoom() says which', () => {
    const mnt = tmpfs('4m');
    const { spool } = SqliteSpool.open({ file: join(mnt, 'spool.db'), synchronous: 'normal', diskReserveBytes: 1024 * 1024 });
    try {
      spool.write([{ seq: 1, stream: 'a', prio: 1, ts: 0, born: 0, attempt: 0, payload: Buffer.alloc(10) }]);
      writeFileSync(join(mnt, 'filler'), Buffer.alloc(3 * 1024 * 1024 - 64 * 1024, 1));
      // Free space is looked at again only after up to 256 KiB were written: write until it is.
      let refused: unknown;
      for (let seq = 2; seq < 5_000 && refused === undefined; seq++) {
        try {
          spool.write([{ seq, stream: 'a', prio: 1, ts: 0, born: 0, attempt: 0, payload: Buffer.alloc(100) }]);
        } catch (err) {
          refused = err;
        }
      }
      assert.ok(refused instanceof SpoolFullError, String(refused));
      assert.match((refused as Error).message, /below the reserve of 1048576/);
      const n = spool.summary()[0]?.records ?? 0;
      assert.equal(spool.deleteOldest('a', 0, 1e9, n).records, n, 'deletes still work');
      assert.equal(spool.hasRoom(), false, 'below the reserve: no room for a write, whatever deletes do');
      rmSync(join(mnt, 'filler'));
      assert.equal(spool.hasRoom(), true);
      spool.write([{ seq: 5_000, stream: 'a', prio: 1, ts: 0, born: 0, attempt: 0, payload: Buffer.alloc(10) }]);
      assert.deepEqual(spool.summary().map((x) => x.records), [1]);
    } finally {
      spool.close();
      unmount(mnt);
    }
  });
  it('durable mode: a commit the full disk refuses is not PUBACKed (its client is disconnected), and once there is room every PUBACKed payload is delivered', async (t) => {
    const mnt = tmpfs('16m');
    const filler = join(mnt, 'filler');
    writeFileSync(filler, Buffer.alloc(13 * 1024 * 1024, 1));
    const d = await startDaemon(testConfig({ durability: 'durable', sources: { embeddedBroker: { enabled: true, port: 0 } } }), { dataDir: join(mnt, 'var') });
    try {
      const sent = new Set<string>();
      const acked = new Set<string>();
      // Rounds of sensors (each ends when the daemon disconnects it) until a commit is refused.
      let round = 0;
      await waitFor(async () => {
        const s = await startSensors(d.brokerUrl as string, { count: 4, prefix: `fill${round++}`, topic: 'sensors/full', sent, acked });
        await waitFor(async () => ((await d.metrics()).sum('spillway_input_rejected_total', { reason: 'not_kept' }) > 0 || acked.size >= round * 20_000 ? true : undefined), 'a refused commit or 20,000 more PUBACKs', 30_000, 50);
        await s.stop();
        return (await d.metrics()).sum('spillway_input_rejected_total', { reason: 'not_kept' }) > 0 || undefined;
      }, 'a commit refused by the full disk', 120_000, 0);
      const full = await d.metrics();
      assert.ok(full.sum('spillway_spool_write_failures_total') > 0, 'the spool said its writes failed');
      assert.equal(d.child.exitCode, null, 'still running');
      assert.equal(full.imbalance(), 0);
      assert.ok(sent.size > acked.size, 'some publishes were not PUBACKed');

      // Room again: new sensors are PUBACKed, /healthz is 200.
      rmSync(filler);
      const ackedBefore = acked.size;
      const s = await startSensors(d.brokerUrl as string, { count: 4, prefix: 'room', topic: 'sensors/full', sent, acked });
      await waitFor(() => acked.size >= ackedBefore + 400 || undefined, '400 PUBACKs once there is room', 30_000, 20);
      await s.stop();
      await waitFor(async () => ((await d.health()).status === 200 ? true : undefined), '/healthz 200 once commits go through', 10_000);

      // Every payload PUBACKed, before the disk filled, while full or after, is delivered.
      const got = new Set<string>();
      const c = await acker(d.consumerUrl, got, 1_000);
      const end = await waitFor(async () => {
        const t = await d.metrics();
        return t.sum('spillway_buffer_records') + t.sum('spillway_spool_records') + t.sum('spillway_inflight_records') === 0 ? t : undefined;
      }, 'everything held delivered', 60_000);
      await c.close();
      assert.deepEqual([...acked].filter((p) => !got.has(p)), [], 'no PUBACKed payload lost');
      assert.deepEqual([...got].filter((p) => !sent.has(p)), [], 'nothing delivered that was not sent');
      assert.equal(end.imbalance(), 0);
      t.diagnostic(`${sent.size} sent, ${acked.size} PUBACKed, ${got.size} delivered; ${full.sum('spillway_input_rejected_total', { reason: 'not_kept' })} publishes refused while the disk was full, ${end.sum('spillway_records_dropped_total')} dropped`);
    } finally {
      try {
        assert.equal(await d.stop(), 0, JSON.stringify(d.logs.slice(-5)));
      } finally {
        unmount(mnt);
      }
    }
  });
});
