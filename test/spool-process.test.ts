/**
 * The spool through the real process: nothing written while consumers keep
 * up; SIGTERM mid-stream then restart delivers everything (20 rounds);
 * kill -9 in durable mode loses nothing acked to the source (20 rounds); a
 * size-capped file and a corrupt file never crash it.
 */
import assert from 'node:assert/strict';
import { statSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { SpillwayConsumer, type WireRecord } from '../daemon/client/consumer.js';
import { acker } from './helpers/acker.js';
import { startDaemon, testConfig } from './helpers/daemon.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';
import { freePort } from './helpers/ports.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

const ROUNDS = Number(process.env['SPILLWAY_ROUNDS'] ?? 20);

const fileSize = (path: string) => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

describe('spool, through the daemon process', () => {
  let mosquitto: Mosquitto;

  before(async () => {
    mosquitto = await startMosquitto();
  });

  after(async () => {
    await mosquitto?.stop();
  });

  const source = (topic = 'sensors/#') => ({ sources: { mqtt: [{ url: mosquitto.url, subscriptions: [{ topic, qos: 1 }] }] } });

  it('writes nothing to the spool while consumers keep up', async () => {
    const daemon = await startDaemon(testConfig({ ...source('keepup/#') }));
    try {
      const db = join(daemon.dataDir, 'spool.db');
      const before = [fileSize(db), fileSize(`${db}-wal`)];
      const acked = new Set<string>();
      const c = await acker(daemon.consumerUrl, acked, 1_000);
      await publishAll(mosquitto.url, Array.from({ length: 2_000 }, (_, i) => ({ topic: `keepup/${i % 3}`, payload: `k${i}` })));
      await waitFor(() => acked.size === 2_000 || undefined, '2000 acked');
      const m = await waitFor(async () => {
        const m = await daemon.metrics();
        return m.sum('spillway_records_acked_total') === 2_000 ? m : undefined;
      }, 'acks applied');
      assert.equal(m.sum('spillway_records_spilled_total'), 0);
      assert.deepEqual([fileSize(db), fileSize(`${db}-wal`)], before, 'spool file and WAL unchanged');
      await c.close();
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });

  it(`SIGTERM mid-stream, then a restart: every record ingested is delivered (${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const N = 300;
      const config = testConfig({
        ...source(`term${round}/#`),
        streamDefaults: { capacityRecords: 40 },
        limits: { memoryBudgetBytes: 64 * 1024 },
        shutdown: { drainTimeoutMs: 300 },
      });
      const first = await startDaemon(config);
      const acked = new Set<string>();
      const stopAfter = Math.floor(Math.random() * N);
      const c = new SpillwayConsumer({ url: first.consumerUrl, name: 'mid' });
      let seen = 0;
      let stopping: Promise<number | null> | undefined;
      c.on('records', (records: WireRecord[]) => {
        seen += records.length;
        // Ack about half, leave the rest in flight at the stop.
        const take = records.filter((r) => r.seq % 2 === 0);
        for (const r of take) acked.add(r.data);
        c.ack(take.map((r) => r.seq));
        c.credit(records.length);
        if (seen >= stopAfter && stopping === undefined) stopping = first.stop('SIGTERM');
      });
      await c.connect();
      c.credit(25);
      const publishing = publishAll(mosquitto.url, Array.from({ length: N }, (_, i) => ({ topic: `term${round}/${i % 4}`, payload: `t${round}-${i}` })));
      if (stopAfter === 0) stopping = first.stop('SIGTERM');
      await waitFor(() => stopping, 'the stop point', 20_000);
      assert.equal(await stopping, 0, `round ${round}: exit 0`);
      await publishing;
      const stopped = first.logs.find((l) => l.event === 'stopped');
      assert.ok(stopped, `round ${round}: stopped line`);
      const ingested = Number(stopped['ingested']);
      assert.equal(stopped['dropped'], 0, `round ${round}: nothing dropped`);

      const second = await startDaemon(config, { dataDir: first.dataDir });
      try {
        const owed = ingested - Number(stopped['acked']);
        assert.equal((await second.metrics()).sum('spillway_records_recovered_total'), owed, `round ${round}: recovered what was owed`);
        const c2 = await acker(second.consumerUrl, acked);
        await waitFor(async () => (await second.metrics()).sum('spillway_records_acked_total') === owed || undefined, `round ${round}: ${owed} acked after restart`, 20_000);
        assert.equal(acked.size, ingested, `round ${round}: every one of the ${ingested} records ingested was delivered`);
        assert.equal((await second.metrics()).imbalance(), 0);
        await c2.close();
      } finally {
        assert.equal(await second.stop(), 0);
      }
    }
  });

  it('a size-capped spool file: records dropped as spool_full, counted, no crash; the refused write itself starts the checkpoint that lets the backlog drain', async () => {
    // ulimit -f: writes past 1 MiB fail with EFBIG, as on a full disk. The WAL fills the cap; the
    // spool's deletes and reads back then fail until a checkpoint truncates it. No scheduled job may
    // be what rescues it (the drain used to wait for the next scheduled checkpoint and TTL sweep, up
    // to 30 s): both are set to once a year.
    const yearly = '0 0 0 1 1 *';
    const daemon = await startDaemon(
      testConfig({
        ...source('tiny/#'),
        streamDefaults: { capacityRecords: 100 },
        limits: { memoryBudgetBytes: 200 * 1024 },
        spool: { spillBatchRecords: 64, checkpointCron: yearly, ttlCron: yearly },
      }),
      { wrapper: ['bash', '-c', 'ulimit -f 1024; exec "$@"', 'spillway'] },
    );
    try {
      const payload = 'x'.repeat(1_000);
      await publishAll(mosquitto.url, Array.from({ length: 3_000 }, (_, i) => ({ topic: `tiny/${i % 2}`, payload: `${i}:${payload}` })));
      const m = await waitFor(async () => {
        const m = await daemon.metrics();
        return m.sum('spillway_records_ingested_total') === 3_000 ? m : undefined;
      }, '3000 ingested', 30_000);
      assert.ok(m.sum('spillway_records_dropped_total', { reason: 'spool_full' }) > 0, 'spool_full counted');
      assert.ok(m.sum('spillway_spool_write_failures_total') > 0);
      assert.ok(m.sum('spillway_records_spilled_total') > 0, 'spilled until the file was full');
      assert.equal(m.imbalance(), 0);
      const health = await daemon.health();
      assert.equal(health.status, 503);
      assert.match(JSON.stringify(health.body['reasons']), /spool writes are failing/);
      await daemon.waitForLog((l) => l.event === 'records_dropped' && l['reason'] === 'spool_full', 'a spool_full drop report', 10_000);
      // The same report says why: what SQLite said when the file could not grow.
      const failing = daemon.logs.find((l) => l.event === 'spool_failing');
      assert.equal(failing?.level, 40);
      assert.match(String(failing?.['err']), /^spool \w+ failed: /);
      // Still serving: a consumer drains what is held.
      const acked = new Set<string>();
      const c = await acker(daemon.consumerUrl, acked, 500);
      const end = await waitFor(async () => {
        const t = await daemon.metrics();
        return t.sum('spillway_buffer_records') + t.sum('spillway_spool_records') + t.sum('spillway_inflight_records') === 0 ? t : undefined;
      }, 'everything held delivered', 20_000);
      // Draining may spill again to bring the backlog back in order, and those spills fail too: counted.
      assert.equal(acked.size, end.sum('spillway_records_acked_total'));
      assert.equal(end.sum('spillway_records_ingested_total'), end.sum('spillway_records_acked_total') + end.sum('spillway_records_dropped_total', { reason: 'spool_full' }));
      await c.close();
    } finally {
      assert.equal(await daemon.stop(), 0, JSON.stringify(daemon.logs.slice(-6)));
    }
  });

  it('a corrupt spool file is moved aside, logged at ERROR and counted; the daemon starts fresh', async () => {
    const first = await startDaemon(testConfig());
    await first.stop();
    const dataDir = first.dataDir;
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'spool.db'), Buffer.from('this is not a database '.repeat(400)));
    const daemon = await startDaemon(testConfig(), { dataDir });
    try {
      const line = await daemon.waitForLog((l) => l.event === 'spool_quarantined', 'the quarantine line');
      assert.equal(line.level, 50);
      assert.ok(readdirSync(dataDir).some((f) => /^spool\.db\.corrupt-/.test(f)));
      const m = await daemon.metrics();
      assert.equal(m.sum('spillway_spool_quarantined_total'), 1);
      assert.equal((await daemon.health()).status, 200);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
});

