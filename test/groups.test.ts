/**
 * Groups through the daemon process (docs/PROTOCOL.md, "Groups"): every
 * destination gets every record of the streams it selects, with its own
 * credit, acks, redelivery and attempts.
 *
 *  - two groups and a tap over a real Mosquitto, consumers with random
 *    credit, acks, nacks and a disconnect: each group gets exactly its
 *    records, `attempt` 1 on its own first delivery, the per-group identity
 *    balances on /metrics, the tap holds nothing;
 *  - a group whose only consumer is gone while records spill, then SIGTERM
 *    and a restart: nothing owed to either group is lost;
 *  - durable mode, the embedded broker, kill -9 at random moments with two
 *    groups: every PUBACKed payload reaches both groups;
 *  - a SIGHUP that removes a group and adds one: the removed group's
 *    consumer is closed with `unknown_group` and what only it held is
 *    released (logged with the count), the added group starts at the next
 *    record, the group kept goes on.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { SpillwayConsumer, type LossNotice, type WireRecord } from '../daemon/client/consumer.js';
import { startDaemon, testConfig, type DaemonProcess, type Metrics } from './helpers/daemon.js';
import { startMosquitto } from './helpers/mosquitto.js';
import { publishAll } from './helpers/publisher.js';
import { startSensors } from './helpers/sensors.js';
import { waitFor } from './helpers/wait.js';

const GROUPS = { cloud: {}, archive: { streams: ['g/+/temp'] } };

/** A consumer of a group that acks (and sometimes nacks) what it gets, granting random credit. */
async function groupConsumer(url: string, group: string, got: Map<string, WireRecord[]>, opts: { nackEvery?: number; nacked?: Set<string> } = {}): Promise<SpillwayConsumer> {
  const c = new SpillwayConsumer({ url, name: `${group}-c`, group });
  let n = 0;
  c.on('records', (records: WireRecord[]) => {
    const ack: number[] = [];
    const nack: number[] = [];
    for (const r of records) {
      got.set(r.data, [...(got.get(r.data) ?? []), r]);
      if (opts.nackEvery !== undefined && ++n % opts.nackEvery === 0 && r.attempt === 1) {
        nack.push(r.seq);
        opts.nacked?.add(r.data);
      } else ack.push(r.seq);
    }
    if (ack.length > 0) c.ack(ack);
    if (nack.length > 0) c.nack(nack);
    c.credit(1 + Math.floor(Math.random() * records.length * 2));
  });
  const welcome = await c.connect();
  assert.equal(welcome.group, group, 'welcome names the group joined');
  c.credit(50);
  return c;
}

function checkGroupIdentity(m: Metrics, group: string): void {
  const s = (name: string) => m.sum(name, { group });
  assert.equal(
    s('spillway_group_recovered_total') + s('spillway_group_ingested_total'),
    s('spillway_records_acked_total') + s('spillway_records_dropped_total') + s('spillway_group_backlog_records') + s('spillway_inflight_records'),
    `recovered + ingested = acked + dropped + backlog + inflight for ${group}`,
  );
}

const quiet = async (d: DaemonProcess, acked: Record<string, number>) =>
  waitFor(async () => {
    const m = await d.metrics();
    return Object.entries(acked).every(([group, n]) => m.sum('spillway_records_acked_total', { group }) === n && m.sum('spillway_inflight_records', { group }) === 0) ? m : undefined;
  }, `acked ${JSON.stringify(acked)}`, 30_000);

