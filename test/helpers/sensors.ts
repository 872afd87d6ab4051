/**
 * Sensors as fault tests need them: MQTT QoS 1 publishers, each keeping a
 * window of publishes in flight, recording every payload the broker
 * PUBACKed. They never reconnect: a connection that goes ends the sensor
 * (what was in flight is not acked, so it is not in `acked`).
 */
import mqtt, { type MqttClient } from 'mqtt';

export interface Sensors {
  /** Payloads whose publish was started. */
  readonly sent: Set<string>;
  /** Payloads the broker PUBACKed. */
  readonly acked: Set<string>;
  /** Ends every sensor at once, without waiting for anything in flight. */
  stop(): Promise<void>;
}

export interface SensorOptions {
  readonly count: number;
  /** Makes payloads unique across rounds: `${prefix}-s${sensor}-${n}`. */
  readonly prefix: string;
  readonly topic: string;
  readonly window?: number;
  /** Collect into these sets (to gather over many rounds). */
  readonly sent?: Set<string>;
  readonly acked?: Set<string>;
}

export async function startSensors(url: string, opts: SensorOptions): Promise<Sensors> {
  const sent = opts.sent ?? new Set<string>();
  const acked = opts.acked ?? new Set<string>();
  const window = opts.window ?? 20;
  const clients: MqttClient[] = [];
  let stopped = false;
  const connected = await Promise.all(
    Array.from({ length: opts.count }, (_, s) => mqtt.connectAsync(url, { clientId: `${opts.prefix}-s${s}-${process.pid}`, reconnectPeriod: 0, keepalive: 30 })),
  );
  connected.forEach((client, s) => {
    client.on('error', () => undefined);
    clients.push(client);
    let n = 0;
    const next = (): void => {
      if (stopped || !client.connected) return;
      const payload = `${opts.prefix}-s${s}-${n++}`;
      sent.add(payload);
      client.publish(opts.topic, payload, { qos: 1 }, (err) => {
        if (err === undefined || err === null) {
          acked.add(payload);
          next();
        }
      });
    };
    for (let i = 0; i < window; i++) next();
  });
  return {
    sent,
    acked,
    stop: async () => {
      stopped = true;
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    },
  };
}
