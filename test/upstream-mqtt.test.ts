/**
 * The MQTT upstream against a real Mosquitto: the window (min of `window`
 * and the broker's Receive Maximum) is never exceeded and mqtt.js's own
 * store stays within it while a slow subscriber reads; a broker restart
 * mid-stream loses nothing (what was in flight is redelivered); on its
 * defaults a Receive Maximum of 20 does not cap it, and it is back within a
 * second of the broker.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { mqttUpstreamSchema } from '../daemon/upstreams/config.js';
import { createMqttUpstreams, type MqttUpstream, type MqttUpstreams } from '../daemon/upstreams/mqtt-upstream.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';
import { makeTestCerts } from './helpers/upstream-certs.js';
import { startEngine, type TestEngine } from './helpers/upstream-engine.js';
import { startRestartableMosquitto } from './helpers/upstream-mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { makeTempDir } from './helpers/tmp.js';

interface Subscriber {
  readonly client: MqttClient;
  readonly payloads: Set<string>;
  readonly userProperties: Array<Record<string, string | string[]>>;
  readonly topics: Set<string>;
}

/** A QoS 1 subscriber that takes `delayMs` over each message before its PUBACK. */
async function subscribe(url: string, opts: { delayMs: number; persistentId?: string }): Promise<Subscriber> {
  const client = await mqtt.connectAsync(url, {
    clientId: opts.persistentId ?? `sub-${process.pid}-${Math.random().toString(16).slice(2)}`,
    clean: opts.persistentId === undefined,
    protocolVersion: 5,
    properties: opts.persistentId === undefined ? undefined : { sessionExpiryInterval: 3_600 },
    reconnectPeriod: 50,
  });
  const sub: Subscriber = { client, payloads: new Set(), userProperties: [], topics: new Set() };
  client.handleMessage = (packet, done) => {
    sub.payloads.add(packet.payload.toString());
    sub.topics.add(packet.topic);
    if (packet.properties?.userProperties !== undefined) sub.userProperties.push(packet.properties.userProperties);
    if (opts.delayMs > 0) setTimeout(() => done(), opts.delayMs);
    else done();
  };
  await client.subscribeAsync('spillway/#', { qos: 1 });
  return sub;
}

/** Samples the bounds every few ms while the test runs. */
function watchBounds(t: TestEngine, u: MqttUpstream, window: () => number) {
  const worst = { inflight: 0, engineInflight: 0, clientStored: 0, clientQueued: 0, violations: [] as string[] };
  const timer = setInterval(() => {
    const s = u.stats();
    const engineInflight = [...t.pipeline.consumers()].reduce((a, c) => a + c.inflight, 0);
    worst.inflight = Math.max(worst.inflight, s.inflight);
    worst.engineInflight = Math.max(worst.engineInflight, engineInflight);
    worst.clientStored = Math.max(worst.clientStored, s.clientStored);
    worst.clientQueued = Math.max(worst.clientQueued, s.clientQueued);
    const w = window();
    if (s.inflight > w || engineInflight > w || s.clientStored > w || s.clientQueued > 0) worst.violations.push(JSON.stringify({ ...s, engineInflight }));
  }, 2);
  return { worst, stop: () => clearInterval(timer) };
}

