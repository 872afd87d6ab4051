/**
 * MQTT input is bounded and checked before it is read: a PUBLISH announcing
 * 256 MB closes the embedded broker's connection at its header (the
 * daemon's RSS stays flat), and topics holding U+0000 or bytes that are not
 * UTF-8 are refused and counted, never made streams: on the embedded
 * broker (connection closed, as MQTT requires), through Mosquitto (which
 * refuses them itself), and from a hostile broker speaking to the MQTT
 * source directly.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { after, describe, it } from 'node:test';
import { startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { startMosquitto } from './helpers/mosquitto.js';
import { publishAll } from './helpers/publisher.js';
import { publishPacket, rawMqtt, remainingLength } from './helpers/raw-mqtt.js';
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

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error('no VmRSS');
  return Number(m[1]) * 1024;
}

const port = (url: string) => Number(new URL(url).port);
const MiB = 1024 * 1024;
/** The largest remaining length MQTT can express: 256 MiB - 1. */
const MAX_REMAINING = 268_435_455;
const BAD_TOPICS: ReadonlyArray<readonly [string, Buffer]> = [
  ['U+0000', Buffer.from('sensors/a\u0000b')],
  ['invalid UTF-8 0xff', Buffer.from([...Buffer.from('sensors/'), 0xff])],
  ['invalid UTF-8 0xfe (decodes lossily to the same string as 0xff)', Buffer.from([...Buffer.from('sensors/'), 0xfe])],
];

