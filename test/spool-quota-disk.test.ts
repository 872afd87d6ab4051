/**
 * The quota bounds the disk: a sustained spill through the daemon (a real
 * Mosquitto, no consumer, a small memory budget) far beyond `spool.quotaBytes`
 * never takes more than the quota on disk, database and WAL together
 * (`spillway_spool_disk_bytes`, checked against the files themselves at the
 * end); what does not fit is dropped as `spool_full`, counted, and /metrics
 * balances; and the oldest give way (README): what stays on disk is the
 * newest records, in one run, not the first ones with everything later
 * refused. When the checkpoints fall behind (a loaded machine; here also a
 * reader that holds a snapshot of the spool, so no checkpoint can cut the WAL
 * back) a write the WAL leaves no room for is refused (the newcomer dropped,
 * counted in `spillway_spool_wal_refused_total`) rather than the quota
 * passed, each such newcomer is exactly one hole in that run, and once the
 * checkpoints catch up the spill goes on.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startDaemon, testConfig, type DaemonProcess as Daemon, type Metrics } from './helpers/daemon.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

const QUOTA = 2 * 1024 * 1024;
const PAYLOAD = 400;
const BODY = 'x'.repeat(PAYLOAD);

/** A daemon spilling into a 2 MiB quota, the highest `spillway_spool_disk_bytes` sampled all along. */
async function spilling(run: (d: { broker: Mosquitto; daemon: Daemon; publish: (from: number, n: number) => Promise<Metrics> }) => Promise<void>): Promise<number> {
  const broker = await startMosquitto();
  const daemon = await startDaemon(
    testConfig({
      sources: { mqtt: [{ url: broker.url, subscriptions: [{ topic: 'q/#', qos: 1, stream: 'q' }] }] },
      limits: { memoryBudgetBytes: 256 * 1024 },
      spool: { quotaBytes: QUOTA },
    }),
  );
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await daemon.metrics()).sum('spillway_spool_disk_bytes'));
      await new Promise((r) => setImmediate(r));
    }
  })();
  // Records `from` to `from + n - 1`, each numbered in its payload; resolves once all are ingested.
  const publish = async (from: number, n: number) => {
    for (let i = from; i < from + n; i += 2_000) await publishAll(broker.url, Array.from({ length: Math.min(2_000, from + n - i) }, (_, k) => ({ topic: 'q/a', payload: `${i + k}:${BODY}` })), 1);
    return waitFor(async () => {
      const m = await daemon.metrics();
      return m.sum('spillway_records_ingested_total') === from + n ? m : undefined;
    }, `all ${from + n} ingested`, 30_000);
  };
  try {
    await run({ broker, daemon, publish });
  } finally {
    sampling = false;
    await sampler;
    await daemon.stop();
    await broker.stop();
  }
  return peak;
}

/**
 * What is on disk after `n` records: within the quota, every record counted,
 * in the order they came, the oldest dropped and each refused newcomer one
 * hole. Returns how many of the oldest gave way, how many were refused, and
 * the last record on disk.
 */
