/**
 * Config of the upstreams that are not consumer connections: `upstreams.mqtt`,
 * brokers the daemon publishes records to (QoS 1; the in-flight window is the
 * credit, PUBACK is the ack). Strict like config/schema.ts, every key with a
 * default except `url`, types derived from the schemas.
 */
import { z } from 'zod';
import { backoffSchema } from '../consumers/config.js';

const positiveInt = (max: number) => z.int().min(1).max(max);
const pemFile = z.string().min(1);

/** The placeholders a topic template may use. */
export const TOPIC_PLACEHOLDERS = ['{stream}', '{prio}'] as const;

export const mqttUpstreamSchema = z
  .strictObject({
    /** In logs and as the consumer name in the engine. */
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64 chars)').default('mqtt-upstream'),
    url: z.string().regex(/^mqtts?:\/\/.+/, 'an mqtt:// or mqtts:// URL'),
    /** Default: spillway-<name>-<pid>. */
    clientId: z.string().min(1).max(128).optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    /** CA that signs the broker's certificate (mqtts://); default: the system CAs. */
    caFile: pemFile.optional(),
    /** A client certificate and key, for brokers that want mutual TLS. */
    certFile: pemFile.optional(),
    keyFile: pemFile.optional(),
    /** 5: the window is also capped by the broker's Receive Maximum, and records carry user properties. */
    protocolVersion: z.literal([4, 5]).default(5),
    /** The topic of each record; `{stream}` and `{prio}` are replaced. */
    topicTemplate: z
      .string()
      .min(1)
      .refine((t) => !/[+#\u0000]/.test(t), 'a topic name without the wildcards + and # (placeholders: {stream}, {prio})')
      .default('spillway/{stream}'),
    /** Publishes awaiting their PUBACK at most (the credit granted to the engine). */
    window: positiveInt(65_535).default(100),
    /** Always 1: a PUBACK is what acks a record. */
    qos: z.literal(1).default(1),
    /** MQTT 5: `seq`, `ts` and `attempt` of the record as user properties; MQTT 3.1.1 sends the payload alone. */
    userProperties: z.boolean().default(true),
    keepaliveSeconds: z.int().min(0).max(65_535).default(30),
    /** The TCP + TLS + CONNECT/CONNACK exchange must complete within this long. */
    connectTimeoutMs: positiveInt(600_000).default(10_000),
    /** Reconnect delays after a failed or lost connection. */
    backoff: backoffSchema.prefault({}),
  })
  .refine((m) => (m.certFile === undefined) === (m.keyFile === undefined), { message: 'certFile and keyFile go together', path: ['certFile'] });

/** `upstreams`: top level of the config. */
export const upstreamsSchema = z
  .strictObject({
    mqtt: z.array(mqttUpstreamSchema).default([]),
  })
  .refine((u) => new Set(u.mqtt.map((m) => m.name)).size === u.mqtt.length, { message: 'upstream names that are all different', path: ['mqtt'] });

export type MqttUpstreamConfig = z.infer<typeof mqttUpstreamSchema>;
export type UpstreamsConfig = z.infer<typeof upstreamsSchema>;