describe('MQTT input guard', () => {
  it('embedded broker: a PUBLISH announcing 256 MB is cut off at its header, RSS flat, counted', async () => {
    const daemon = await daemonWith({ sources: { embeddedBroker: { enabled: true, port: 0 } } });
    try {
      const pid = daemon.child.pid as number;
      const before = await rssBytes(pid);
      const raw = await rawMqtt(port(daemon.brokerUrl as string), 'big-sender');
      const topic = Buffer.from('sensors/big');
      raw.socket.write(Buffer.concat([Buffer.from([0x32]), remainingLength(MAX_REMAINING), Buffer.from([0, topic.length]), topic, Buffer.from([0, 1])]));
      // Then stream the body as fast as the socket takes it, until the daemon closes on us (at most 200 MiB).
      const chunk = Buffer.alloc(MiB, 0x61);
      let written = 0;
      while (!raw.isClosed() && written < 200 * MiB) {
        written += chunk.length;
        if (!raw.socket.write(chunk)) await Promise.race([new Promise((r) => raw.socket.once('drain', r)), raw.closed]);
      }
      await waitFor(() => raw.isClosed() || undefined, 'the connection closed', 5_000);
      const m = await waitFor(async () => {
        const m = await daemon.metrics();
        return m.sum('spillway_input_rejected_total', { source: 'embedded-broker', reason: 'oversized' }) === 1 ? m : undefined;
      }, 'the oversized publish counted');
      const grown = (await rssBytes(pid)) - before;
      assert.ok(grown < 16 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
      assert.ok(written < 16 * MiB, `closed early: ${written / MiB} MiB written before the close (the kernel's socket buffers and one chunk)`);
      assert.equal(m.sum('spillway_records_ingested_total'), 0);
      assert.ok(daemon.logs.some((l) => l.event === 'input_refused' && l['reason'] === 'oversized'), 'logged');
    } finally {
      await daemon.stop();
    }
  });

  it('embedded broker: topics with U+0000 or invalid UTF-8 close the connection unacknowledged, counted; a U+FFFD topic that is valid UTF-8 is taken', async () => {
    const daemon = await daemonWith({ sources: { embeddedBroker: { enabled: true, port: 0 } } });
    try {
      const p = port(daemon.brokerUrl as string);
      for (const [what, topic] of BAD_TOPICS) {
        const raw = await rawMqtt(p, `bad-${BAD_TOPICS.findIndex(([w]) => w === what)}`);
        const acked = raw.received().length;
        raw.socket.write(publishPacket(topic, Buffer.from('x'), 1));
        await waitFor(() => raw.isClosed() || undefined, `the connection closed on ${what}`, 5_000);
        assert.equal(raw.received().length, acked, `no PUBACK for ${what}`);
      }
      const good = await rawMqtt(p, 'good');
      const connack = good.received().length;
      good.socket.write(publishPacket(Buffer.from('sensors/\uFFFD'), Buffer.from('y'), 1, 9));
      await waitFor(() => good.received().length >= connack + 4 || undefined, 'a PUBACK');
      assert.deepEqual([...good.received().subarray(connack, connack + 4)], [0x40, 2, 0, 9]);
      good.socket.destroy();
      const m = await daemon.metrics();
      assert.equal(m.sum('spillway_input_rejected_total', { source: 'embedded-broker', reason: 'bad_topic' }), 3);
      assert.equal(m.sum('spillway_records_ingested_total'), 1);
      assert.deepEqual(
        m.samples.filter((s) => s.name === 'spillway_records_ingested_total').map((s) => s.labels['stream']),
        ['sensors/\uFFFD'],
      );
    } finally {
      await daemon.stop();
    }
  });

  it('through Mosquitto: the broker refuses such topics itself, so nothing of them reaches the daemon', async () => {
    const broker = await startMosquitto();
    const daemon = await daemonWith({ sources: { mqtt: [{ url: broker.url, subscriptions: [{ topic: 'sensors/#', qos: 1 }] }] } });
    try {
      await waitFor(async () => (await daemon.health()).status === 200 || undefined, 'the source subscribed');
      for (const [what, topic] of BAD_TOPICS) {
        const raw = await rawMqtt(broker.port, `mosq-bad-${BAD_TOPICS.findIndex(([w]) => w === what)}`);
        raw.socket.write(publishPacket(topic, Buffer.from('x'), 1));
        await waitFor(() => raw.isClosed() || undefined, `mosquitto closed the connection on ${what}`, 5_000);
      }
      // A good message after them: once it arrived, anything sent before it would have too.
      await publishAll(broker.url, [{ topic: 'sensors/ok', payload: 'ok' }]);
      const m = await waitFor(async () => {
        const m = await daemon.metrics();
        return m.sum('spillway_records_ingested_total') >= 1 ? m : undefined;
      }, 'the good message ingested');
      assert.equal(m.sum('spillway_records_ingested_total'), 1);
      assert.equal(m.sum('spillway_input_rejected_total'), 0);
    } finally {
      await daemon.stop();
      await broker.stop();
    }
  });

  it('MQTT source: a broker that sends such topics gets them refused and counted as bad_topic, never ingested', async () => {
    const hostile = await hostileBroker([...BAD_TOPICS.map(([, t]) => t), Buffer.from('sensors/ok')]);
    const daemon = await daemonWith({ sources: { mqtt: [{ url: `mqtt://127.0.0.1:${hostile.port}`, subscriptions: [{ topic: 'sensors/#', qos: 1 }] }] } });
    try {
      const m = await waitFor(async () => {
        const m = await daemon.metrics();
        return m.sum('spillway_records_ingested_total') === 1 ? m : undefined;
      }, 'the good message ingested');
      assert.equal(m.sum('spillway_input_rejected_total', { source: 'mqtt', reason: 'bad_topic' }), BAD_TOPICS.length);
      assert.deepEqual(
        m.samples.filter((s) => s.name === 'spillway_records_ingested_total').map((s) => s.labels['stream']),
        ['sensors/ok'],
      );
    } finally {
      await daemon.stop();
      await hostile.close();
    }
  });
});

/**
 * A broker that accepts one client, grants its subscription, then sends it
 * one QoS 1 PUBLISH per given topic (raw bytes, whatever they are).
 */
async function hostileBroker(topics: readonly Buffer[]): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const packet = nextPacket(buf);
        if (packet === undefined) return;
        buf = buf.subarray(packet.length);
        const type = packet[0] as number;
        if (type === 0x10) socket.write(Buffer.from([0x20, 2, 0, 0]));
        if (type === 0x82) {
          const body = packet.subarray(packet.length - remainingOf(packet));
          socket.write(Buffer.from([0x90, 3, body[0] as number, body[1] as number, 1]));
          topics.forEach((t, i) => socket.write(publishPacket(t, Buffer.from(`m${i}`), 1, i + 1)));
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The first whole packet in `buf`, or undefined until it has arrived. */
function nextPacket(buf: Buffer): Buffer | undefined {
  let len = 0;
  let mult = 1;
  for (let i = 1; i < Math.min(buf.length, 5); i++) {
    const b = buf[i] as number;
    len += (b & 0x7f) * mult;
    mult *= 128;
    if ((b & 0x80) === 0) return buf.length >= i + 1 + len ? buf.subarray(0, i + 1 + len) : undefined;
  }
  return undefined;
}

function remainingOf(packet: Buffer): number {
  let len = 0;
  let mult = 1;
  for (let i = 1; i < 5; i++) {
    const b = packet[i] as number;
    len += (b & 0x7f) * mult;
    mult *= 128;
    if ((b & 0x80) === 0) break;
  }
  return len;
}
