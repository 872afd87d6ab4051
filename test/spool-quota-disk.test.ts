/**
 * The quota bounds the disk: a sustained spill through the daemon (a real
 * Mosquitto, no consumer, a small memory budget) far beyond `spool.quotaBytes`
 * never takes more than the quota on disk, database and WAL together
 * (`spillway_spool_disk_bytes`, checked against the files themselves at the
 * end); what does not fit is dropped as `spool_full`, counted, and /metrics
 * balances; and the oldest give way (README): what stays on disk is the
 * newest records, in one run, not the first ones with everything later
 * refused. On a loaded machine the checkpoints can fall behind: a write the
 * WAL leaves no room for is refused (the newcomer dropped, counted in
 * `spillway_spool_wal_refused_total`) rather than the quota passed, and
 * each such newcomer is exactly one hole in that run.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startDaemon, testConfig } from './helpers/daemon.js';
import { startMosquitto } from './helpers/mosquitto.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

const QUOTA = 2 * 1024 * 1024;
const N = 12_000;
const PAYLOAD = 400;

describe('the spool quota', () => {
  it('bounds what the spool takes on disk, WAL included, under a sustained spill', async () => {
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
    try {
      const body = 'x'.repeat(PAYLOAD);
      for (let i = 0; i < N; i += 2_000) await publishAll(broker.url, Array.from({ length: 2_000 }, (_, k) => ({ topic: 'q/a', payload: `${i + k}:${body}` })), 1);
      const m = await waitFor(async () => {
        const m = await daemon.metrics();
        return m.sum('spillway_records_ingested_total') === N ? m : undefined;
      }, `all ${N} ingested`);
      sampling = false;
      await sampler;
      const file = join(daemon.dataDir, 'spool.db');
      const onDisk = statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
      assert.ok(N * PAYLOAD > 2 * QUOTA, 'the load is far beyond the quota');
      assert.ok(peak <= QUOTA, `spillway_spool_disk_bytes peaked at ${peak}, quota ${QUOTA}`);
      assert.ok(onDisk <= QUOTA, `database and WAL ${onDisk} bytes, quota ${QUOTA}`);
      assert.ok(m.sum('spillway_records_dropped_total', { reason: 'spool_full' }) > 0, 'what did not fit was dropped as spool_full');
      assert.equal(m.sum('spillway_records_dropped_total', { reason: 'overflow' }), 0, 'and not as overflow: it was the quota that refused');
      assert.equal(m.imbalance(), 0, 'and counted: conservation exact');
      const db = new Database(file, { readonly: true, fileMustExist: true });
      try {
        const index = (row: unknown) => Number(Buffer.from((row as { payload: Buffer }).payload).toString().split(':')[0]);
        const onDiskIndexes = db.prepare('SELECT payload FROM records ORDER BY seq').all().map(index);
        const dropped = m.sum('spillway_records_dropped_total', { reason: 'spool_full' });
        // Newcomers refused while the WAL waited for its checkpoint (a loaded machine) are the only
        // other records dropped: the rest of the drops are the oldest on disk, which gave way.
        const refused = m.sum('spillway_spool_wal_refused_total');
        const oldest = dropped - refused;
        const first = onDiskIndexes[0] ?? -1;
        const last = onDiskIndexes.at(-1) ?? -1;
        const inMemory = m.sum('spillway_buffer_records');
        assert.ok(oldest > 0 && first >= oldest, `the oldest gave way: ${oldest} of the ${dropped} dropped, the first on disk is #${first}`);
        for (let i = 1; i < onDiskIndexes.length; i++) assert.ok((onDiskIndexes[i] as number) > (onDiskIndexes[i - 1] as number), 'on disk in the order they came');
        // Every refused newcomer left one hole: before the first on disk, between two on disk, or
        // among the newest (in memory); with none refused, what stayed is one run of the newest.
        const holesBefore = first - oldest;
        const holesBetween = last - first + 1 - onDiskIndexes.length;
        const holesAfter = N - 1 - last - inMemory;
        assert.ok(holesBefore >= 0 && holesBetween >= 0 && holesAfter >= 0, `holes ${holesBefore}/${holesBetween}/${holesAfter}`);
        assert.equal(holesBefore + holesBetween + holesAfter, refused, 'each hole is a refused newcomer, and each refused newcomer a hole');
      } finally {
        db.close();
      }
    } finally {
      sampling = false;
      await sampler;
      await daemon.stop();
      await broker.stop();
    }
  });
});
