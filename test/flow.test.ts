/**
 * End to end through real parts: a Mosquitto broker started here, the daemon
 * as a child process, consumers over real WebSockets that grant random
 * credit, ack, nack, ignore and disconnect. Every payload must be acked at
 * least once, the consumer-side guarantees must hold, and the conservation
 * identity must be exact on /metrics once things are quiet.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { SpillwayConsumer, type WireRecord } from '../daemon/client/consumer.js';
import { startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

const N = 3_000;
const TOPICS = ['sensors/a', 'sensors/b', 'sensors/c', 'sensors/d'];

describe('records flow from MQTT to consumers under credit', () => {
  let mosquitto: Mosquitto;
  let daemon: DaemonProcess;

  before(async () => {
    mosquitto = await startMosquitto();
    daemon = await startDaemon(
      testConfig({
        sources: { mqtt: [{ url: mosquitto.url, subscriptions: [{ topic: 'sensors/#', qos: 1 }] }] },
        streams: { 'sensors/a': { priority: 0 } },
        consumers: { ackTimeoutMs: 400, maxAttempts: 1_000 },
      }),
    );
  });

  after(async () => {
    await daemon?.stop();
    await mosquitto?.stop();
  });

  it('acks every payload at least once with random credit, acks, nacks and disconnects', async () => {
    const payloads = Array.from({ length: N }, (_, i) => ({ topic: TOPICS[i % TOPICS.length] as string, payload: `reading-${i}` }));
    const ackedPayloads = new Set<string>();
    /** The highest attempt seen of each seq, over every connection. */
    const maxAttempt = new Map<number, number>();
    const random = fc.sample(fc.integer({ min: 0, max: 99 }), 200_000);
    let r = 0;
    const roll = () => random[r++ % random.length] as number;
    const problems: string[] = [];
    let stop = false;

    // One consumer slot: connect, consume with random behaviour, sometimes drop the connection, repeat.
    const runSlot = async (slot: number) => {
      while (!stop) {
        const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: `slot-${slot}` });
        let granted = 0;
        let received = 0;
        let batches = 0;
        // Send order across connections is not observable; within one it is.
        const firstSeqByStream = new Map<string, number>();
        const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
        c.on('records', (records: WireRecord[]) => {
          received += records.length;
          if (received > granted) problems.push(`slot ${slot}: received ${received} > granted ${granted}`);
          const ack: number[] = [];
          const nack: number[] = [];
          for (const rec of records) {
            maxAttempt.set(rec.seq, Math.max(maxAttempt.get(rec.seq) ?? 0, rec.attempt));
            if (rec.attempt === 1) {
              const last = firstSeqByStream.get(rec.stream) ?? 0;
              if (rec.seq <= last) problems.push(`stream ${rec.stream}: first delivery ${rec.seq} after ${last}`);
              firstSeqByStream.set(rec.stream, rec.seq);
            }
            const dice = roll();
            if (dice < 75) {
              ack.push(rec.seq);
              ackedPayloads.add(rec.data);
            } else if (dice < 85) nack.push(rec.seq);
            // else: left unacked; the ack timeout or a disconnect brings it back
          }
          c.ack(ack);
          c.nack(nack);
          const grant = 1 + (roll() % 40);
          granted += grant;
          c.credit(grant);
          if (++batches > 3 && roll() < 8) c.terminate();
        });
        try {
          await c.connect();
        } catch {
          continue;
        }
        const grant = 1 + (roll() % 60);
        granted += grant;
        c.credit(grant);
        await Promise.race([closed, waitFor(() => stop || undefined, 'stop', 120_000)]);
        await c.close();
      }
    };

    const slots = [0, 1, 2].map((s) => runSlot(s));
    await publishAll(mosquitto.url, payloads);
    await waitFor(() => ackedPayloads.size === N || undefined, `all ${N} payloads acked (have ${ackedPayloads.size})`, 90_000);
    // A consumer's ack of a delivery the ack timeout already gave to another is ignored (late): its
    // payload is in the set while the daemon still holds the record. The consumers go on until the
    // daemon has applied an ack for every record.
    await waitFor(async () => (await daemon.metrics()).sum('spillway_records_acked_total') === N || undefined, `the daemon to apply ${N} acks`, 90_000);
    stop = true;
    await Promise.all(slots);

    assert.deepEqual(problems, []);
    const m = await waitFor(async () => {
      const m = await daemon.metrics();
      // The consumers' closes are seen by the daemon a moment after they resolve at the client.
      return m.sum('spillway_inflight_records') === 0 && m.sum('spillway_buffer_records') === 0 && m.sum('spillway_consumers') === 0 ? m : undefined;
    }, 'the daemon to be quiet, every consumer gone');
    assert.equal(m.imbalance(), 0, 'recovered + ingested = acked + dropped + buffered + spooled + inflight');
    assert.equal(m.sum('spillway_records_ingested_total'), N);
    assert.equal(m.sum('spillway_records_acked_total'), N, 'each record acked once by the daemon');
    assert.equal(m.sum('spillway_records_dropped_total'), 0);
    // Each send numbers its attempt, and the send whose ack the daemon applied was the last one
    // and was seen (its consumer acked it): a record sent k times shows attempt k, k - 1 redeliveries.
    assert.equal(maxAttempt.size, N);
    const redeliveries = [...maxAttempt.values()].reduce((a, k) => a + k - 1, 0);
    assert.equal(m.sum('spillway_records_redelivered_total'), redeliveries, 'one redelivery for every send after the first');
    const health = await daemon.health();
    assert.equal(health.status, 200);
  });

  it('sends the most important stream first when several wait', async () => {
    await publishAll(mosquitto.url, [
      ...Array.from({ length: 50 }, (_, i) => ({ topic: 'sensors/b', payload: `low-${i}` })),
      ...Array.from({ length: 50 }, (_, i) => ({ topic: 'sensors/a', payload: `high-${i}` })),
    ]);
    await waitFor(async () => (await daemon.metrics()).sum('spillway_buffer_records') === 100 || undefined, '100 records buffered');
    const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'prio' });
    const got: WireRecord[] = [];
    c.on('records', (records) => got.push(...records));
    await c.connect();
    c.credit(50);
    await waitFor(() => got.length === 50 || undefined, '50 records');
    assert.ok(got.every((rec) => rec.stream === 'sensors/a' && rec.prio === 0), 'the priority-0 stream goes first');
    c.ack(got.map((rec) => rec.seq));
    c.credit(50);
    await waitFor(() => got.length === 100 || undefined, '100 records');
    c.ack(got.slice(50).map((rec) => rec.seq));
    assert.ok(got.slice(50).every((rec) => rec.stream === 'sensors/b' && rec.prio === 1));
    await waitFor(async () => (await daemon.metrics()).sum('spillway_inflight_records') === 0 || undefined, 'acks applied');
    await c.close();
  });

  it('rejects and counts payloads above maxPayloadBytes', async () => {
    const before = await daemon.metrics();
    await publishAll(mosquitto.url, [{ topic: 'sensors/big', payload: Buffer.alloc(300 * 1024, 1) }]);
    const m = await waitFor(async () => {
      const m = await daemon.metrics();
      return m.sum('spillway_input_rejected_total', { reason: 'oversized' }) === 1 ? m : undefined;
    }, 'the oversized payload counted');
    assert.equal(m.sum('spillway_records_ingested_total'), before.sum('spillway_records_ingested_total'), 'it never became a record');
    assert.equal(m.imbalance(), 0);
  });

  it('delivers binary payloads as base64 and text as utf8, unchanged', async () => {
    const binary = Buffer.from([0xff, 0x00, 0xfe, 0x80]);
    await publishAll(mosquitto.url, [
      { topic: 'sensors/bin', payload: binary },
      { topic: 'sensors/bin', payload: 'température 21.5°C' },
    ]);
    const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'enc' });
    const got: WireRecord[] = [];
    c.on('records', (records) => got.push(...records));
    await c.connect();
    c.credit(2);
    await waitFor(() => got.length === 2 || undefined, '2 records');
    assert.equal(got[0]?.enc, 'base64');
    assert.deepEqual(Buffer.from(got[0]?.data ?? '', 'base64'), binary);
    assert.equal(got[1]?.enc, 'utf8');
    assert.equal(got[1]?.data, 'température 21.5°C');
    assert.ok(got.every((rec) => rec.attempt === 1 && Number.isInteger(rec.seq) && rec.seq > 0 && Math.abs(rec.ts - Date.now()) < 60_000));
    c.ack(got.map((rec) => rec.seq));
    await c.close();
  });

  it('a consumer that acks nothing: on the ack timeout exactly the records it held are redelivered, attempt 2; its late acks are ignored', async () => {
    const before = await daemon.metrics();
    await publishAll(mosquitto.url, Array.from({ length: 5 }, (_, i) => ({ topic: 'sensors/t', payload: `held-${i}` })));
    await waitFor(async () => (await daemon.metrics()).sum('spillway_buffer_records', { stream: 'sensors/t' }) === 5 || undefined, '5 records buffered');
    const silent = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'silent' });
    const held: WireRecord[] = [];
    silent.on('records', (records) => held.push(...records));
    await silent.connect();
    silent.credit(5);
    await waitFor(() => held.length === 5 || undefined, '5 records at the silent consumer');
    assert.deepEqual(held.map((r) => [r.data, r.attempt]), Array.from({ length: 5 }, (_, i) => [`held-${i}`, 1]));

    // It stays connected and acks nothing: only the ack timeout (400 ms) can take the records back.
    const other = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'other' });
    const again: WireRecord[] = [];
    other.on('records', (records) => again.push(...records));
    await other.connect();
    other.credit(100);
    await waitFor(() => again.length === 5 || undefined, 'the 5 records again, after the ack timeout', 10_000);
    assert.deepEqual(again.map((r) => [r.seq, r.data, r.attempt]), held.map((r) => [r.seq, r.data, 2]), 'the same records, in order, attempt 2');
    silent.ack(held.map((r) => r.seq)); // too late: they are the other consumer's now
    other.ack(again.map((r) => r.seq));
    const m = await waitFor(async () => {
      const m = await daemon.metrics();
      return m.sum('spillway_inflight_records') === 0 ? m : undefined;
    }, 'the acks applied');
    const delta = (name: string) => m.sum(name) - before.sum(name);
    assert.equal(delta('spillway_records_redelivered_total'), 5, 'exactly the five held records redelivered');
    assert.equal(delta('spillway_records_acked_total'), 5);
    assert.equal(delta('spillway_acks_ignored_total'), 5, 'the late acks of the silent consumer');
    assert.equal(delta('spillway_records_dropped_total'), 0);
    assert.equal(again.length, 5, 'nothing more was sent');
    await silent.close();
    await other.close();
  });
});
