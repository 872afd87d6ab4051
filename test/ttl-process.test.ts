/**
 * TTL through the daemon (README, "Streams": records older than `ttlMs`
 * are dropped as `expired`, in memory and in the spool). A daemon with no
 * consumer holds records in its rings and spills the rest; once their TTL
 * has passed, the sweep must drop every one of them as `expired` from both
 * tiers, count them exactly, and a consumer that comes afterwards must get
 * only what was sent after.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acker } from './helpers/acker.js';
import { startDaemon, testConfig } from './helpers/daemon.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

describe('TTL, through the daemon', () => {
  it('records past ttlMs are dropped as expired from the rings and the spool, counted exactly; later records are delivered', async () => {
    const N = 400;
    const daemon = await startDaemon(
      testConfig({
        sources: { embeddedBroker: { enabled: true, port: 0 } },
        streamDefaults: { capacityRecords: 40, ttlMs: 1_500 },
        limits: { memoryBudgetBytes: 64 * 1024 },
        spool: { ttlCron: '* * * * * *' },
      }),
    );
    try {
      const body = 't'.repeat(300);
      await publishAll(daemon.brokerUrl as string, Array.from({ length: N }, (_, i) => ({ topic: `sensors/${i % 2 === 0 ? 'a' : 'b'}`, payload: `${i}:${body}` })));
      const m = await waitFor(async () => {
        const m = await daemon.metrics();
        return m.sum('spillway_records_dropped_total', { reason: 'expired' }) === N ? m : undefined;
      }, `${N} expired`, 20_000);
      assert.equal(m.sum('spillway_records_ingested_total'), N);
      assert.equal(m.sum('spillway_records_dropped_total'), N, 'no drop for another reason');
      const spilled = m.sum('spillway_records_spilled_total');
      // Nothing was delivered: what was never spilled expired in a ring, the rest in the spool.
      assert.ok(spilled > 0 && spilled < N, `both tiers expired records (${spilled} of ${N} spilled)`);
      assert.equal(m.sum('spillway_buffer_records') + m.sum('spillway_spool_records') + m.sum('spillway_inflight_records'), 0);
      assert.equal(m.imbalance(), 0);

      const got = new Set<string>();
      const c = await acker(daemon.consumerUrl, got);
      await publishAll(daemon.brokerUrl as string, [{ topic: 'sensors/a', payload: 'fresh-1' }, { topic: 'sensors/b', payload: 'fresh-2' }]);
      await waitFor(async () => ((await daemon.metrics()).sum('spillway_records_acked_total') === 2 ? true : undefined), 'the fresh records acked');
      assert.deepEqual([...got].sort(), ['fresh-1', 'fresh-2'], 'only what was sent after the expiry');
      await c.close();
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
});
