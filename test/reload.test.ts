/**
 * SIGHUP: what can change live changes (a lower memory budget at once),
 * rings, spool and in-flight records are kept, and a change that needs a
 * restart (or a bad file) is refused with a message while the running
 * config stays.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { SpillwayConsumer, type WireRecord } from '../daemon/client/consumer.js';
import { deepMerge, startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

describe('SIGHUP reload', () => {
  let mosquitto: Mosquitto;
  let daemon: DaemonProcess;
  let config: Record<string, unknown>;

  /** The config file becomes the start config with `overrides` (and what earlier rewrites set) merged in. */
  const rewrite = async (overrides: Record<string, unknown>) => {
    config = deepMerge(config, overrides);
    await writeFile(daemon.configFile, JSON.stringify({ dataDir: daemon.dataDir, ...config }, null, 2));
  };
  const hup = async (expect: 'reloaded' | 'reload_refused') => {
    const seen = daemon.logs.filter((l) => l.event === expect).length;
    daemon.child.kill('SIGHUP');
    return daemon.waitForLog((l) => l.event === expect && daemon.logs.filter((x) => x.event === expect).indexOf(l) === seen, `a ${expect} line`);
  };

  before(async () => {
    mosquitto = await startMosquitto();
    config = testConfig({
      sources: { mqtt: [{ url: mosquitto.url, subscriptions: [{ topic: 'hup/#', qos: 1 }] }] },
      streamDefaults: { capacityRecords: 50 },
      limits: { memoryBudgetBytes: 256 * 1024 },
    });
    daemon = await startDaemon(config);
  });

  after(async () => {
    assert.equal(await daemon?.stop(), 0);
    await mosquitto?.stop();
  });

  it('reloads under load and loses nothing', async () => {
    const N = 3_000;
    const got = new Set<string>();
    const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'slow' });
    c.on('records', (records: WireRecord[]) => {
      for (const r of records) got.add(r.data);
      c.ack(records.map((r) => r.seq));
      c.credit(records.length);
    });
    await c.connect();
    c.credit(20);
    const publishing = publishAll(mosquitto.url, Array.from({ length: N }, (_, i) => ({ topic: `hup/${i % 3}`, payload: `h${i}` })));
    for (const [i, capacityRecords] of [20, 200, 5].entries()) {
      await waitFor(() => got.size > (i + 1) * 200 || undefined, 'records flowing');
      await rewrite({ streamDefaults: { capacityRecords }, log: { level: i % 2 === 0 ? 'debug' : 'info' }, consumers: { maxCredit: 5_000 + i } });
      const line = await hup('reloaded');
      assert.match(String(line.msg), /streamDefaults\.capacityRecords/);
    }
    await publishing;
    await waitFor(() => got.size === N || undefined, `all ${N} delivered across reloads (have ${got.size})`, 30_000);
    const m = await daemon.metrics();
    assert.equal(m.sum('spillway_records_dropped_total'), 0, 'shrinking rings spilled, not dropped');
    assert.equal(m.imbalance(), 0);
    await c.close();
  });

  it('changes priorities live', async () => {
    await publishAll(mosquitto.url, [...Array.from({ length: 30 }, (_, i) => ({ topic: 'hup/low', payload: `low${i}` })), ...Array.from({ length: 30 }, (_, i) => ({ topic: 'hup/urgent', payload: `urgent${i}` }))]);
    await waitFor(async () => (await daemon.metrics()).sum('spillway_buffer_records') + (await daemon.metrics()).sum('spillway_spool_records') === 60 || undefined, '60 waiting');
    await rewrite({ streams: { 'hup/urgent': { priority: 0 } } });
    await hup('reloaded');
    const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'prio' });
    const got: WireRecord[] = [];
    c.on('records', (records) => {
      got.push(...records);
      c.ack(records.map((r) => r.seq));
    });
    await c.connect();
    c.credit(30);
    await waitFor(() => got.length === 30 || undefined, '30 records');
    assert.ok(got.every((r) => r.stream === 'hup/urgent'), 'the stream made priority 0 goes first');
    c.credit(30);
    await waitFor(() => got.length === 60 || undefined, '60 records');
    await c.close();
  });

  it('a shorter ack timeout applies to the deliveries after it, not only once the older ones time out', async () => {
    const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'holder' });
    const got: WireRecord[] = [];
    c.on('records', (records) => got.push(...records)); // never acks
    await c.connect();
    c.credit(1);
    await publishAll(mosquitto.url, [{ topic: 'hup/ack', payload: 'before' }]);
    await waitFor(() => got.length === 1 || undefined, 'the first record, sent with the 30 s timeout');
    await rewrite({ consumers: { ackTimeoutMs: 300 } });
    await hup('reloaded');
    c.credit(2);
    await publishAll(mosquitto.url, [{ topic: 'hup/ack', payload: 'after' }]);
    await waitFor(() => got.filter((r) => r.data === 'after').length === 2 || undefined, 'the record sent after the reload, redelivered within its 300 ms', 10_000);
    assert.deepEqual(got.map((r) => [r.data, r.attempt]), [['before', 1], ['after', 1], ['after', 2]], 'the first still waits for its own 30 s');
    await c.close();
    await rewrite({ consumers: { ackTimeoutMs: 30_000 } });
    await hup('reloaded');
  });

  it('a lower memory budget applies at once: what no consumer takes is spilled, nothing dropped, and comes back in order', async () => {
    const N = 200;
    const held = async () => (await daemon.metrics()).sum('spillway_memory_held_bytes');
    await rewrite({ streamDefaults: { capacityRecords: 1_000 }, limits: { memoryBudgetBytes: 256 * 1024 } });
    await hup('reloaded');
    const before = await daemon.metrics();
    // What the tests before left waiting (a record whose consumer went) counts too.
    const waiting = (x: typeof before) => x.sum('spillway_buffer_records') + x.sum('spillway_spool_records');
    const left = waiting(before);
    const payloads = Array.from({ length: N }, (_, i) => `budget-${String(i).padStart(3, '0')}-${'x'.repeat(390)}`);
    await publishAll(mosquitto.url, payloads.map((payload) => ({ topic: 'hup/budget', payload })));
    await waitFor(async () => (await daemon.metrics()).sum('spillway_buffer_records') === before.sum('spillway_buffer_records') + N || undefined, `${N} more in memory`);
    assert.ok((await held()) > 100 * 1024, 'more than the new budget held before the reload');
    await rewrite({ limits: { memoryBudgetBytes: 48 * 1024 } });
    await hup('reloaded');
    const m = await daemon.metrics();
    assert.ok(m.sum('spillway_memory_held_bytes') <= 48 * 1024, `held ${m.sum('spillway_memory_held_bytes')} within the new budget right after the reload`);
    assert.equal(waiting(m), left + N, 'the rest spilled');
    assert.ok(m.sum('spillway_spool_records') > N / 2);
    assert.equal(m.sum('spillway_records_dropped_total'), before.sum('spillway_records_dropped_total'), 'nothing dropped');
    const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'budget' });
    const got: string[] = [];
    c.on('records', (records: WireRecord[]) => {
      got.push(...records.map((r) => r.data).filter((d) => d.startsWith('budget-')));
      c.ack(records.map((r) => r.seq));
      c.credit(records.length);
    });
    await c.connect();
    c.credit(50);
    await waitFor(() => got.length === N || undefined, `all ${N} delivered (have ${got.length})`);
    assert.deepEqual(got, payloads, 'every one, oldest first');
    await c.close();
    await rewrite({ limits: { memoryBudgetBytes: 256 * 1024 } });
    await hup('reloaded');
  });

  it('refuses a change that needs a restart, and a bad file, keeping the running config', async () => {
    await rewrite({ consumers: { listen: { port: 1 } }, durability: 'durable' });
    const refused = await hup('reload_refused');
    assert.deepEqual(refused['needRestart'], ['durability', 'consumers.listen.port']);
    await writeFile(daemon.configFile, 'consumers:\n  maxCredit: -3\n');
    const bad = await hup('reload_refused');
    assert.deepEqual(bad['problems'], ['consumers.maxCredit: -3 is not allowed: expected at least 1']);
    // Still serving as before.
    const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'after' });
    const welcome = await c.connect();
    assert.equal(welcome.maxCredit, 5_002, 'the last good reload is in force');
    await c.close();
    assert.equal((await daemon.health()).status, 200);
  });
});

