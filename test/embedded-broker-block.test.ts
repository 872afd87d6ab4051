/**
 * `block` on the embedded broker holds back one client, not the broker: a
 * sensor publishing into a full `block` stream gets no PUBACK until a
 * consumer makes room, while another sensor on another stream goes on; a
 * sensor held longer than maxBlockMs is disconnected unacknowledged and
 * counted, and nothing it was told is safe is missing.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { acker } from './helpers/acker.js';
import { startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { waitFor } from './helpers/wait.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function daemonWith(config: Record<string, unknown>): Promise<DaemonProcess> {
  const d = await startDaemon(testConfig(config));
  dirs.push(dirname(d.configFile));
  return d;
}

const blockConfig = (maxBlockMs: number) => ({
  sources: { embeddedBroker: { enabled: true, port: 0, maxBlockMs } },
  streams: { 'sensors/held': { whenFull: 'block', capacityRecords: 10 } },
});

describe('embedded broker: block', () => {
  it('withholds the PUBACKs of the client whose stream is full; other clients go on; room resumes it with nothing lost', async () => {
    const daemon = await daemonWith(blockConfig(60_000));
    const url = daemon.brokerUrl as string;
    const held = await mqtt.connectAsync(url, { clientId: 'held', reconnectPeriod: 0, keepalive: 300 });
    const free = await mqtt.connectAsync(url, { clientId: 'free', reconnectPeriod: 0 });
    try {
      const N = 50;
      const acked: string[] = [];
      const heldSends = Array.from({ length: N }, (_, i) => held.publishAsync('sensors/held', `h${i}`, { qos: 1 }).then(() => acked.push(`h${i}`)));
      await waitFor(async () => (await daemon.metrics()).sum('spillway_buffer_records', { stream: 'sensors/held' }) === 10 || undefined, 'the held stream full');
      // The other client is not held back.
      await Promise.all(Array.from({ length: N }, (_, i) => free.publishAsync('sensors/free', `f${i}`, { qos: 1 })));
      assert.deepEqual(acked, Array.from({ length: 10 }, (_, i) => `h${i}`), 'only what fitted was PUBACKed, in order');
      const got = new Set<string>();
      const c = await acker(daemon.consumerUrl, got, 5);
      await Promise.all(heldSends);
      await waitFor(() => got.size === 2 * N || undefined, `all ${2 * N} delivered`);
      assert.deepEqual(acked, Array.from({ length: N }, (_, i) => `h${i}`), 'every PUBACK in order');
      const m = await daemon.metrics();
      assert.equal(m.sum('spillway_input_rejected_total'), 0);
      assert.equal(m.sum('spillway_records_dropped_total'), 0);
      await c.close();
    } finally {
      held.end(true);
      free.end(true);
      await daemon.stop();
    }
  });

  it('a full memory budget holds the client back too: the stream keeps its records, none is dropped for a newer one', async () => {
    // 10 records of 3 bytes (3 + 266 bytes of overhead each) fill the budget long before the ring's 1,000.
    const daemon = await daemonWith({
      sources: { embeddedBroker: { enabled: true, port: 0, maxBlockMs: 60_000 } },
      limits: { memoryBudgetBytes: 10 * (3 + 266) },
      streams: { 'sensors/held': { whenFull: 'block', capacityRecords: 1_000 } },
    });
    const held = await mqtt.connectAsync(daemon.brokerUrl as string, { clientId: 'held', reconnectPeriod: 0, keepalive: 300 });
    try {
      const N = 40;
      const name = (i: number) => `h${String(i).padStart(2, '0')}`;
      const acked: string[] = [];
      const sends = Array.from({ length: N }, (_, i) => held.publishAsync('sensors/held', name(i), { qos: 1 }).then(() => acked.push(name(i))));
      await waitFor(async () => (await daemon.metrics()).sum('spillway_buffer_records', { stream: 'sensors/held' }) === 10 || undefined, 'the budget full');
      // The 11th reached the daemon and was refused (its PUBACK withheld).
      await waitFor(async () => (await daemon.metrics()).sum('spillway_streams_blocked') === 1 || undefined, 'the client held back');
      assert.deepEqual(acked, Array.from({ length: 10 }, (_, i) => name(i)), 'only what the budget took was PUBACKed');
      const got = new Set<string>();
      const c = await acker(daemon.consumerUrl, got, 5);
      await Promise.all(sends);
      await waitFor(() => got.size === N || undefined, `all ${N} delivered`);
      assert.deepEqual([...got].sort(), Array.from({ length: N }, (_, i) => name(i)));
      const m = await daemon.metrics();
      assert.equal(m.sum('spillway_records_dropped_total'), 0, 'nothing dropped to make room');
      assert.equal(m.sum('spillway_streams_blocked'), 0, 'room again: the source is no longer held');
      assert.equal(m.sum('spillway_records_ingested_total'), N);
      await c.close();
    } finally {
      held.end(true);
      await daemon.stop();
    }
  });

  it('past maxBlockMs the held client is disconnected unacknowledged, counted and logged', async () => {
    const daemon = await daemonWith(blockConfig(300));
    const client = await mqtt.connectAsync(daemon.brokerUrl as string, { clientId: 'stuck', reconnectPeriod: 0 });
    try {
      const acked = new Set<string>();
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      for (let i = 0; i < 30; i++) client.publish('sensors/held', `s${i}`, { qos: 1 }, (err) => (err ? undefined : acked.add(`s${i}`)));
      await closed;
      const m = await waitFor(async () => {
        const m = await daemon.metrics();
        return m.sum('spillway_input_rejected_total', { source: 'embedded-broker', reason: 'blocked_too_long' }) === 1 ? m : undefined;
      }, 'the refusal counted');
      assert.equal(acked.size, 10, 'only what the stream took was PUBACKed');
      assert.equal(m.sum('spillway_records_ingested_total'), 10);
      assert.ok(daemon.logs.some((l) => l.event === 'publisher_refused' && l['reason'] === 'blocked_too_long'));
    } finally {
      client.end(true);
      await daemon.stop();
    }
  });
});
