/**
 * The load of the MQTT benches: one mqtt.js client in its own process
 * publishing 100-byte QoS 0 messages as fast as it can, yielding to the
 * event loop every YIELD_EVERY messages so the socket drains. Both MQTT runs
 * (bare subscriber, daemon) use this same publisher, so their rates compare.
 *
 * `startPublisher()` forks this file; they talk over the IPC channel:
 *   child  -> { type: 'ready' }                  connected to the broker
 *   parent -> { type: 'publish', topic, n }      publish n messages
 *   child  -> { type: 'done', ms }               the last one was written
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { now, payloadTemplate } from './stats.js';

const YIELD_EVERY = 1_000;

type ToChild = { type: 'publish'; topic: string; n: number };
type FromChild = { type: 'ready' } | { type: 'done'; ms: number };

export interface Publisher {
  /** Publishes n messages; resolves with how long publishing took, in ms. */
  publish(topic: string, n: number): Promise<number>;
  stop(): void;
}

export async function startPublisher(url: string): Promise<Publisher> {
  const child = fork(fileURLToPath(import.meta.url), [url], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await nextMessage(child, 'ready');
  return {
    publish: async (topic, n) => {
      const done = nextMessage(child, 'done');
      child.send({ type: 'publish', topic, n } satisfies ToChild);
      const msg = await done;
      return msg.type === 'done' ? msg.ms : 0;
    },
    stop: () => child.kill(),
  };
}

function nextMessage(child: ChildProcess, type: FromChild['type']): Promise<FromChild> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`publisher exited (${code}) before '${type}'`));
    const onMessage = (msg: FromChild) => {
      if (msg.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(msg);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function publish(client: MqttClient, topic: string, n: number): Promise<void> {
  const payload = payloadTemplate();
  for (let i = 1; i < n; i++) {
    client.publish(topic, payload, { qos: 0 });
    if (i % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await client.publishAsync(topic, payload, { qos: 0 });
}

async function child(url: string): Promise<void> {
  const client = await mqtt.connectAsync(url, { clientId: `spillway-bench-pub-${process.pid}`, clean: true });
  const send = (msg: FromChild) => process.send?.(msg);
  process.on('message', (msg: ToChild) => {
    const t0 = now();
    publish(client, msg.topic, msg.n).then(
      () => send({ type: 'done', ms: now() - t0 }),
      (err: unknown) => {
        console.error('publisher:', err);
        process.exit(1);
      },
    );
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const url = process.argv[2];
  if (url === undefined) throw new Error('usage: mqtt-publisher.js MQTT_URL');
  await child(url);
}
