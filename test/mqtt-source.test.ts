/**
 * The MQTT source against a real Mosquitto started here: TLS with
 * certificates made by openssl (and a wrong CA refused, with a clear log
 * line), persistent sessions across a daemon restart (MQTT 3.1.1 and 5), a
 * broker restart under load, a topic flood, and `block` pushing back to the
 * broker; the embedded broker's login and payload limit.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { SpillwayConsumer } from '../daemon/client/consumer.js';
import { acker } from './helpers/acker.js';
import { startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';
import { freePort } from './helpers/ports.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';
import { makeTempDir } from './helpers/tmp.js';

const run = promisify(execFile);

async function stopAll(...things: Array<DaemonProcess | Mosquitto | SpillwayConsumer | undefined>): Promise<void> {
  for (const t of things) {
    if (t === undefined) continue;
    if (t instanceof SpillwayConsumer) await t.close();
    else await t.stop();
  }
}

/** A CA, a server certificate for 127.0.0.1 signed by it, and a second, unrelated CA. */
async function makeCerts(): Promise<{ dir: string; ca: string; otherCa: string; cert: string; key: string }> {
  const dir = await makeTempDir('tls');
  const p = (f: string) => join(dir, f);
  const openssl = (...args: string[]) =>
    run('openssl', args).catch((err: Error) => {
      throw new Error(`openssl failed (is it installed?): ${err.message}`);
    });
  for (const name of ['ca', 'other-ca']) {
    await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.pem`), '-days', '2', '-subj', `/CN=spillway test ${name}`);
  }
  await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1');
  await run('bash', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${p('ext.cnf')}`]);
  await openssl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('ext.cnf'));
  return { dir, ca: p('ca.pem'), otherCa: p('other-ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

describe('MQTT source', () => {
  it('connects over TLS to a broker whose CA it is given, and refuses one it is not, saying why', async () => {
    const certs = await makeCerts();
    const broker = await startMosquitto([`cafile ${certs.ca}`, `certfile ${certs.cert}`, `keyfile ${certs.key}`]);
    const url = `mqtts://127.0.0.1:${broker.port}`;
    let good: DaemonProcess | undefined;
    let bad: DaemonProcess | undefined;
    try {
      good = await startDaemon(testConfig({ sources: { mqtt: [{ url, tls: { ca: certs.ca }, subscriptions: [{ topic: 'tls/#', qos: 1 }] }] } }));
      assert.equal((await good.health()).status, 200);
      const pub = await mqtt.connectAsync(url, { ca: readFileSync(certs.ca) });
      await pub.publishAsync('tls/a', 'over tls', { qos: 1 });
      await pub.endAsync();
      await waitFor(async () => (await good!.metrics()).sum('spillway_records_ingested_total') === 1 || undefined, 'the record ingested over TLS');

      bad = await startDaemon(testConfig({ sources: { mqtt: [{ url, tls: { ca: certs.otherCa }, reconnect: { initialMs: 200, maxMs: 400 } }] } }));
      const line = await bad.waitForLog((l) => l.event === 'source_error', 'a source error line');
      assert.match(line.msg, /TLS certificate was refused/);
      assert.match(String(line['code']), /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
      const health = await bad.health();
      assert.equal(health.status, 503);
      assert.match(JSON.stringify(health.body['reasons']), /source mqtt is down/);
    } finally {
      await stopAll(good, bad, broker);
    }
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`keeps a persistent session across a daemon restart (MQTT ${protocolVersion === 4 ? '3.1.1' : '5'}): messages sent meanwhile arrive`, async () => {
      const broker = await startMosquitto();
      const config = testConfig({
        sources: { mqtt: [{ url: broker.url, protocolVersion, clientId: `spillway-persist-${protocolVersion}-${process.pid}`, persistentSession: true, subscriptions: [{ topic: 'persist/#', qos: 1 }] }] },
      });
      let second: DaemonProcess | undefined;
      try {
        const first = await startDaemon(config);
        assert.equal(await first.stop(), 0);
        await publishAll(broker.url, Array.from({ length: 50 }, (_, i) => ({ topic: 'persist/x', payload: `while-away-${i}` })));
        second = await startDaemon(config, { dataDir: first.dataDir });
        const up = await second.waitForLog((l) => l.event === 'source_up', 'the source up');
        assert.equal(up['sessionPresent'], true, 'the broker kept the session');
        const got = new Set<string>();
        const c = await acker(second.consumerUrl, got);
        await waitFor(() => got.size === 50 || undefined, 'the 50 messages sent while the daemon was away');
        await c.close();
      } finally {
        await stopAll(second, broker);
      }
    });
  }

  for (const n of [1, 3]) {
    it(`SIGTERM while ${n === 1 ? 'a record waits' : `the last of ${n} records sent at once waits`} for its group commit: the commit is PUBACKed before the connection ends, so the broker does not send it again`, async () => {
      const broker = await startMosquitto();
      // A 1 s commit window: the SIGTERM below comes while the last record's PUBACK waits for it. With
      // several, mqtt.js hands the next one over inside the previous one's PUBACK (the same socket read):
      // each waits for a commit of its own, the last one while the SIGTERM comes.
      const config = testConfig({
        durability: 'durable',
        spool: { groupCommitMs: 1_000 },
        sources: { mqtt: [{ url: broker.url, clientId: `spillway-commit-stop-${n}-${process.pid}`, persistentSession: true, subscriptions: [{ topic: 'commit/#', qos: 1 }] }] },
      });
      let second: DaemonProcess | undefined;
      try {
        const first = await startDaemon(config);
        await publishAll(broker.url, Array.from({ length: n }, (_, i) => ({ topic: 'commit/x', payload: `waiting-for-its-commit-${i}` })));
        await waitFor(async () => (await first.metrics()).sum('spillway_records_ingested_total') === n || undefined, `the ${n} records ingested`);
        assert.equal(await first.stop(), 0);
        second = await startDaemon(config, { dataDir: first.dataDir });
        await second.waitForLog((l) => l.event === 'source_up', 'the source up');
        // The broker resends unacknowledged messages first: once the marker is in, a resend would be too.
        await publishAll(broker.url, [{ topic: 'commit/x', payload: 'marker' }]);
        const m = await waitFor(async () => {
          const m = await second?.metrics();
          return m !== undefined && m.sum('spillway_records_ingested_total') >= 1 ? m : undefined;
        }, 'the marker ingested');
        assert.equal(m.sum('spillway_records_recovered_total'), n, 'the committed records, from the spool');
        assert.equal(m.sum('spillway_records_ingested_total'), 1, 'only the marker: the broker did not send a committed record again');
      } finally {
        await stopAll(second, broker);
      }
    });
  }

  it('loses nothing at QoS 1 when the broker restarts under load', async () => {
    const persistenceDir = await makeTempDir('mosq-data');
    const port = await freePort();
    let broker = await startMosquitto([], { port, persistenceDir });
    const N = 1_500;
    const daemon = await startDaemon(
      testConfig({
        sources: { mqtt: [{ url: broker.url, clientId: `spillway-restart-${process.pid}`, persistentSession: true, reconnect: { initialMs: 100, maxMs: 500 }, subscriptions: [{ topic: 'load/#', qos: 1 }] }] },
      }),
    );
    const got = new Set<string>();
    const c = await acker(daemon.consumerUrl, got);
    const pub = mqtt.connect(broker.url, { clientId: `test-restart-pub-${process.pid}`, clean: false, reconnectPeriod: 100 });
    try {
      await new Promise<void>((resolve) => pub.once('connect', () => resolve()));
      const sends: Array<Promise<unknown>> = [];
      for (let i = 0; i < N; i++) {
        sends.push(pub.publishAsync('load/x', `l${i}`, { qos: 1 }));
        if (i === Math.floor(N / 3)) {
          await waitFor(() => got.size > 100 || undefined, 'traffic flowing');
          await broker.stop();
          broker = await startMosquitto([], { port, persistenceDir });
        }
        if (i % 100 === 0) await Promise.race([Promise.all(sends.slice(-100)), new Promise((r) => setImmediate(r))]);
      }
      await Promise.all(sends);
      await waitFor(() => got.size === N || undefined, `all ${N} delivered (have ${got.size})`, 30_000);
      const m = await daemon.metrics();
      assert.ok(m.sum('spillway_records_ingested_total') >= N, 'duplicates from the broker are allowed, losses are not');
    } finally {
      pub.end(true);
      await stopAll(c, daemon, broker);
    }
  });

  it('keeps state bounded under a flood of topics: streams capped, the rest rejected and counted', async () => {
    const broker = await startMosquitto();
    const daemon = await startDaemon(testConfig({ sources: { mqtt: [{ url: broker.url, subscriptions: [{ topic: 'flood/#', qos: 0 }] }] }, limits: { maxStreams: 50 } }));
    try {
      await publishAll(broker.url, Array.from({ length: 3_000 }, (_, i) => ({ topic: `flood/t${i}`, payload: 'x' })), 0);
      const m = await waitFor(async () => {
        const m = await daemon.metrics();
        return m.sum('spillway_records_ingested_total') + m.sum('spillway_input_rejected_total', { reason: 'too_many_streams' }) === 3_000 ? m : undefined;
      }, 'all 3000 accounted for');
      assert.equal(m.sum('spillway_records_ingested_total'), 50);
      assert.equal(m.sum('spillway_input_rejected_total', { reason: 'too_many_streams' }), 2_950);
      const streamLabels = new Set(m.samples.filter((s) => s.labels['stream'] !== undefined).map((s) => s.labels['stream']));
      assert.equal(streamLabels.size, 50, 'metric labels bounded by maxStreams');
    } finally {
      await stopAll(daemon, broker);
    }
  });

  it('block: a full stream withholds PUBACKs so the broker stops sending, and resumes with nothing lost', async () => {
    const broker = await startMosquitto();
    const daemon = await startDaemon(
      testConfig({
        sources: { mqtt: [{ url: broker.url, keepaliveSeconds: 60, maxBlockMs: 30_000, subscriptions: [{ topic: 'blk/#', qos: 1 }] }] },
        streamDefaults: { whenFull: 'block', capacityRecords: 10 },
      }),
    );
    const pub = await mqtt.connectAsync(broker.url, { clientId: `test-block-pub-${process.pid}` });
    try {
      const N = 200;
      const sends = Array.from({ length: N }, (_, i) => pub.publishAsync('blk/x', `b${i}`, { qos: 1 }));
      await waitFor(async () => (await daemon.metrics()).sum('spillway_buffer_records') === 10 || undefined, 'the ring full');
      // Held back: the ring stays full and nothing more is ingested while no consumer takes any.
      const before = (await daemon.metrics()).sum('spillway_records_ingested_total');
      await Promise.all(sends); // the broker acked the publisher: it holds the rest for the daemon
      assert.equal((await daemon.metrics()).sum('spillway_records_ingested_total'), before);
      assert.equal(before, 10);
      const got = new Set<string>();
      const c = await acker(daemon.consumerUrl, got, 5);
      await waitFor(() => got.size === N || undefined, `all ${N} delivered after the consumer came`, 20_000);
      const m = await daemon.metrics();
      assert.equal(m.sum('spillway_records_dropped_total'), 0);
      assert.equal(m.sum('spillway_input_rejected_total'), 0);
      await c.close();
    } finally {
      await pub.endAsync();
      await stopAll(daemon, broker);
    }
  });

  it('the embedded broker checks logins and refuses oversized publishes, counting both', async () => {
    const port = await freePort();
    const daemon = await startDaemon(
      testConfig({
        sources: {
          embeddedBroker: { enabled: true, port, username: 'sensors', password: 'let-me-in', maxPayloadBytes: 1_000 },
        },
      }),
    );
    try {
      await assert.rejects(mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'sensors', password: 'wrong', reconnectPeriod: 0 }));
      const ok = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'sensors', password: 'let-me-in', reconnectPeriod: 0 });
      await ok.publishAsync('sensors/small', 'fits', { qos: 1 });
      await ok.publishAsync('sensors/big', Buffer.alloc(2_000, 1), { qos: 0 });
      await ok.endAsync().catch(() => undefined);
      const m = await waitFor(async () => {
        const m = await daemon.metrics();
        return m.sum('spillway_input_rejected_total', { source: 'embedded-broker', reason: 'oversized' }) === 1 ? m : undefined;
      }, 'the oversized publish counted');
      assert.equal(m.sum('spillway_input_rejected_total', { source: 'embedded-broker', reason: 'unauthorized' }), 1);
      await waitFor(async () => (await daemon.metrics()).sum('spillway_records_ingested_total') === 1 || undefined, 'the small one ingested');
    } finally {
      await stopAll(daemon);
    }
  });
});
