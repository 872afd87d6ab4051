/**
 * Every reconnect restores intake: Mosquitto is killed and started again on
 * the same port, three times, while a publisher keeps sending QoS 1.
 *
 * What is exactly assertable:
 * - whatever the session, every message published once the daemon is
 *   subscribed again (a new `source_up` line, /healthz 200 with the source
 *   "subscribed") arrives: a batch sent then must arrive whole, each cycle;
 * - with a clean session, or a persistent one the broker lost (no
 *   persistence, SIGKILL), messages sent while the daemon was not
 *   subscribed are legitimately not delivered by the broker, so the
 *   background stream is only checked for inventions;
 * - with a persistent session the broker keeps (persistence, SIGTERM, which
 *   saves it), every message the broker PUBACKed to the publisher arrives.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { acker } from './helpers/acker.js';
import { startDaemon, testConfig } from './helpers/daemon.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';
import { freePort } from './helpers/ports.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface Scenario {
  readonly name: string;
  readonly persistentSession: boolean;
  /** Mosquitto keeps sessions and queues across its restarts. */
  readonly brokerPersistence: boolean;
  readonly kill: 'SIGKILL' | 'SIGTERM';
}

const SCENARIOS: readonly Scenario[] = [
  { name: 'clean session, broker killed', persistentSession: false, brokerPersistence: false, kill: 'SIGKILL' },
  { name: 'persistent session the broker loses (no persistence, killed)', persistentSession: true, brokerPersistence: false, kill: 'SIGKILL' },
  { name: 'persistent session the broker keeps (persistence, SIGTERM)', persistentSession: true, brokerPersistence: true, kill: 'SIGTERM' },
];
const RESTARTS = 3;
const BATCH = 100;

describe('MQTT source across broker restarts', () => {
  for (const s of SCENARIOS) {
    it(`${s.name}: subscribed again after every restart, nothing sent after that lost`, async () => {
      const port = await freePort();
      const persistenceDir = s.brokerPersistence ? await mkdtemp(join(tmpdir(), 'spillway-restart-data-')) : undefined;
      if (persistenceDir !== undefined) dirs.push(persistenceDir);
      let broker: Mosquitto = await startMosquitto([], { port, persistenceDir });
      const source = {
        url: broker.url,
        persistentSession: s.persistentSession,
        ...(s.persistentSession ? { clientId: `spillway-restart-${process.pid}-${port}` } : {}),
        reconnect: { initialMs: 100, maxMs: 300 },
        subscriptions: [{ topic: 'sensors/#', qos: 1 }],
      };
      const daemon = await startDaemon(testConfig({ sources: { mqtt: [source] } }));
      dirs.push(dirname(daemon.configFile));
      const got = new Set<string>();
      const consumer = await acker(daemon.consumerUrl, got, 1_000);
      // The background stream: its own reconnects, every broker PUBACK recorded.
      const pub = mqtt.connect(broker.url, { clientId: `restart-pub-${process.pid}-${port}`, clean: false, reconnectPeriod: 100 });
      pub.on('error', () => undefined);
      const sent = new Set<string>();
      const brokerAcked = new Set<string>();
      let n = 0;
      let publishing = true;
      const next = (): void => {
        if (!publishing) return;
        const payload = `bg-${n++}`;
        sent.add(payload);
        pub.publish('sensors/bg', payload, { qos: 1 }, (err) => {
          if (err === undefined || err === null) brokerAcked.add(payload);
          if (publishing) setImmediate(next);
        });
      };
      const ups = () => daemon.logs.filter((l) => l.event === 'source_up');
      try {
        await new Promise<void>((resolve) => pub.once('connect', () => resolve()));
        for (let i = 0; i < 10; i++) next();
        for (let cycle = 0; cycle <= RESTARTS; cycle++) {
          await waitFor(() => ups().length > cycle || undefined, `the source subscribed again (cycle ${cycle})`);
          const h = await daemon.health();
          assert.equal(h.status, 200);
          assert.match(String((h.body['sources'] as Array<{ detail: string }>)[0]?.detail), /^subscribed/);
          const batch = Array.from({ length: BATCH }, (_, i) => ({ topic: 'sensors/batch', payload: `c${cycle}-${i}` }));
          for (const m of batch) sent.add(m.payload);
          await publishAll(broker.url, batch);
          await waitFor(() => batch.every((m) => got.has(m.payload)) || undefined, `the batch of cycle ${cycle} delivered`, 10_000);
          if (cycle === RESTARTS) break;
          await broker.stop(s.kill);
          broker = await startMosquitto([], { port, persistenceDir });
        }
        const sessions = ups().map((l) => l['sessionPresent']);
        assert.deepEqual(sessions, [false, ...Array.from({ length: RESTARTS }, () => s.brokerPersistence)], 'sessionPresent on each connect');
        publishing = false;
        if (s.brokerPersistence) {
          await waitFor(() => [...brokerAcked].every((p) => got.has(p)) || undefined, 'every message the broker PUBACKed delivered', 20_000);
        }
        assert.deepEqual([...got].filter((p) => !sent.has(p)), [], 'nothing delivered that was not sent');
        assert.ok(brokerAcked.size > 0);
      } finally {
        publishing = false;
        pub.end(true);
        await consumer.close();
        await daemon.stop();
        await broker.stop();
      }
    });
  }
});
