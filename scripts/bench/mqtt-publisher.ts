/**
 * The load of the MQTT benches: one mqtt.js client in its own process
 * publishing 100-byte messages as fast as it can. QoS 0: it yields to the
 * event loop every YIELD_EVERY messages so the socket drains. QoS 1: at most
 * QOS1_WINDOW publishes wait for their PUBACK (a sensor's in-flight window;
 * it also keeps message ids far from wrapping). Both runs of a bench (bare
 * subscriber, daemon) use this same publisher, so their rates compare.
 *
 * `startPublisher()` forks this file; they talk over the IPC channel:
 *   child  -> { type: 'ready' }                    connected to the broker
 *   parent -> { type: 'publish', topic, n, qos }   publish n messages
 *   child  -> { type: 'done', ms }                 the last one was written (QoS 0) or acked (QoS 1)
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { nextMessage, serveJobs } from './child-loop.js';
import { payloadTemplate } from './stats.js';

const YIELD_EVERY = 1_000;
const QOS1_WINDOW = 1_000;

export type Qos = 0 | 1;

type ToChild = { type: 'publish'; topic: string; n: number; qos: Qos };

export interface Publisher {
  /** Publishes n messages; resolves with how long publishing took, in ms. */
  publish(topic: string, n: number, qos?: Qos): Promise<number>;
  stop(): void;
}

export async function startPublisher(url: string): Promise<Publisher> {
  const child = fork(fileURLToPath(import.meta.url), [url], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await nextMessage('publisher', child, 'ready');
  return {
    publish: async (topic, n, qos = 0) => {
      const done = nextMessage('publisher', child, 'done');
      child.send({ type: 'publish', topic, n, qos } satisfies ToChild);
      const msg = await done;
      return msg.type === 'done' ? msg.ms : 0;
    },
    stop: () => child.kill(),
  };
}


async function publishQos0(client: MqttClient, topic: string, n: number): Promise<void> {
  const payload = payloadTemplate();
  for (let i = 1; i < n; i++) {
    client.publish(topic, payload, { qos: 0 });
    if (i % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await client.publishAsync(topic, payload, { qos: 0 });
}

async function publishQos1(client: MqttClient, topic: string, n: number): Promise<void> {
  const payload = payloadTemplate();
  let unacked = 0;
  let failed: Error | undefined;
  let wakeAt = -1;
  let wake: () => void = () => undefined;
  const until = (level: number) =>
    new Promise<void>((resolve) => {
      wakeAt = level;
      wake = resolve;
    });
  const onAck = (err?: Error | null) => {
    if (err instanceof Error) failed ??= err; // mqtt.js passes null on success
    unacked--;
    if (unacked <= wakeAt) {
      wakeAt = -1;
      wake();
    }
  };
  for (let i = 0; i < n; i++) {
    if (unacked >= QOS1_WINDOW) await until(QOS1_WINDOW / 2);
    if (failed !== undefined) throw failed;
    unacked++;
    client.publish(topic, payload, { qos: 1 }, onAck);
  }
  if (unacked > 0) await until(0);
  if (failed !== undefined) throw failed;
}

async function child(url: string): Promise<void> {
  const client = await mqtt.connectAsync(url, { clientId: `spillway-bench-pub-${process.pid}`, clean: true });
  serveJobs<ToChild>('publisher', (msg) => (msg.qos === 1 ? publishQos1 : publishQos0)(client, msg.topic, msg.n));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const url = process.argv[2];
  if (url === undefined) throw new Error('usage: mqtt-publisher.js MQTT_URL');
  await child(url);
}
