/**
 * The poison limit holds across a restart (docs/PROTOCOL.md, "Poison means
 * the record failed"): a record's failed deliveries are kept with its spool
 * row, so a record nacked before a SIGTERM goes on counting after the start
 * instead of beginning again from 0, and is dropped as `poison` after
 * exactly `consumers.maxAttempts` failed deliveries in all. And a record
 * that consumers die of (each takes it and closes its connection without an
 * answer, as a consumer crashing on it would) is dropped after the first
 * such death, forgiven, and `maxAttempts` more.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpillwayConsumer, type WireRecord } from '../daemon/client/consumer.js';
import { startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

/** A consumer that nacks everything it gets, notes each delivery's attempt, and grants credit again until `upTo` deliveries in all. */
async function nacker(d: DaemonProcess, attempts: number[], upTo: number): Promise<SpillwayConsumer> {
  const c = new SpillwayConsumer({ url: d.consumerUrl, name: 'nacker' });
  c.on('records', (records: WireRecord[]) => {
    for (const r of records) attempts.push(r.attempt);
    c.nack(records.map((r) => r.seq));
    if (attempts.length < upTo) c.credit(records.length);
  });
  await c.connect();
  return c;
}

describe('a record consumers die of', () => {
  it('each consumer takes it and leaves without an answer: forgiven once, then dropped as poison after maxAttempts more (3)', async () => {
    const daemon = await startDaemon(testConfig({ consumers: { maxAttempts: 3, lossNotices: { enabled: false } }, sources: { embeddedBroker: { enabled: true, port: 0 } } }));
    const attempts: number[] = [];
    try {
      await publishAll(daemon.brokerUrl as string, [{ topic: 'sensors/p', payload: 'deadly' }]);
      const poison = async () => (await daemon.metrics()).sum('spillway_records_dropped_total', { reason: 'poison' });
      for (let death = 1; (await poison()) === 0; death++) {
        assert.ok(death <= 4, `still not dropped after ${death - 1} deaths`);
        const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: `victim-${death}` });
        const got = new Promise<WireRecord[]>((resolve) => c.once('records', resolve));
        await c.connect();
        c.credit(1);
        attempts.push(...(await got).map((r) => r.attempt));
        await c.close();
        await waitFor(async () => ((await daemon.metrics()).sum('spillway_inflight_records') === 0 ? true : undefined), `death ${death} seen by the daemon`);
      }
      assert.deepEqual(attempts, [1, 2, 3, 4], 'the first death forgiven, three counted');
      const m = await daemon.metrics();
      assert.deepEqual([m.sum('spillway_records_dropped_total', { reason: 'poison' }), m.sum('spillway_records_acked_total'), m.imbalance()], [1, 0, 0]);
    } finally {
      await daemon.stop();
    }
  });
});

describe('poison across a restart', () => {
  it('nacked twice, SIGTERM, started again: the third failed delivery drops it as poison (maxAttempts 3)', async () => {
    const config = testConfig({ consumers: { maxAttempts: 3, lossNotices: { enabled: false } }, sources: { embeddedBroker: { enabled: true, port: 0 } } });
    const first = await startDaemon(config);
    let second: DaemonProcess | undefined;
    const attempts: number[] = [];
    try {
      await publishAll(first.brokerUrl as string, [{ topic: 'sensors/p', payload: 'bad' }]);
      const c1 = await nacker(first, attempts, 2);
      // Two failed deliveries (both nacks taken: nothing in flight), then the daemon stops before a third.
      c1.credit(1);
      await waitFor(async () => (attempts.length === 2 && (await first.metrics()).sum('spillway_inflight_records') === 0 ? true : undefined), 'two deliveries nacked');
      await c1.close();
      assert.equal(await first.stop('SIGTERM'), 0);
      assert.deepEqual(attempts.slice(0, 2), [1, 2]);

      second = await startDaemon(config, { dataDir: first.dataDir });
      const c2 = await nacker(second, attempts, 10);
      c2.credit(1);
      const m = await waitFor(async () => {
        const m = await (second as DaemonProcess).metrics();
        return m.sum('spillway_records_dropped_total', { reason: 'poison' }) === 1 ? m : undefined;
      }, 'the record dropped as poison');
      await c2.close();
      assert.deepEqual(attempts, [1, 2, 3], 'sent once after the restart, as attempt 3: three failed deliveries in all, not three more');
      assert.equal(m.sum('spillway_records_recovered_total'), 1);
      assert.equal(m.imbalance(), 0);
    } finally {
      await first.stop();
      await second?.stop();
    }
  });
});