describe('durable mode: kill -9 loses nothing acked to the source', () => {
  let broker: Aedes;
  let server: Server;
  let url: string;
  /**
   * PUBACKs from the daemon's MQTT client. aedes does not say which packet an
   * ack was for, but one publisher's QoS 1 messages on one topic reach the
   * subscriber in order and it acks in order: the first `daemonAcks`
   * payloads published are the ones acked.
   */
  let daemonAcks = 0;

  before(async () => {
    broker = await Aedes.createBroker();
    broker.on('ack', (_packet, client) => {
      if (client?.id?.startsWith('spillway-')) daemonAcks++;
    });
    server = createServer(broker.handle);
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    url = `mqtt://127.0.0.1:${port}`;
  });

  after(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it(`kill -9 at a random point, then a restart: every source-acked record is delivered (${ROUNDS} rounds)`, async () => {
    const pub = await mqtt.connectAsync(url, { clientId: `test-durable-pub-${process.pid}` });
    try {
      for (let round = 0; round < ROUNDS; round++) {
        daemonAcks = 0;
        const published: string[] = [];
        const config = testConfig({
          durability: 'durable',
          sources: { mqtt: [{ url, subscriptions: [{ topic: `dur${round}/#`, qos: 1 }] }] },
          streamDefaults: { capacityRecords: 50 },
        });
        const first = await startDaemon(config);
        const delivered = new Set<string>();
        const c = await acker(first.consumerUrl, delivered, 7);
        const killAt = 1 + Math.floor(Math.random() * 200);
        let killed: Promise<number | null> | undefined;
        for (let i = 0; killed === undefined; i++) {
          published.push(`d${round}-${i}`);
          await pub.publishAsync(`dur${round}/x`, published[i] as string, { qos: 1 });
          if (daemonAcks >= killAt) killed = first.stop('SIGKILL');
          else if (i > 5_000) throw new Error(`round ${round}: the daemon acked only ${daemonAcks} of ${i} messages`);
        }
        assert.equal(await killed, null, 'killed by the signal');
        const ackedBeforeKill = new Set(published.slice(0, daemonAcks));
        assert.ok(ackedBeforeKill.size >= killAt);
        await c.close().catch(() => undefined);

        const second = await startDaemon(config, { dataDir: first.dataDir });
        try {
          const c2 = await acker(second.consumerUrl, delivered, 100);
          await waitFor(() => [...ackedBeforeKill].every((p) => delivered.has(p)) || undefined, `round ${round}: all ${ackedBeforeKill.size} source-acked records delivered`, 20_000);
          await waitFor(async () => {
            const m = await second.metrics();
            return m.sum('spillway_spool_records') + m.sum('spillway_buffer_records') + m.sum('spillway_inflight_records') === 0 || undefined;
          }, `round ${round}: nothing left owed`);
          assert.equal((await second.metrics()).imbalance(), 0);
          await c2.close();
        } finally {
          assert.equal(await second.stop(), 0);
        }
      }
    } finally {
      await pub.endAsync();
    }
  });
});

