/**
 * The load of the embedded-broker bench: SENSORS (20) mqtt.js clients in one
 * child process, each publishing its share of n 100-byte QoS 1 messages with
 * at most `window` (default WINDOW) awaiting their PUBACK (a small sensor's
 * in-flight window; 1 for firmware that waits for each PUBACK), all at
 * once. The job is done when every PUBACK arrived.
 *
 * `startSensorLoad()` forks this file; they talk over the IPC channel as
 * mqtt-publisher.ts does (child-loop.ts).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { nextMessage, serveJobs } from './child-loop.js';
import { payloadTemplate } from './stats.js';

export const SENSORS = 20;
const WINDOW = 20;

type ToChild = { type: 'publish'; topic: string; n: number };

export interface SensorLoad {
  /** Publishes n messages over all sensors; resolves with how long until the last PUBACK, in ms. */
  publish(topic: string, n: number): Promise<number>;
  stop(): void;
}

export async function startSensorLoad(url: string, window = WINDOW): Promise<SensorLoad> {
  const child = fork(fileURLToPath(import.meta.url), [url, String(window)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await nextMessage('sensors', child, 'ready');
  return {
    publish: async (topic, n) => {
      const done = nextMessage('sensors', child, 'done');
      child.send({ type: 'publish', topic, n } satisfies ToChild);
      const msg = await done;
      return msg.type === 'done' ? msg.ms : 0;
    },
    stop: () => child.kill(),
  };
}

function publishShare(client: MqttClient, topic: string, n: number, window: number): Promise<void> {
  const payload = payloadTemplate();
  return new Promise((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    const one = (): void => {
      if (sent >= n) return;
      sent++;
      client.publish(topic, payload, { qos: 1 }, (err) => {
        if (err instanceof Error) return reject(err);
        if (++acked === n) return resolve();
        one();
      });
    };
    if (n === 0) return resolve();
    for (let i = 0; i < window; i++) one();
  });
}

async function child(url: string, window: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: SENSORS }, (_, i) => mqtt.connectAsync(url, { clientId: `spillway-bench-sensor-${process.pid}-${i}`, clean: true })));
  serveJobs<ToChild>('sensors', async (msg) => {
    const share = Math.floor(msg.n / SENSORS);
    await Promise.all(clients.map((c, i) => publishShare(c, msg.topic, i === 0 ? msg.n - share * (SENSORS - 1) : share, window)));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const url = process.argv[2];
  if (url === undefined) throw new Error('usage: mqtt-sensors.js MQTT_URL [WINDOW]');
  await child(url, Number(process.argv[3] ?? WINDOW));
}
