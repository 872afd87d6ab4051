/**
 * A fleet of sensors for the group-commit bench: `clients` mqtt.js
 * connections in one child process, each publishing QoS 1 and waiting for
 * the PUBACK of one message before it sends the next (a sensor's in-flight
 * window of 1, the way most firmware publishes). So every PUBACK a durable
 * daemon holds back for its commit holds back that sensor, and the rate
 * shows how many records one commit (one fsync with `synchronous: full`)
 * covers.
 *
 *   child  -> { type: 'ready' }                   every client connected
 *   parent -> { type: 'publish', n }              n messages in all, spread over the clients
 *   child  -> { type: 'done', ms }                the last PUBACK arrived
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { nextMessage, serveJobs } from './child-loop.js';
import { payloadTemplate } from './stats.js';

export interface Fleet {
  /** Publishes n messages over all clients; resolves with how long it took, in ms. */
  publish(n: number): Promise<number>;
  stop(): void;
}

export async function startFleet(url: string, clients: number, topicPrefix: string): Promise<Fleet> {
  const child = fork(fileURLToPath(import.meta.url), [url, String(clients), topicPrefix], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await nextMessage('sensor fleet', child, 'ready');
  return {
    publish: async (n) => {
      const done = nextMessage('sensor fleet', child, 'done');
      child.send({ type: 'publish', n });
      const msg = await done;
      return msg.type === 'done' ? msg.ms : 0;
    },
    stop: () => child.kill(),
  };
}

async function sensor(client: MqttClient, topic: string, n: number): Promise<void> {
  const payload = payloadTemplate();
  for (let i = 0; i < n; i++) await client.publishAsync(topic, payload, { qos: 1 });
}

async function child(url: string, clients: number, prefix: string): Promise<void> {
  const fleet = await Promise.all(Array.from({ length: clients }, (_, i) => mqtt.connectAsync(url, { clientId: `spillway-bench-sensor-${process.pid}-${i}`, clean: true })));
  serveJobs<{ type: 'publish'; n: number }>('sensor fleet', async (msg) => {
    const each = Math.ceil(msg.n / clients);
    await Promise.all(fleet.map((c, i) => sensor(c, `${prefix}/s${i}`, each)));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [url, clients, prefix] = process.argv.slice(2);
  if (url === undefined || clients === undefined || prefix === undefined) throw new Error('usage: sensor-fleet.js MQTT_URL CLIENTS TOPIC_PREFIX');
  await child(url, Number(clients), prefix);
}