describe('SIGHUP: a lower spool quota', () => {
  it('is met at once by the least important rows, the file gives their pages back, and a more important record still spills', async () => {
    let config = testConfig({
      sources: { embeddedBroker: { enabled: true, port: 0 } },
      streamDefaults: { capacityRecords: 20 },
      streams: { 'sensors/alarm': { priority: 0 }, 'sensors/bulk': { priority: 3 } },
      limits: { memoryBudgetBytes: 64 * 1024 },
      spool: { quotaBytes: 16 * 1024 * 1024 },
    });
    const daemon = await startDaemon(config);
    try {
      const body = 'q'.repeat(1_000);
      const send = (stream: string, tag: string, n: number) => publishAll(daemon.brokerUrl as string, Array.from({ length: n }, (_, i) => ({ topic: `sensors/${stream}`, payload: `${tag}${i}:${body}` })));
      await send('alarm', 'a', 200);
      await send('bulk', 'b', 4_000);
      /** Once all `n` ingested are held or dropped (no consumer). */
      const settled = async (n: number) =>
        waitFor(async () => {
          const m = await daemon.metrics();
          return m.sum('spillway_records_ingested_total') === n && m.sum('spillway_buffer_records') + m.sum('spillway_spool_records') + m.sum('spillway_records_dropped_total') === n ? m : undefined;
        }, `${n} records held or dropped`);
      const before = await settled(4_200);
      assert.equal(before.sum('spillway_records_dropped_total'), 0);
      assert.ok(before.sum('spillway_spool_disk_bytes') > 4 * 1024 * 1024, `over 4 MiB on disk (${before.sum('spillway_spool_disk_bytes')})`);

      const quota = 2 * 1024 * 1024;
      config = deepMerge(config, { spool: { quotaBytes: quota } });
      await writeFile(daemon.configFile, JSON.stringify({ dataDir: daemon.dataDir, ...config }, null, 2));
      daemon.child.kill('SIGHUP');
      await daemon.waitForLog((l) => l.event === 'reloaded', 'the reload');
      const after = await daemon.metrics();
      const gone = after.sum('spillway_records_dropped_total', { reason: 'spool_full' });
      assert.ok(gone > 0, 'rows went for the lower quota');
      assert.equal(after.sum('spillway_records_dropped_total', { stream: 'sensors/alarm' }), 0, 'none of the more important stream');
      assert.equal(after.sum('spillway_records_dropped_total'), gone, 'spool_full only');
      assert.ok(after.sum('spillway_spool_bytes') <= quota, `the quota's count within it (${after.sum('spillway_spool_bytes')})`);
      assert.equal(after.imbalance(), 0);

      // A more important record still spills (bulk rows make room for it): the file gave back the pages of the rows that went.
      await send('alarm', 'later', 100);
      const end = await settled(4_300);
      assert.equal(end.sum('spillway_records_dropped_total', { stream: 'sensors/alarm' }), 0, 'every alarm record kept');
      assert.equal(end.sum('spillway_records_ingested_total', { stream: 'sensors/alarm' }), 300);
      assert.ok(end.sum('spillway_spool_disk_bytes') <= quota, `the spool within its quota on disk (${end.sum('spillway_spool_disk_bytes')})`);
      // Every alarm record is delivered, in order.
      const got: string[] = [];
      const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'drain' });
      c.on('records', (records: WireRecord[]) => {
        for (const r of records) if (r.stream === 'sensors/alarm') got.push(r.data);
        c.ack(records.map((r) => r.seq));
        c.credit(records.length);
      });
      await c.connect();
      c.credit(500);
      await waitFor(async () => {
        const m = await daemon.metrics();
        return m.sum('spillway_buffer_records') + m.sum('spillway_spool_records') + m.sum('spillway_inflight_records') === 0 || undefined;
      }, 'everything held delivered');
      await c.close();
      const alarms = [...Array.from({ length: 200 }, (_, i) => `a${i}:${body}`), ...Array.from({ length: 100 }, (_, i) => `later${i}:${body}`)];
      assert.deepEqual(got, alarms);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
  it('a start with a lower quota than the spool holds: the least important rows go at once (counted), the file comes within it, a more important record still spills', async () => {
    const base = {
      sources: { embeddedBroker: { enabled: true, port: 0 } },
      streamDefaults: { capacityRecords: 20 },
      streams: { 'sensors/alarm': { priority: 0 }, 'sensors/bulk': { priority: 3 } },
      limits: { memoryBudgetBytes: 64 * 1024 },
    };
    const body = 'r'.repeat(1_000);
    const first = await startDaemon(testConfig({ ...base, spool: { quotaBytes: 16 * 1024 * 1024 } }));
    await publishAll(first.brokerUrl as string, [
      ...Array.from({ length: 200 }, (_, i) => ({ topic: 'sensors/alarm', payload: `a${i}:${body}` })),
      ...Array.from({ length: 4_000 }, (_, i) => ({ topic: 'sensors/bulk', payload: `b${i}:${body}` })),
    ]);
    await waitFor(async () => ((await first.metrics()).sum('spillway_records_ingested_total') === 4_200 ? true : undefined), '4,200 ingested');
    assert.equal(await first.stop(), 0);
    const quota = 2 * 1024 * 1024;
    const second = await startDaemon(testConfig({ ...base, spool: { quotaBytes: quota } }), { dataDir: first.dataDir });
    try {
      const m = await second.metrics();
      assert.equal(m.sum('spillway_records_recovered_total'), 4_200);
      const gone = m.sum('spillway_records_dropped_total', { reason: 'spool_full', stream: 'sensors/bulk' });
      assert.ok(gone > 0, 'bulk rows went for the lower quota');
      assert.equal(m.sum('spillway_records_dropped_total'), gone, 'bulk rows only, as spool_full');
      assert.ok(m.sum('spillway_spool_disk_bytes') <= quota, `the spool within its quota on disk (${m.sum('spillway_spool_disk_bytes')})`);
      assert.equal(m.imbalance(), 0);
      await publishAll(second.brokerUrl as string, Array.from({ length: 100 }, (_, i) => ({ topic: 'sensors/alarm', payload: `later${i}:${body}` })));
      const end = await waitFor(async () => {
        const e = await second.metrics();
        return e.sum('spillway_records_ingested_total') === 100 ? e : undefined;
      }, 'the new alarm records');
      assert.equal(end.sum('spillway_records_dropped_total', { stream: 'sensors/alarm' }), 0, 'every alarm record kept');
      assert.equal(end.imbalance(), 0);
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });
});