describe('MQTT upstream', () => {
  let t: TestEngine | undefined;
  let ups: MqttUpstreams | undefined;
  let sub: Subscriber | undefined;
  const brokers: Array<{ stop(): Promise<void> }> = [];

  afterEach(async () => {
    await ups?.stop();
    await sub?.client.endAsync(true);
    t?.stop();
    t = ups = sub = undefined;
  });

  after(async () => {
    for (const b of brokers) await b.stop();
  });

  const start = async (url: string, cfg: Record<string, unknown>) => {
    t = startEngine();
    ups = createMqttUpstreams([mqttUpstreamSchema.parse({ url, reconnect: { initialMs: 50, maxMs: 300 }, ...cfg })], t.ctx);
    await ups.start();
    const u = ups.upstreams[0];
    assert.ok(u);
    await waitFor(() => u.connected || undefined, 'the upstream connected');
    return { t, u };
  };

  it('MQTT 5: window = min(window, Receive Maximum), never exceeded, with a slow subscriber; nothing lost', async () => {
    const broker: Mosquitto = await startMosquitto(['max_inflight_messages 10']);
    brokers.push(broker);
    sub = await subscribe(broker.url, { delayMs: 1 });
    const { t, u } = await start(broker.url, { window: 50, protocolVersion: 5 });
    assert.equal(u.stats().window, 10, 'capped by the broker Receive Maximum');
    const watch = watchBounds(t, u, () => 10);
    const n = 2_000;
    t.ingest('sensors.a', Array.from({ length: n }, (_, i) => `a-${i}`));
    await waitFor(() => t.pipeline.totals().acked === n || undefined, `${n} PUBACKs`, 30_000);
    await waitFor(() => sub?.payloads.size === n || undefined, `${n} messages at the slow subscriber`, 30_000);
    watch.stop();
    assert.deepEqual(watch.worst.violations.slice(0, 3), []);
    assert.equal(u.stats().maxInflight, 10, 'the window was used, never exceeded');
    assert.ok(watch.worst.clientStored <= 10, "mqtt.js's store stayed within the window");
    assert.equal(watch.worst.clientQueued, 0, "mqtt.js's offline queue was never used");
    const totals = t.pipeline.totals();
    assert.equal(totals.inflight + totals.buffered + totals.heldBytes, 0, 'nothing held afterwards');
    assert.deepEqual([...sub.topics], ['spillway/sensors.a']);
    const props = sub.userProperties[0];
    assert.ok(props !== undefined && props['stream'] === 'sensors.a' && props['attempt'] === '1' && /^\d+$/.test(String(props['seq'])));
  });

  it('MQTT 3.1.1: the configured window, payload only', async () => {
    const broker = await startMosquitto(['max_inflight_messages 10']);
    brokers.push(broker);
    sub = await subscribe(broker.url, { delayMs: 0 });
    const { t, u } = await start(broker.url, { window: 30, protocolVersion: 4, topicTemplate: 'spillway/{prio}/{stream}' });
    assert.equal(u.stats().window, 30);
    assert.equal(u.uplink().lastAckAt, null, 'no PUBACK yet');
    const watch = watchBounds(t, u, () => 30);
    const began = Date.now();
    t.ingest('b', Array.from({ length: 500 }, (_, i) => `b-${i}`));
    await waitFor(() => sub?.payloads.size === 500 || undefined, '500 messages');
    await waitFor(() => t.pipeline.totals().acked === 500 || undefined, '500 PUBACKs');
    // What /healthz, /status and the page show of it (operator-health tests the same uplink down).
    const up = u.uplink();
    assert.deepEqual([up.kind, up.group, up.connected, up.inflight, up.window, up.reconnects, up.detail], ['mqtt', 'default', true, 0, 30, 0, 'connected, window 30']);
    assert.ok(up.lastAckAt !== null && up.lastAckAt >= began && up.lastAckAt <= Date.now(), `last PUBACK at ${up.lastAckAt}, after the records were sent`);
    watch.stop();
    assert.deepEqual(watch.worst.violations.slice(0, 3), []);
    assert.ok(u.stats().maxInflight <= 30);
    assert.deepEqual([...sub.topics], ['spillway/1/b']);
    assert.equal(sub.userProperties.length, 0);
  });

  it('a broker restart mid-stream loses nothing: what the broker had not acked is published again and arrives', async () => {
    const broker = await startRestartableMosquitto({ persistence: true });
    brokers.push(broker);
    sub = await subscribe(broker.url, { delayMs: 0, persistentId: `restart-sub-${process.pid}` });
    const { t, u } = await start(broker.url, { window: 20 });
    const acked = new Set<number>();
    const ack = t.engine.ack.bind(t.engine);
    t.engine.ack = (id, seqs) => {
      for (const s of seqs) acked.add(s);
      ack(id, seqs);
    };
    const n = 3_000;
    const seqs = t.ingest('r', Array.from({ length: n }, (_, i) => `r-${i}`));
    await waitFor(() => (acked.size >= 300 && acked.size < n) || undefined, 'a part published');
    await broker.stop();
    await waitFor(() => !u.connected || undefined, 'the upstream saw the broker go');
    assert.equal(t.pipeline.totals().inflight, 0, 'what was in flight was taken back');
    const ackedBeforeRestart = new Set(acked);
    assert.ok(ackedBeforeRestart.size < n, 'the restart was mid-stream');
    await broker.start();
    await waitFor(() => t.pipeline.totals().acked === n || undefined, `all ${n} PUBACKed`, 30_000);
    const totals = t.pipeline.totals();
    assert.equal(totals.inflight + totals.buffered + totals.dropped, 0, 'every record acked by the broker, none dropped');
    // Every record the broker had not acked when it went down is the daemon's to deliver: each must arrive.
    // (A record the broker acked before its restart is the broker's: Mosquitto may lose what was on the way to a subscriber.)
    const owed = seqs.map((seq, i) => ({ seq, payload: `r-${i}` })).filter((r) => !ackedBeforeRestart.has(r.seq));
    await waitFor(() => owed.every((r) => sub?.payloads.has(r.payload)) || undefined, `the ${owed.length} records published after the restart at the subscriber`, 30_000);
    assert.ok(u.stats().connections >= 2, 'it reconnected');
    assert.equal(u.stats().clientQueued, 0);
  });

  it('a broker that is down at start is reached once it is up; the window is granted again on reconnect', async () => {
    const broker = await startRestartableMosquitto();
    brokers.push(broker);
    await broker.stop();
    t = startEngine();
    ups = createMqttUpstreams([mqttUpstreamSchema.parse({ url: broker.url, window: 5, reconnect: { initialMs: 30, maxMs: 100 } })], t.ctx);
    await ups.start();
    const u = ups.upstreams[0];
    assert.ok(u);
    t.ingest('late', ['1', '2', '3']);
    await broker.start();
    sub = await subscribe(broker.url, { delayMs: 0 });
    // Published before the subscriber came, maybe: what matters here is that the broker PUBACKed them all.
    await waitFor(() => t?.pipeline.totals().acked === 3 || undefined, 'the records PUBACKed once the broker is up');
    assert.equal(u.stats().window, 5);
  });

  it("on its defaults against a default Mosquitto (Receive Maximum 20): MQTT 3.1.1 and the full window of 1,000, so 20 in flight do not cap it", async () => {
    const broker = await startMosquitto();
    brokers.push(broker);
    t = startEngine();
    ups = createMqttUpstreams([mqttUpstreamSchema.parse({ url: broker.url })], t.ctx);
    await ups.start();
    const u = ups.upstreams[0];
    assert.ok(u);
    await waitFor(() => u.connected || undefined, 'the upstream connected');
    assert.equal(u.stats().window, 1_000);
    const te = t;
    te.ingest('d', Array.from({ length: 2_000 }, (_, i) => `d-${i}`));
    await waitFor(() => te.pipeline.totals().acked === 2_000 || undefined, 'all PUBACKed');
    assert.ok(u.stats().maxInflight > 20, `more than the broker's Receive Maximum in flight (${u.stats().maxInflight})`);
  });

  it('on its default backoff, the first delivery comes within 1 s of the broker coming back after an outage past the backoff cap', async () => {
    const broker = await startRestartableMosquitto();
    brokers.push(broker);
    sub = await subscribe(broker.url, { delayMs: 0 });
    t = startEngine();
    ups = createMqttUpstreams([mqttUpstreamSchema.parse({ url: broker.url })], t.ctx);
    await ups.start();
    const u = ups.upstreams[0];
    assert.ok(u);
    await waitFor(() => u.connected || undefined, 'the upstream connected');
    await sub.client.endAsync(true);
    sub = undefined;
    await broker.stop();
    await waitFor(() => !u.connected || undefined, 'the upstream saw the broker go');
    const te = t;
    te.ingest('o', ['during the outage']);
    // 100 + 200 + 400 + 800 ms: by 2.5 s every retry is at the 800 ms cap.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await broker.start();
    const back = performance.now();
    await waitFor(() => te.pipeline.totals().acked === 1 || undefined, 'the record PUBACKed once the broker is back', 5_000);
    const ms = performance.now() - back;
    assert.ok(ms <= 1_000, `first delivery ${ms.toFixed(0)} ms after the broker was back (at most 1,000)`);
  });

  it('mqtts:// with tls.ca: the broker certificate is verified, records flow', async () => {
    const certs = await makeTestCerts();
    const broker = await startMosquitto([`cafile ${certs.caCert}`, `certfile ${certs.serverCert}`, `keyfile ${certs.serverKey}`]);
    brokers.push(broker);
    const url = broker.url.replace('mqtt://', 'mqtts://');
    const { t } = await start(url, { tls: { ca: certs.caCert } });
    t.ingest('secure', ['s1', 's2']);
    await waitFor(() => t.pipeline.totals().acked === 2 || undefined, 'PUBACKs over TLS');
  });

  it('a broker refusing publishes (MQTT 5 PUBACK 0x87): nothing acked, retried up to maxAttempts, then dropped as poison', async () => {
    const dir = await makeTempDir('acl');
    const acl = join(dir, 'acl');
    await writeFile(acl, 'topic readwrite allowed/#\n');
    const broker = await startMosquitto([`acl_file ${acl}`]);
    brokers.push(broker);
    t = startEngine({ maxAttempts: 3 });
    ups = createMqttUpstreams([mqttUpstreamSchema.parse({ url: broker.url, topicTemplate: 'denied/{stream}', protocolVersion: 5, window: 2, reconnect: { initialMs: 50, maxMs: 100 } })], t.ctx);
    await ups.start();
    const u = ups.upstreams[0];
    assert.ok(u);
    const te = t;
    te.ingest('x', ['a', 'b']);
    // Mosquitto 2.0 answers PUBACK 0x87 and then also closes the connection: refusals and reconnects both redeliver.
    await waitFor(() => [...te.pipeline.streams()].find((s) => s.name === 'x')?.dropped.poison === 2 || undefined, 'both dropped as poison after 3 deliveries each');
    const stats = u.stats();
    assert.ok(stats.refused >= 1, 'the refusals were seen');
    // Each record: three failed deliveries (refused, or cut by the close after a refusal, as the
    // connection is another one each time), and at most one more: a close that cut it before
    // anything sent after it was answered is forgiven the first time (docs/PROTOCOL.md, "Poison").
    assert.ok(stats.published >= 6 && stats.published <= 8, `${stats.published} deliveries: three counted for each record, and at most one forgiven`);
    assert.equal(te.pipeline.totals().acked, 0, 'a refusal is never an ack');
  });
});
