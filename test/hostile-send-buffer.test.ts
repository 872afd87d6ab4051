/**
 * Consumers that hurt by doing nothing: one that grants credit and never
 * reads its socket, and connections that never say hello and never answer
 * a close. Real daemon child processes (under the systemd unit's heap
 * limit), its embedded broker fed by mqtt.js, raw WebSocket clients whose
 * TCP sockets are paused so the kernel's buffers fill for real.
 *
 * What must hold (docs/PROTOCOL.md guarantees 6 and 7, issue 14):
 * - the daemon's memory stays bounded (peak RSS from /proc/<pid>/status),
 *   its send buffer for the stuck consumer stays at consumers.maxBufferedBytes
 *   plus one message, and it does not crash;
 * - a good consumer alongside gets every record first while the stuck one
 *   is full, with p99 publish→receive latency under 1 s; nothing is lost or
 *   dropped as poison, also while the stuck one still looked writable (the
 *   kernel's buffers taking what it did not read) and its deliveries timed
 *   out again and again; conservation holds exactly;
 * - a consumer stuck for stuckTimeoutMs is closed with `protocol` and what it
 *   held goes to another consumer;
 * - 64 connections that never say hello hold the 64 slots only until the
 *   hello timeout, not until ws's 30 s close handshake gives up.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type WebSocket from 'ws';
import { SpillwayConsumer, type WireRecord } from '../daemon/client/consumer.js';
import { FRAME_TARGET_CHARS } from '../daemon/consumers/send-buffer.js';
import { startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { freePort } from './helpers/ports.js';
import { rawClient, type RawClient } from './helpers/raw-client.js';
import { waitFor } from './helpers/wait.js';

const HEAP_LIMIT = '--max-old-space-size=128';
const MiB = 1024 * 1024;

/** The socket under a ws client: pausing it stops reading, so the daemon's writes back up for real. */
function tcp(ws: WebSocket): import('node:net').Socket {
  return (ws as unknown as { _socket: import('node:net').Socket })._socket;
}

/** A client that says hello, grants `credit`, then never reads again. */
async function stuckConsumer(url: string, credit: number): Promise<RawClient> {
  const c = await rawClient(url);
  c.send({ type: 'hello', v: 1, consumer: 'stuck' });
  await c.next('welcome');
  tcp(c.ws).pause();
  c.send({ type: 'credit', n: credit });
  return c;
}