describe('groups', () => {
  it('two groups and a tap: each group gets exactly its records, on its own terms; the tap holds nothing', async () => {
    const broker = await startMosquitto();
    const daemon = await startDaemon(testConfig({ groups: GROUPS, sources: { mqtt: [{ url: broker.url, subscriptions: [{ topic: 'g/#', qos: 1 }] }] } }));
    const cloud = new Map<string, WireRecord[]>();
    const archive = new Map<string, WireRecord[]>();
    const tapped: WireRecord[] = [];
    const consumers: SpillwayConsumer[] = [];
    try {
      consumers.push(await groupConsumer(daemon.consumerUrl, 'cloud', cloud));
      const nacked = new Set<string>();
      consumers.push(await groupConsumer(daemon.consumerUrl, 'archive', archive, { nackEvery: 7, nacked }));
      const tap = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'tap', tap: true });
      tap.on('records', (records: WireRecord[]) => tapped.push(...records));
      const tapWelcome = await tap.connect();
      assert.equal(tapWelcome.tap, true);
      tap.credit(40);
      consumers.push(tap);
      const unknown = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'lost', group: 'nope' });
      const refused = new Promise<string>((resolve) => unknown.on('serverError', (e) => resolve(e.code)));
      await unknown.connect().catch(() => undefined);
      assert.equal(await refused, 'unknown_group');

      const msgs = Array.from({ length: 600 }, (_, i) => ({ topic: i % 3 === 0 ? `g/${i % 2 ? 'a' : 'b'}/hum` : `g/${i % 2 ? 'a' : 'b'}/temp`, payload: `m${i}` }));
      const half = msgs.length / 2;
      await publishAll(broker.url, msgs.slice(0, half), 1);
      // The archive's consumer leaves holding records and comes back: they are redelivered to the archive only.
      await (consumers[1] as SpillwayConsumer).close();
      consumers[1] = await groupConsumer(daemon.consumerUrl, 'archive', archive, { nackEvery: 7, nacked });
      await publishAll(broker.url, msgs.slice(half), 1);

      const temps = msgs.filter((m) => m.topic.endsWith('/temp'));
      await waitFor(() => (cloud.size === msgs.length && archive.size === temps.length ? true : undefined), 'both groups have their records', 30_000);
      const m = await quiet(daemon, { cloud: msgs.length, archive: temps.length });
      assert.deepEqual(new Set(cloud.keys()), new Set(msgs.map((x) => x.payload)), 'cloud selects every stream');
      assert.deepEqual(new Set(archive.keys()), new Set(temps.map((x) => x.payload)), 'archive selects only g/+/temp');
      // The archive nacked and left with records in flight (some never read: they come back with attempt 2);
      // the cloud did neither: each of its records came once, attempt 1, whatever the archive did.
      for (const [data, deliveries] of cloud) assert.deepEqual(deliveries.map((d) => d.attempt), [1], `${data}: once, attempt 1, at the cloud`);
      for (const [data, deliveries] of archive) {
        assert.ok(deliveries.every((d, i) => i === 0 || d.attempt > (deliveries[i - 1] as WireRecord).attempt), `${data}: attempts count up within the archive`);
      }
      // One seq per record for both groups: the same record, held once.
      const seqOf = new Map([...cloud].map(([data, d]) => [data, (d[0] as WireRecord).seq]));
      for (const [data, d] of archive) assert.equal((d[0] as WireRecord).seq, seqOf.get(data));
      checkGroupIdentity(m, 'cloud');
      checkGroupIdentity(m, 'archive');
      assert.equal(m.sum('spillway_group_ingested_total', { group: 'cloud' }), msgs.length);
      assert.equal(m.sum('spillway_group_ingested_total', { group: 'archive' }), temps.length);
      assert.ok(nacked.size > 0);
      for (const data of nacked) assert.ok((archive.get(data) ?? []).some((d) => d.attempt > 1), `${data}: nacked by the archive, and sent to it again`);
      const seenAgain = [...archive.values()].reduce((n, d) => n + d.filter((x) => x.attempt > 1).length, 0);
      // The daemon also counts redeliveries of records the first archive consumer never read before it left.
      assert.ok(m.sum('spillway_records_redelivered_total', { group: 'archive' }) >= seenAgain);
      assert.equal(m.sum('spillway_records_redelivered_total', { group: 'cloud' }), 0, 'the nacks and the departure were the archive\'s alone');
      assert.equal(m.sum('spillway_buffer_records') + m.sum('spillway_spool_records'), 0, 'everything acked by both: nothing held');
      assert.equal(m.sum('spillway_taps'), 1);
      assert.equal(m.sum('spillway_consumers', { group: 'cloud' }), 1);
      assert.equal(tapped.length, 40, 'the tap saw exactly its credit');
      assert.equal(new Set(tapped.map((r) => r.seq)).size, 40, 'at most once');
    } finally {
      for (const c of consumers) await c.close();
      await daemon.stop();
      await broker.stop();
    }
  });

  it('a group whose consumer is gone while records spill keeps them across SIGTERM; the other group is not held back', async () => {
    const broker = await startMosquitto();
    const config = testConfig({ groups: GROUPS, limits: { memoryBudgetBytes: 48 * 1024 }, sources: { mqtt: [{ url: broker.url, subscriptions: [{ topic: 'g/#', qos: 1 }] }] } });
    const first = await startDaemon(config);
    let second: DaemonProcess | undefined;
    const cloud = new Map<string, WireRecord[]>();
    const archive = new Map<string, WireRecord[]>();
    let c1: SpillwayConsumer | undefined;
    let c2: SpillwayConsumer | undefined;
    try {
      c1 = await groupConsumer(first.consumerUrl, 'cloud', cloud);
      const msgs = Array.from({ length: 1_500 }, (_, i) => ({ topic: 'g/x/temp', payload: `s${i}:`.padEnd(100, 'p') }));
      await publishAll(broker.url, msgs, 1);
      await waitFor(() => (cloud.size === msgs.length ? true : undefined), 'cloud took everything while the archive was away');
      const m1 = await quiet(first, { cloud: msgs.length });
      assert.ok(m1.sum('spillway_spool_records') > 0, 'what only the archive owes spilled to the spool');
      assert.equal(m1.sum('spillway_group_backlog_records', { group: 'archive' }), msgs.length);
      assert.equal(await first.stop('SIGTERM'), 0);
      await c1.close();

      second = await startDaemon(config, { dataDir: first.dataDir });
      c2 = await groupConsumer(second.consumerUrl, 'archive', archive);
      await waitFor(() => (archive.size === msgs.length ? true : undefined), 'the archive gets every record it was owed');
      const m2 = await quiet(second, { archive: msgs.length });
      assert.equal(m2.sum('spillway_group_recovered_total', { group: 'archive' }), msgs.length);
      assert.equal(m2.sum('spillway_group_recovered_total', { group: 'cloud' }), 0, 'cloud had acked all: nothing recovered for it');
      checkGroupIdentity(m2, 'archive');
      checkGroupIdentity(m2, 'cloud');
      assert.equal(m2.sum('spillway_spool_records') + m2.sum('spillway_buffer_records'), 0);
    } finally {
      await c1?.close();
      await c2?.close();
      await second?.stop();
      await broker.stop();
    }
  });

  it('a reload removes a group (its consumer closed, what only it held released) and adds one (it starts at the next record)', async () => {
    const broker = await startMosquitto();
    const config = testConfig({ groups: { cloud: {}, archive: {} }, sources: { mqtt: [{ url: broker.url, subscriptions: [{ topic: 'rg/#', qos: 1 }] }] } });
    const daemon = await startDaemon(config);
    const cloud = new Map<string, WireRecord[]>();
    const audit = new Map<string, WireRecord[]>();
    let archive: SpillwayConsumer | undefined;
    let c1: SpillwayConsumer | undefined;
    let c3: SpillwayConsumer | undefined;
    try {
      c1 = await groupConsumer(daemon.consumerUrl, 'cloud', cloud);
      // The archive's consumer grants no credit: everything waits for it.
      archive = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'archive-c', group: 'archive' });
      await archive.connect();
      const refused = new Promise<{ code: string }>((resolve) => archive?.once('serverError', resolve));
      const closed = new Promise<number>((resolve) => archive?.once('close', resolve));
      const before = Array.from({ length: 200 }, (_, i) => ({ topic: 'rg/a', payload: `b${i}` }));
      await publishAll(broker.url, before, 1);
      await quiet(daemon, { cloud: before.length });
      assert.equal((await daemon.metrics()).sum('spillway_group_backlog_records', { group: 'archive' }), before.length);

      await writeFile(daemon.configFile, JSON.stringify({ dataDir: daemon.dataDir, ...config, groups: { cloud: {}, audit: {} } }, null, 2));
      daemon.child.kill('SIGHUP');
      await daemon.waitForLog((l) => l.event === 'reloaded', 'the reload');
      const removed = await daemon.waitForLog((l) => l.event === 'group_removed', 'the archive group removed');
      assert.deepEqual([removed['group'], removed['consumers'], removed['released']], ['archive', 1, before.length], 'its consumer told, the 200 records only it held released');
      assert.equal((await refused).code, 'unknown_group');
      await closed;
      assert.ok(daemon.logs.some((l) => l.event === 'group_added' && l['group'] === 'audit'));
      const held = await daemon.metrics();
      assert.equal(held.sum('spillway_buffer_records') + held.sum('spillway_spool_records'), 0, 'nothing is held for the removed group');

      c3 = await groupConsumer(daemon.consumerUrl, 'audit', audit);
      const after = Array.from({ length: 50 }, (_, i) => ({ topic: 'rg/a', payload: `a${i}` }));
      await publishAll(broker.url, after, 1);
      const m = await quiet(daemon, { cloud: before.length + after.length, audit: after.length });
      assert.deepEqual([...audit.keys()].sort(), after.map((x) => x.payload).sort(), 'the added group starts at the next record: exactly the records after the reload');
      assert.equal(cloud.size, before.length + after.length, 'the group kept lost nothing');
      checkGroupIdentity(m, 'cloud');
      checkGroupIdentity(m, 'audit');
    } finally {
      await c1?.close();
      await c3?.close();
      await archive?.close();
      await daemon.stop();
      await broker.stop();
    }
  });

  it('a lagging group drops its own oldest beyond maxBacklogRecords, is told so, and the other group loses nothing', async () => {
    const broker = await startMosquitto();
    const daemon = await startDaemon(
      testConfig({ groups: { cloud: {}, archive: { maxBacklogRecords: 100 } }, sources: { mqtt: [{ url: broker.url, subscriptions: [{ topic: 'g/#', qos: 1 }] }] } }),
    );
    const cloud = new Map<string, WireRecord[]>();
    const cloudLosses: LossNotice[] = [];
    const archiveLosses: LossNotice[] = [];
    const c = await groupConsumer(daemon.consumerUrl, 'cloud', cloud);
    c.on('loss', (n: LossNotice) => cloudLosses.push(n));
    // The archive's consumer is connected but grants nothing: its backlog grows.
    const slow = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'archive-slow', group: 'archive' });
    slow.on('loss', (n: LossNotice) => archiveLosses.push(n));
    await slow.connect();
    try {
      await publishAll(broker.url, Array.from({ length: 300 }, (_, i) => ({ topic: 'g/x/temp', payload: `l${i}` })), 1);
      await waitFor(() => (cloud.size === 300 ? true : undefined), 'cloud got all 300');
      const m = await quiet(daemon, { cloud: 300 });
      assert.equal(m.sum('spillway_records_dropped_total', { group: 'archive', reason: 'lagging' }), 200);
      assert.equal(m.sum('spillway_group_backlog_records', { group: 'archive' }), 100);
      assert.equal(m.sum('spillway_records_dropped_total', { group: 'cloud' }), 0);
      checkGroupIdentity(m, 'archive');
      checkGroupIdentity(m, 'cloud');
      await waitFor(() => (archiveLosses.reduce((n, l) => n + (l.reason === 'lagging' ? l.count : 0), 0) === 200 ? true : undefined), 'the archive told of its 200 lagging drops');
      assert.ok(archiveLosses.every((l) => l.group === 'archive'));
      assert.deepEqual(cloudLosses, [], 'the cloud hears nothing of the archive\'s losses');
    } finally {
      await c.close();
      await slow.close();
      await daemon.stop();
      await broker.stop();
    }
  });

  it('records of a stream no group selects are discarded, counted and logged, and the selected ones all arrive', async () => {
    const daemon = await startDaemon(testConfig({ groups: { temps: { streams: ['sensors/+/temp'] } }, sources: { embeddedBroker: { enabled: true, port: 0 } } }));
    const got = new Map<string, WireRecord[]>();
    const c = await groupConsumer(daemon.consumerUrl, 'temps', got);
    try {
      const temps = Array.from({ length: 30 }, (_, i) => ({ topic: 'sensors/u/temp', payload: `t${i}` }));
      const hums = Array.from({ length: 20 }, (_, i) => ({ topic: 'sensors/u/hum', payload: `h${i}` }));
      await publishAll(daemon.brokerUrl as string, [...temps, ...hums].sort(() => Math.random() - 0.5), 1);
      const m = await quiet(daemon, { temps: temps.length });
      assert.deepEqual([...got.keys()].sort(), temps.map((t) => t.payload).sort(), 'exactly the selected records');
      assert.equal(m.sum('spillway_unselected_records_total'), hums.length);
      const logged = await waitFor(() => {
        const lines = daemon.logs.filter((l) => l.event === 'records_unselected');
        return lines.reduce((n, l) => n + Number(l['count']), 0) === hums.length ? lines : undefined;
      }, 'records_unselected logged for every discarded record');
      assert.ok(logged.every((l) => l.level === 40), 'a WARN (pino 40): nothing a group asked for was lost');
      checkGroupIdentity(m, 'temps');
    } finally {
      await c.close();
      await daemon.stop();
    }
  });

  it('durable mode, kill -9 at random moments: every PUBACKed payload reaches both groups', async () => {
    const config = testConfig({ durability: 'durable', groups: { cloud: {}, archive: {} }, sources: { embeddedBroker: { enabled: true, port: 0 } } });
    const sent = new Set<string>();
    const acked = new Set<string>();
    let dataDir: string | undefined;
    for (let round = 0; round < 8; round++) {
      const daemon = await startDaemon(config, dataDir === undefined ? {} : { dataDir });
      dataDir = daemon.dataDir;
      const sensors = await startSensors(daemon.brokerUrl as string, { count: 3, prefix: `r${round}`, topic: 'sensors/groups', sent, acked });
      const target = acked.size + 20 + Math.floor(Math.random() * 200);
      await waitFor(() => acked.size >= target || undefined, `${target} PUBACKs in round ${round}`, 20_000, 2);
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      await sensors.stop();
    }
    const last = await startDaemon(config, { dataDir });
    const cloud = new Map<string, WireRecord[]>();
    const archive = new Map<string, WireRecord[]>();
    const cs = [await groupConsumer(last.consumerUrl, 'cloud', cloud), await groupConsumer(last.consumerUrl, 'archive', archive)];
    try {
      await waitFor(() => ([...acked].every((p) => cloud.has(p) && archive.has(p)) ? true : undefined), 'every PUBACKed payload at both groups', 60_000, 100);
      assert.deepEqual([...cloud.keys(), ...archive.keys()].filter((p) => !sent.has(p)), [], 'nothing delivered that was not sent');
    } finally {
      for (const c of cs) await c.close();
      await last.stop();
    }
  });
});