function checkOnDisk(daemon: Daemon, m: Metrics, n: number): { oldest: number; refused: number; last: number } {
  const file = join(daemon.dataDir, 'spool.db');
  const onDisk = statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
  assert.ok(onDisk <= QUOTA, `database and WAL ${onDisk} bytes, quota ${QUOTA}`);
  assert.ok(m.sum('spillway_records_dropped_total', { reason: 'spool_full' }) > 0, 'what did not fit was dropped as spool_full');
  assert.equal(m.sum('spillway_records_dropped_total', { reason: 'overflow' }), 0, 'and not as overflow: it was the quota that refused');
  assert.equal(m.imbalance(), 0, 'and counted: conservation exact');
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const index = (row: unknown) => Number(Buffer.from((row as { payload: Buffer }).payload).toString().split(':')[0]);
    const onDiskIndexes = db.prepare('SELECT payload FROM records ORDER BY seq').all().map(index);
    const dropped = m.sum('spillway_records_dropped_total', { reason: 'spool_full' });
    // Newcomers refused while the WAL waited for its checkpoint are the only other records
    // dropped: the rest of the drops are the oldest on disk, which gave way.
    const refused = m.sum('spillway_spool_wal_refused_total');
    const oldest = dropped - refused;
    const first = onDiskIndexes[0] ?? -1;
    const last = onDiskIndexes.at(-1) ?? -1;
    const inMemory = m.sum('spillway_buffer_records');
    assert.ok(oldest >= 0 && first >= oldest, `${oldest} of the ${dropped} dropped gave way, the first on disk is #${first}`);
    for (let i = 1; i < onDiskIndexes.length; i++) assert.ok((onDiskIndexes[i] as number) > (onDiskIndexes[i - 1] as number), 'on disk in the order they came');
    // Every refused newcomer left one hole: before the first on disk, between two on disk, or
    // among the newest (in memory); with none refused, what stayed is one run of the newest.
    const holesBefore = first - oldest;
    const holesBetween = last - first + 1 - onDiskIndexes.length;
    const holesAfter = n - 1 - last - inMemory;
    assert.ok(holesBefore >= 0 && holesBetween >= 0 && holesAfter >= 0, `holes ${holesBefore}/${holesBetween}/${holesAfter}`);
    assert.equal(holesBefore + holesBetween + holesAfter, refused, 'each hole is a refused newcomer, and each refused newcomer a hole');
    return { oldest, refused, last };
  } finally {
    db.close();
  }
}

describe('the spool quota', () => {
  it('bounds what the spool takes on disk, WAL included, under a sustained spill', async () => {
    const N = 12_000;
    assert.ok(N * PAYLOAD > 2 * QUOTA, 'the load is far beyond the quota');
    const peak = await spilling(async ({ daemon, publish }) => {
      const m = await publish(0, N);
      const { oldest } = checkOnDisk(daemon, m, N);
      assert.ok(oldest > 0, 'the oldest gave way');
    });
    assert.ok(peak <= QUOTA, `spillway_spool_disk_bytes peaked at ${peak}, quota ${QUOTA}`);
  });

  it('holds while no checkpoint can cut the WAL back (a reader holds a snapshot), and the spill goes on once one can', async () => {
    const peak = await spilling(async ({ daemon, publish }) => {
      await publish(0, 1_000);
      // A reader's snapshot: the checkpoints copy nothing written after it, so the WAL only grows.
      const reader = new Database(join(daemon.dataDir, 'spool.db'), { readonly: true, fileMustExist: true });
      const wal = `${join(daemon.dataDir, 'spool.db')}-wal`;
      let heldWal: number;
      try {
        reader.exec('BEGIN');
        reader.prepare('SELECT count(*) FROM records').get();
        const held = await publish(1_000, 6_000);
        const { refused, last } = checkOnDisk(daemon, held, 7_000);
        assert.ok(refused > 0, 'newcomers were refused for the WAL');
        assert.equal(held.sum('spillway_spool_write_failures_total'), 0, 'refused before SQLite was asked: no write failed');
        assert.ok(last < 7_000);
        heldWal = statSync(wal).size; // while the reader holds, no checkpoint can cut it back
        assert.ok(heldWal > QUOTA / 4, `the WAL grew to ${heldWal} bytes`);
        reader.exec('COMMIT');
      } finally {
        reader.close();
      }
      // The checkpoints catch up (a retry within `pollMs` of the reader letting go cuts the WAL
      // back) and the newest go to disk again. Waited for: on a loaded machine that retry can come
      // after the next records are all in, and those in memory within the budget never need to spill.
      await waitFor(() => statSync(wal).size < heldWal / 2, `a checkpoint cutting the WAL (${heldWal} bytes) back once the reader let go`);
      const after = await publish(7_000, 2_000);
      const { last } = checkOnDisk(daemon, after, 9_000);
      assert.ok(last >= 7_000, `the last on disk is #${last}, of those published after the reader let go`);
    });
    assert.ok(peak <= QUOTA, `spillway_spool_disk_bytes peaked at ${peak}, quota ${QUOTA}`);
  });
});