/** kB → bytes of a /proc/<pid>/status field (VmHWM: peak RSS). */
async function procStatusBytes(pid: number, field: string): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  assert.ok(m, `${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** TCP states of loopback connections by `localPort>remotePort`, from /proc/net/tcp. */
async function tcpStates(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const port = (hexAddr: string) => Number.parseInt(hexAddr.split(':')[1] as string, 16);
  for (const line of (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    out.set(`${port(f[1] as string)}>${port(f[2] as string)}`, f[3] as string);
  }
  return out;
}

const ESTABLISHED = '01';
const CLOSE_WAIT = '08';
/** FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSING: this end closed its socket (a FIN may still wait behind unread data). */
const CLOSED_HERE = new Set(['04', '05', '06', '0B']);

/** `daemonPort>clientPort` and `clientPort>daemonPort` of a client's connection. */
function connectionKeys(daemonUrl: string, ws: WebSocket): { daemonSide: string; clientSide: string } {
  const daemonPort = Number(new URL(daemonUrl).port);
  const clientPort = tcp(ws).localPort as number;
  return { daemonSide: `${daemonPort}>${clientPort}`, clientSide: `${clientPort}>${daemonPort}` };
}

async function publishEach(client: MqttClient, topic: string, payloads: readonly string[]): Promise<void> {
  const window = 100;
  for (let i = 0; i < payloads.length; i += window) {
    await Promise.all(payloads.slice(i, i + window).map((p) => client.publishAsync(topic, p, { qos: 1 })));
  }
}

/** Publishes `n` payloads `make(i)` at about `perSecond`, in ticks of 50 ms. */
async function publishAtRate(client: MqttClient, topic: string, from: number, n: number, perSecond: number, make: (i: number) => string): Promise<void> {
  const perTick = Math.max(1, Math.round(perSecond / 20));
  const t0 = Date.now();
  for (let done = 0; done < n; ) {
    const k = Math.min(perTick, n - done);
    await Promise.all(Array.from({ length: k }, (_, j) => client.publishAsync(topic, make(from + done + j), { qos: 1 })));
    done += k;
    const due = t0 + (done / perTick) * 50;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
  }
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function stopAndClean(daemon: DaemonProcess | undefined): Promise<void> {
  if (daemon === undefined) return;
  try {
    assert.equal(await daemon.stop(), 0, 'exits 0 on SIGTERM');
  } finally {
    await rm(dirname(daemon.configFile), { recursive: true, force: true });
  }
}

describe('a consumer that grants credit and never reads', () => {
  const PAYLOAD_PAD = 'x'.repeat(1_000);
  const payload = (i: number) => `${i} ${Date.now()} ${PAYLOAD_PAD}`;
  let daemon: DaemonProcess | undefined;
  let pub: MqttClient | undefined;
  let good: SpillwayConsumer | undefined;
  let stuck: RawClient | undefined;

  before(async () => {
    const port = await freePort();
    daemon = await startDaemon(
      testConfig({
        sources: { embeddedBroker: { enabled: true, port } },
        // Short ack timeouts make the stuck consumer's deliveries time out again and again within the test.
        consumers: { ackTimeoutMs: 2_000, maxAttempts: 3, stuckTimeoutMs: 6_000 },
      }),
      { nodeArgs: [HEAP_LIMIT] },
    );
    pub = await mqtt.connectAsync(daemon.brokerUrl as string, { clientId: `send-buffer-pub-${process.pid}` });
  });

  after(async () => {
    await good?.close();
    stuck?.ws.terminate();
    await pub?.endAsync();
    await stopAndClean(daemon);
  });

  it('keeps memory bounded and the good consumer served, losing nothing', async (t) => {
    const d = daemon as DaemonProcess;
    const client = pub as MqttClient;
    const pid = d.child.pid as number;
    const rssAtStart = await procStatusBytes(pid, 'VmRSS');

    // The good consumer keeps 1,000 credits open and acks at once.
    const received = new Map<number, { index: number; attempt: number; latencyMs: number }[]>();
    good = new SpillwayConsumer({ url: d.consumerUrl, name: 'good' });
    const g = good;
    g.on('records', (records: WireRecord[]) => {
      const now = Date.now();
      for (const r of records) {
        const [index, sentAt] = r.data.split(' ', 2).map(Number) as [number, number];
        const list = received.get(r.seq) ?? [];
        list.push({ index, attempt: r.attempt, latencyMs: now - sentAt });
        received.set(r.seq, list);
      }
      g.ack(records.map((r) => r.seq));
      g.credit(records.length);
    });
    await g.connect();
    g.credit(1_000);

    // The stuck one grants 10,000, never reads, and keeps granting.
    stuck = await stuckConsumer(d.consumerUrl, 10_000);
    const s = stuck;
    const regrant = setInterval(() => s.send({ type: 'credit', n: 10_000 }), 500);
    try {
      // Phase A, steady: small records at 300/s for three ack timeouts and more. The kernel's
      // socket buffers take megabytes before the daemon's send buffer shows anything, so the
      // stuck consumer is writable all along and gets most of them (it grants the most): they
      // time out there again and again, and must not count as failed attempts (maxAttempts 3).
      const STEADY = 2_100;
      await publishAtRate(client, 'sensors/a', 0, STEADY, 300, (i) => `${i} ${Date.now()} ${'s'.repeat(100)}`);
      let published = STEADY;
      assert.equal((await d.metrics()).sum('spillway_records_dropped_total'), 0, 'nothing dropped while the stuck consumer looked writable');
      // Phase A, flat out: until the stuck consumer's send buffer is full.
      await waitFor(
        async () => {
          await publishEach(client, 'sensors/a', Array.from({ length: 200 }, (_, j) => payload(published + j)));
          published += 200;
          return (await d.metrics()).sum('spillway_consumers_unwritable') === 1 || undefined;
        },
        'the stuck consumer to be unwritable',
        20_000,
        0,
      );
      const phaseB = published;

      // Phase B: 8,000 records at 2,000/s while the stuck one is full: each goes to the good consumer first.
      const N_B = 8_000;
      await publishAtRate(client, 'sensors/a', phaseB, N_B, 2_000, payload);
      published += N_B;
      await waitFor(async () => (await d.metrics()).sum('spillway_records_ingested_total') === published || undefined, `${published} ingested`);

      const m = await d.metrics();
      assert.ok(m.sum('spillway_consumer_send_buffer_bytes') <= 1 * MiB + FRAME_TARGET_CHARS + 2 * 1_100, `send buffers ${m.sum('spillway_consumer_send_buffer_bytes')} bytes`);

      // The stuck consumer is closed after stuckTimeoutMs; then every record is acked by the good one.
      await d.waitForLog((l) => l.event === 'consumer_error' && l['code'] === 'protocol' && l['consumer'] === 'stuck', 'the stuck consumer closed', 20_000);
      await waitFor(async () => {
        const q = await d.metrics();
        return q.sum('spillway_records_acked_total') + q.sum('spillway_records_dropped_total') === published && q.sum('spillway_inflight_records') === 0 ? q : undefined;
      }, 'every record acked', 20_000);

      // Bounded memory, no crash, every record accounted for.
      const peak = await procStatusBytes(pid, 'VmHWM');
      t.diagnostic(`peak RSS ${Math.round(peak / MiB)} MiB (${Math.round(rssAtStart / MiB)} at start); ${phaseB} records published before the stuck consumer was full`);
      assert.ok(peak < 200 * MiB, `peak RSS ${Math.round(peak / MiB)} MiB (at start ${Math.round(rssAtStart / MiB)} MiB)`);
      assert.equal(d.child.exitCode, null, 'still running');
      const end = await d.metrics();
      assert.equal(end.imbalance(), 0, 'conservation');
      assert.equal(end.sum('spillway_consumers'), 1, 'only the good consumer is left');

      // The core's part: a consumer that cannot take more is sent nothing, and its ack timeouts are not failed attempts.
      assert.equal(end.sum('spillway_records_dropped_total', { reason: 'poison' }), 0, 'nothing dropped as poison');
      assert.equal(end.sum('spillway_records_dropped_total'), 0, 'nothing dropped');
      assert.equal(end.sum('spillway_records_acked_total'), published);
      const indexes = new Set([...received.values()].map((l) => (l[0] as { index: number }).index));
      assert.equal(indexes.size, published, 'the good consumer got every record');

      const firstB = [...received.values()].flat().filter((r) => r.index >= phaseB);
      const firstDeliveries = firstB.filter((r) => r.attempt === 1);
      assert.equal(firstDeliveries.length, N_B, `all ${N_B} records of phase B went first to the good consumer (got ${firstDeliveries.length} with attempt 1)`);
      const p99 = percentile(firstDeliveries.map((r) => r.latencyMs), 99);
      t.diagnostic(`phase B: p99 publish→receive ${p99} ms`);
      assert.ok(p99 < 1_000, `p99 publish→receive latency ${p99} ms`);
    } finally {
      clearInterval(regrant);
    }
  });
});

describe('a stuck consumer is closed after stuckTimeoutMs', () => {
  const STUCK_MS = 1_500;
  const MAX_BUFFERED = 64 * 1024;
  /** More credit than it will ever use: what stops the deliveries is its send buffer. */
  const CREDIT = 5_000;
  const PAD = 'y'.repeat(32 * 1024);
  let daemon: DaemonProcess | undefined;

  before(async () => {
    const port = await freePort();
    daemon = await startDaemon(
      testConfig({
        sources: { embeddedBroker: { enabled: true, port } },
        consumers: { stuckTimeoutMs: STUCK_MS, maxBufferedBytes: MAX_BUFFERED, ackTimeoutMs: 60_000 },
      }),
    );
  });

  after(() => stopAndClean(daemon));

  it('with `protocol`, and what it held goes to another consumer', async () => {
    const d = daemon as DaemonProcess;
    const pausedAt = Date.now();
    const stuck = await stuckConsumer(d.consumerUrl, CREDIT);
    // Watched while publishing: the stuck clock cannot start before the consumer is first seen full.
    const fullSeen = waitFor(async () => {
      const m = await d.metrics();
      return m.sum('spillway_consumers_unwritable') === 1 ? { at: Date.now() } : undefined;
    }, 'the stuck consumer unwritable');
    const client = await mqtt.connectAsync(d.brokerUrl as string, { clientId: `send-buffer-stuck-${process.pid}` });
    let N = 0;
    try {
      // Until records wait in the daemon for room: the kernel's socket buffers take what they take
      // first (a paused reader's receive buffer can grow towards tcp_rmem's maximum, 32 MiB here).
      await waitFor(
        async () => {
          await publishEach(client, 'sensors/s', Array.from({ length: 50 }, (_, i) => `${N + i} ${PAD}`));
          N += 50;
          return (await d.metrics()).sum('spillway_consumer_send_waiting_records') > 0 || undefined;
        },
        'records waiting in the daemon for room in the stuck consumer\'s send buffer',
        30_000,
        0,
      );
    } finally {
      await client.endAsync();
    }
    const fullAt = (await fullSeen).at;
    await waitFor(async () => (await d.metrics()).sum('spillway_records_ingested_total') === N || undefined, `${N} ingested`);
    // One scrape later the dispatch of the last ingest is done: what the stuck consumer holds is settled.
    const full = await d.metrics();
    const held = full.sum('spillway_inflight_records');
    assert.ok(held > 0 && held <= N, `the stuck consumer holds ${held}`);
    assert.equal(held + full.sum('spillway_buffer_records') + full.sum('spillway_spool_records'), N);
    // At most the bound plus one message (records of ~32 KiB cut near FRAME_TARGET_CHARS).
    assert.ok(full.sum('spillway_consumer_send_buffer_bytes') <= MAX_BUFFERED + FRAME_TARGET_CHARS + PAD.length + 300, `send buffer ${full.sum('spillway_consumer_send_buffer_bytes')} bytes`);
    assert.ok(full.sum('spillway_consumer_send_waiting_records') > 0, 'the rest waits in memory');
    assert.equal(full.sum('spillway_consumers_unwritable'), 1);
    const conn = connectionKeys(d.consumerUrl, stuck.ws);
    assert.equal((await tcpStates()).get(conn.daemonSide), ESTABLISHED);

    const closed = await d.waitForLog((l) => l.event === 'consumer_error' && l['consumer'] === 'stuck', 'the stuck consumer closed', 10_000);
    assert.equal(closed['code'], 'protocol');
    assert.match(String(closed['reason']), /read none of the \d+ bytes .*maxBufferedBytes 65536.* for 1500 ms/);
    // Not before it could have been full (it paused before granting), nor long after it was seen full.
    const closedAt = Date.parse(String(closed['time']));
    assert.ok(closedAt - pausedAt >= STUCK_MS, `closed ${closedAt - pausedAt} ms after it stopped reading`);
    assert.ok(closedAt - fullAt <= STUCK_MS + 1_500, `closed ${closedAt - fullAt} ms after it was seen full`);
    // Terminated, not waiting for a close handshake it will never answer (its FIN waits behind the unread bytes).
    await waitFor(async () => CLOSED_HERE.has((await tcpStates()).get(conn.daemonSide) ?? '') || undefined, 'the stuck socket closed by the daemon', 2_000);
    stuck.ws.terminate();

    const good = new SpillwayConsumer({ url: d.consumerUrl, name: 'good' });
    const got: WireRecord[] = [];
    good.on('records', (records: WireRecord[]) => got.push(...records));
    await good.connect();
    good.credit(N);
    await waitFor(() => got.length === N || undefined, `${N} records delivered`);
    const seqs = got.map((r) => r.seq);
    const first = Math.min(...seqs);
    assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => first + i), 'every seq once, in order');
    assert.deepEqual(got.map((r) => Number(r.data.split(' ', 1)[0])), Array.from({ length: N }, (_, i) => i), 'exactly the records published');
    // The stuck consumer was sent the oldest `held`: exactly those come again, on their second delivery.
    const again = got.filter((r) => r.attempt === 2).map((r) => r.seq);
    assert.deepEqual(again, Array.from({ length: held }, (_, i) => first + i), 'exactly the seqs it held are redelivered');
    assert.ok(got.every((r) => r.attempt === (r.seq < first + held ? 2 : 1)), 'the others on their first delivery');
    good.ack(seqs);
    const m = await waitFor(async () => {
      const q = await d.metrics();
      return q.sum('spillway_records_acked_total') === N ? q : undefined;
    }, 'all acked');
    assert.equal(m.sum('spillway_records_redelivered_total'), held);
    assert.equal(m.imbalance(), 0);
    assert.equal(m.sum('spillway_consumers_unwritable'), 0);
    assert.equal(m.sum('spillway_consumer_send_waiting_records'), 0);
    await good.close();
  });
});

describe('64 connections that never say hello', () => {
  let daemon: DaemonProcess | undefined;

  before(async () => {
    // The protocol's defaults: hello within 5 s, 64 consumers.
    daemon = await startDaemon(testConfig({ consumers: { helloTimeoutMs: 5_000, maxConsumers: 64 } }));
  });

  after(() => stopAndClean(daemon));

  it('hold the slots only until the hello timeout: a good consumer is welcomed within 6 s', async () => {
    const d = daemon as DaemonProcess;
    // Silent, and deaf: paused sockets never read the error nor answer the close.
    const silent = await Promise.all(Array.from({ length: 64 }, () => rawClient(d.consumerUrl)));
    for (const c of silent) tcp(c.ws).pause();
    const t0 = Date.now();

    let refused = 0;
    let welcomedAt = 0;
    for (;;) {
      const c = await rawClient(d.consumerUrl);
      c.send({ type: 'hello', v: 1, consumer: 'good' });
      const answer = await waitFor(() => c.messages.find((m) => m['type'] === 'welcome' || m['type'] === 'error'), 'welcome or error');
      if (answer['type'] === 'welcome') {
        welcomedAt = Date.now() - t0;
        c.ws.close();
        await c.closed;
        break;
      }
      assert.equal(answer['code'], 'too_many_consumers');
      refused++;
      await c.closed;
      assert.ok(Date.now() - t0 < 8_000, 'welcomed in time');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(refused > 0, 'the silent connections did hold every slot at first');
    assert.ok(welcomedAt <= 6_000, `welcomed after ${welcomedAt} ms`);

    // The daemon closed their TCP connections (terminate after the grace), not waiting for close frames.
    const conns = silent.map((c) => connectionKeys(d.consumerUrl, c.ws));
    await waitFor(async () => {
      const states = await tcpStates();
      return conns.every((k) => states.get(k.clientSide) === CLOSE_WAIT && CLOSED_HERE.has(states.get(k.daemonSide) ?? '')) || undefined;
    }, 'every silent connection closed by the daemon', 3_000);
    for (const c of silent) tcp(c.ws).resume();
    await Promise.all(silent.map((c) => c.closed));
    for (const c of silent) assert.equal(c.messages.find((m) => m['type'] === 'error')?.['code'], 'protocol');
    const m = await d.metrics();
    assert.equal(m.sum('spillway_consumer_errors_total', { code: 'protocol' }), 64);
    assert.equal(m.sum('spillway_consumer_errors_total', { code: 'too_many_consumers' }), refused);
  });
});
