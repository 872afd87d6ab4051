/**
 * The latency load of `npm run bench:peers`: one mqtt.js client in its own
 * process publishing QoS 1 at a fixed rate, each 100-byte payload starting
 * with the send time (`process.hrtime.bigint()`, CLOCK_MONOTONIC, the same
 * clock in every process of the machine) as a big-endian u64 of nanoseconds,
 * so a subscriber elsewhere can tell each message's latency. A 1 ms timer
 * publishes what is due by then (at 1,000/s: about one message per tick).
 *
 * `startPacedPublisher()` forks this file; they talk over the IPC channel:
 *   child  -> { type: 'ready' }                        connected
 *   parent -> { type: 'paced', topic, rate, seconds }  publish for that long
 *   child  -> { type: 'done', ms }                     the last one was acked
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { nextMessage, serveJobs } from './child-loop.js';
import { payloadTemplate } from './stats.js';

type ToChild = { type: 'paced'; topic: string; rate: number; seconds: number };

export interface PacedPublisher {
  /** Publishes `rate` messages a second for `seconds`; resolves once all were acked by the broker. */
  publish(topic: string, rate: number, seconds: number): Promise<number>;
  stop(): void;
}

export async function startPacedPublisher(url: string): Promise<PacedPublisher> {
  const child = fork(fileURLToPath(import.meta.url), [url], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await nextMessage('paced publisher', child, 'ready');
  return {
    publish: async (topic, rate, seconds) => {
      const done = nextMessage('paced publisher', child, 'done');
      child.send({ type: 'paced', topic, rate, seconds } satisfies ToChild);
      const msg = await done;
      return msg.type === 'done' ? msg.ms : 0;
    },
    stop: () => child.kill(),
  };
}

/** The send time stamped in a payload, in ns of CLOCK_MONOTONIC. */
export function sentAt(payload: Buffer): bigint {
  return payload.readBigUInt64BE(0);
}

async function publishPaced(client: MqttClient, topic: string, rate: number, seconds: number): Promise<void> {
  const total = Math.round(rate * seconds);
  const t0 = process.hrtime.bigint();
  let sent = 0;
  let unacked = 0;
  const acked = () => unacked--;
  while (sent < total) {
    const due = Math.min(total, Math.floor((Number(process.hrtime.bigint() - t0) / 1e9) * rate) + 1);
    for (; sent < due; sent++) {
      const payload = payloadTemplate();
      payload.writeBigUInt64BE(process.hrtime.bigint(), 0);
      unacked++;
      client.publish(topic, payload, { qos: 1 }, acked);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  while (unacked > 0) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function child(url: string): Promise<void> {
  // mqtt.js queues publishes while the broker is away (the outage phase publishes through one).
  const client = await mqtt.connectAsync(url, { clientId: `spillway-bench-paced-${process.pid}`, clean: true, reconnectPeriod: 100 });
  serveJobs<ToChild>('paced publisher', (msg) => publishPaced(client, msg.topic, msg.rate, msg.seconds));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const url = process.argv[2];
  if (url === undefined) throw new Error('usage: paced-publisher.js MQTT_URL');
  await child(url);
}
