/**
 * Memory mode through a crash (README, "Durability": a kill -9 loses what
 * memory held, spooled records survive) and seqs across a crash (never
 * handed out twice: docs/PROTOCOL.md). A daemon with no consumer spills
 * most of what a sensor sends; once every record is either in a ring or
 * in the spool it is killed with SIGKILL; the next start must recover
 * exactly the spooled ones, deliver exactly those, and number new records
 * above every seq the killed daemon gave out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpillwayConsumer, type WireRecord } from '../daemon/client/consumer.js';
import { startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

function nextSeqAtStart(d: DaemonProcess): number {
  const opened = d.logs.find((l) => l.event === 'spool_opened');
  assert.ok(opened, 'a spool_opened line');
  return Number(opened['nextSeq']);
}

describe('memory mode, kill -9', () => {
  it('the spooled records survive (exactly those, recovered and delivered once each), and seqs go on above every one given out', async () => {
    const N = 1_000;
    const config = testConfig({
      sources: { embeddedBroker: { enabled: true, port: 0 } },
      streamDefaults: { capacityRecords: 40 },
      limits: { memoryBudgetBytes: 64 * 1024 },
    });
    const first = await startDaemon(config);
    const firstSeq = nextSeqAtStart(first);
    const body = 'p'.repeat(300);
    const sent = Array.from({ length: N }, (_, i) => ({ topic: `sensors/${i % 2 === 0 ? 'a' : 'b'}`, payload: `${i}:${body}` }));
    await publishAll(first.brokerUrl as string, sent);
    // Every PUBACK is out: each record is now in a ring or in the spool, and nothing moves (no consumer).
    const m = await waitFor(async () => {
      const m = await first.metrics();
      return m.sum('spillway_records_ingested_total') === N && m.sum('spillway_buffer_records') + m.sum('spillway_spool_records') === N ? m : undefined;
    }, `${N} records held`);
    const spooled = m.sum('spillway_spool_records');
    const inMemory = m.sum('spillway_buffer_records');
    assert.equal(m.sum('spillway_records_dropped_total'), 0);
    assert.ok(spooled > 0 && inMemory > 0, `both tiers hold records (${spooled} spooled, ${inMemory} in memory)`);
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, null, 'killed, not exited');

    const second = await startDaemon(config, { dataDir: first.dataDir });
    try {
      assert.equal((await second.metrics()).sum('spillway_records_recovered_total'), spooled, 'recovered exactly what was spooled');
      assert.ok(nextSeqAtStart(second) >= firstSeq + N, `seqs go on above the ${N} given out from ${firstSeq} (next: ${nextSeqAtStart(second)})`);
      const got: WireRecord[] = [];
      const c = new SpillwayConsumer({ url: second.consumerUrl, name: 'after-crash' });
      c.on('records', (records: WireRecord[]) => {
        got.push(...records);
        c.ack(records.map((r) => r.seq));
        c.credit(records.length);
      });
      await c.connect();
      c.credit(500);
      await waitFor(async () => ((await second.metrics()).sum('spillway_records_acked_total') === spooled ? true : undefined), `${spooled} acked`);
      const payloads = new Set(got.map((r) => r.data));
      assert.equal(got.length, spooled, 'each delivered once');
      assert.equal(payloads.size, spooled);
      const published = new Set(sent.map((s) => s.payload));
      assert.deepEqual([...payloads].filter((p) => !published.has(p)), [], 'nothing delivered that was not sent');
      assert.ok(got.every((r) => r.seq >= firstSeq && r.seq < firstSeq + N), 'the recovered records keep their seqs');
      // A new record is numbered above every seq the killed daemon gave out, delivered or not.
      await publishAll(second.brokerUrl as string, [{ topic: 'sensors/a', payload: 'after' }]);
      const fresh = await waitFor(() => got.find((r) => r.data === 'after'), 'the new record');
      assert.ok(fresh.seq >= firstSeq + N, `new seq ${fresh.seq} above ${firstSeq + N - 1}`);
      const end = await waitFor(async () => {
        const e = await second.metrics();
        return e.sum('spillway_records_acked_total') === spooled + 1 ? e : undefined;
      }, 'the new record acked');
      assert.equal(end.imbalance(), 0);
      await c.close();
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });
});
