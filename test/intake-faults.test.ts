/**
 * Nothing a producer was told is safe is lost: QoS 1 sensors record every
 * PUBACK they get while the daemon is killed (kill -9, durable mode) or
 * stopped (SIGTERM, memory mode) at random moments, round after round on
 * one data directory; then one last start delivers everything to a consumer
 * and every PUBACKed payload must be among what it got.
 *
 * On the embedded broker the PUBACK is the daemon's own. Through Mosquitto
 * the sensors' PUBACK is the broker's; the daemon's session is persistent
 * and Mosquitto queues without limit, so a message the daemon did not
 * PUBACK is sent again, and one it did PUBACK must have been kept.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { acker } from './helpers/acker.js';
import { startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { startMosquitto } from './helpers/mosquitto.js';
import { startSensors } from './helpers/sensors.js';
import { waitFor } from './helpers/wait.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function start(config: Record<string, unknown>, dataDir: string): Promise<DaemonProcess> {
  const d = await startDaemon(config, { dataDir });
  dirs.push(dirname(d.configFile));
  return d;
}

interface Rounds {
  readonly rounds: number;
  readonly signal: 'SIGKILL' | 'SIGTERM';
  readonly config: Record<string, unknown>;
  /** Where the sensors publish in a round. */
  readonly brokerUrl: (daemon: DaemonProcess) => string;
  /** Waits, after a start, until the daemon takes what the sensors send. */
  readonly ready?: (daemon: DaemonProcess) => Promise<void>;
}

/** Runs the rounds; returns what the sensors sent and had PUBACKed, and what a consumer got at the end. */
async function faultRounds(t: TestContext, r: Rounds): Promise<{ sent: Set<string>; acked: Set<string>; got: Set<string> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'spillway-faults-'));
  dirs.push(dataDir);
  const sent = new Set<string>();
  const acked = new Set<string>();
  for (let round = 0; round < r.rounds; round++) {
    const daemon = await start(r.config, dataDir);
    await r.ready?.(daemon);
    const sensors = await startSensors(r.brokerUrl(daemon), { count: 4, prefix: `r${round}`, topic: 'sensors/fault', sent, acked });
    // The moment of the fault: after a random number of PUBACKs this round (a condition, not a sleep).
    const target = acked.size + 20 + Math.floor(Math.random() * 300);
    await waitFor(() => acked.size >= target || undefined, `${target} PUBACKs in round ${round}`, 20_000, 2);
    daemon.child.kill(r.signal);
    const code = await daemon.exited;
    if (r.signal === 'SIGTERM') assert.equal(code, 0, `round ${round}: a clean stop`);
    await sensors.stop();
  }
  const daemon = await start(r.config, dataDir);
  await r.ready?.(daemon);
  const got = new Set<string>();
  const c = await acker(daemon.consumerUrl, got, 2_000);
  try {
    await waitFor(() => [...acked].every((p) => got.has(p)) || undefined, 'every PUBACKed payload delivered', 60_000, 100);
    const invented = [...got].filter((p) => !sent.has(p));
    assert.deepEqual(invented, [], 'nothing delivered that was not sent');
    t.diagnostic(`${r.rounds} rounds of ${r.signal}: ${sent.size} sent, ${acked.size} PUBACKed, ${got.size} delivered, 0 PUBACKed lost`);
  } finally {
    await c.close();
    await daemon.stop();
  }
  return { sent, acked, got };
}

describe('intake under faults', () => {
  it('durable, embedded broker: 20 × kill -9 at random moments, every PUBACKed payload delivered', async (t) => {
    const { acked, got } = await faultRounds(t, {
      rounds: 20,
      signal: 'SIGKILL',
      config: testConfig({ durability: 'durable', sources: { embeddedBroker: { enabled: true, port: 0 } } }),
      brokerUrl: (d) => d.brokerUrl as string,
    });
    assert.ok(acked.size >= 20 * 20, `a real load: ${acked.size} PUBACKed`);
    assert.ok(got.size >= acked.size);
  });

  it('durable + synchronous: full (commits fsynced off the event loop), embedded broker: 10 × kill -9, every PUBACKed payload delivered', async (t) => {
    const { acked, got } = await faultRounds(t, {
      rounds: 10,
      signal: 'SIGKILL',
      config: testConfig({ durability: 'durable', spool: { synchronous: 'full' }, sources: { embeddedBroker: { enabled: true, port: 0 } } }),
      brokerUrl: (d) => d.brokerUrl as string,
    });
    assert.ok(acked.size >= 10 * 20, `a real load: ${acked.size} PUBACKed`);
    assert.ok(got.size >= acked.size);
  });

  it('durable, Mosquitto with a persistent session: 20 × kill -9, every payload the broker PUBACKed delivered', async (t) => {
    const broker = await startMosquitto();
    try {
      const source = { url: broker.url, clientId: `spillway-faults-${process.pid}`, persistentSession: true, reconnect: { initialMs: 100, maxMs: 200 }, subscriptions: [{ topic: 'sensors/#', qos: 1 }] };
      const { acked, got } = await faultRounds(t, {
        rounds: 20,
        signal: 'SIGKILL',
        config: testConfig({ durability: 'durable', sources: { mqtt: [source] } }),
        brokerUrl: () => broker.url,
        ready: async (d) => {
          await waitFor(async () => ((await d.health()).body['sources'] as Array<{ detail: string }>)[0]?.detail.startsWith('subscribed') || undefined, 'the source subscribed');
        },
      });
      assert.equal(got.size >= acked.size, true);
    } finally {
      await broker.stop();
    }
  });

  it('memory, embedded broker: 50 × SIGTERM at random moments, every PUBACKed payload delivered', async (t) => {
    const { acked } = await faultRounds(t, {
      rounds: 50,
      signal: 'SIGTERM',
      config: testConfig({ sources: { embeddedBroker: { enabled: true, port: 0 } }, shutdown: { drainTimeoutMs: 0 } }),
      brokerUrl: (d) => d.brokerUrl as string,
    });
    assert.ok(acked.size >= 50 * 20, `a real load: ${acked.size} PUBACKed`);
  });
});
