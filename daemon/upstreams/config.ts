/**
 * Config of the upstreams that are not consumer connections: `upstreams.mqtt`,
 * brokers the daemon publishes records to (QoS 1; the in-flight window is the
 * credit, PUBACK is the ack). Strict like config/schema.ts, every key with a
 * default or optional except `url`, types derived from the schemas, each key
 * `.describe()`d for docs/CONFIG.md. Shapes follow `sources.mqtt[]`.
 */
import { z } from 'zod';
import { clientTlsSchema, reconnectSchema } from '../consumers/config.js';

const positiveInt = (max: number) => z.int().min(1).max(max);

export const mqttUpstreamSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64 chars)')
      .default('mqtt-upstream')
      .describe("In logs, and the consumer's name in the engine."),
    url: z.string().regex(/^mqtts?:\/\/.+/, 'an mqtt:// or mqtts:// URL').describe('The broker to publish to.'),
    group: z.string().min(1).default('default').describe('The group (`groups.<name>`) whose records this upstream publishes; it must be declared (without `groups`, only `default` exists).'),
    // Default 4: under MQTT 5 the broker's Receive Maximum caps the window (Mosquitto's is its
    // max_inflight_messages, 20 by default), and 20 in flight carry at most 20 / RTT records a
    // second (400/s over a 50 ms uplink): below what the sources bring, so the daemon spilled
    // on a healthy uplink (docs/PERFORMANCE.md).
    protocolVersion: z
      .literal([4, 5])
      .default(4)
      .describe(
        "4 = MQTT 3.1.1 (payload only). 5 = MQTT 5: records carry user properties and a refusing PUBACK is seen, but the window is capped by the broker's Receive Maximum (Mosquitto: max_inflight_messages, default 20; raise it there to match `window`).",
      ),
    clientId: z.string().min(1).max(128).optional().describe('Default: spillway-<name>-<pid>. Each connection is a clean session.'),
    username: z.string().optional().describe('MQTT username.'),
    password: z.string().optional().describe('MQTT password.'),
    tls: clientTlsSchema.optional(),
    topicTemplate: z
      .string()
      .min(1)
      .refine((t) => !/[+#\u0000]/.test(t), 'a topic name without the wildcards + and # (placeholders: {stream}, {prio})')
      .default('spillway/{stream}')
      .describe('The topic of each record; `{stream}` and `{prio}` are replaced (`+` and `#` in a stream name become `_`).'),
    // 1,000: the uplink's bandwidth-delay product at the rates a Pi forwards (25k records/s x 40 ms),
    // for at most ~1,000 x (payload + 60 B) held in mqtt.js's store.
    window: positiveInt(65_535)
      .default(1_000)
      .describe('Publishes awaiting their PUBACK at most: the credit this upstream grants. It bounds the rate to window / round trip (1,000 over a 40 ms uplink: 25k records/s).'),
    qos: z.literal(1).default(1).describe('Always 1: a PUBACK is what acks a record.'),
    userProperties: z.boolean().default(true).describe('MQTT 5: `seq`, `stream`, `prio`, `ts` and `attempt` of the record as user properties.'),
    keepaliveSeconds: z.int().min(1).max(65_535).default(30).describe('MQTT keepalive.'),
    connectTimeoutMs: positiveInt(600_000).default(10_000).describe('TCP, TLS and CONNECT/CONNACK must complete within this long.'),
    reconnect: reconnectSchema.prefault({}),
  })
  .describe('A broker the daemon publishes records to, QoS 1: the in-flight window is the credit, the PUBACK is the ack.');

export const upstreamsSchema = z
  .strictObject({
    mqtt: z.array(mqttUpstreamSchema).default([]).describe('MQTT brokers to publish records to.'),
  })
  .refine((u) => new Set(u.mqtt.map((m) => m.name)).size === u.mqtt.length, { message: 'upstream names that are all different', path: ['mqtt'] })
  .describe('Where records go besides WebSocket consumers.');

export type MqttUpstreamConfig = z.infer<typeof mqttUpstreamSchema>;
export type UpstreamsConfig = z.infer<typeof upstreamsSchema>;
