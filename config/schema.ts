/**
 * The one config schema: strict (unknown keys are errors), every key with a
 * default, and the TypeScript type derived from it. An empty file (or no
 * file) gives the embedded defaults: the embedded MQTT broker on
 * 127.0.0.1:1883, every message under `sensors/#` a record of the stream
 * named after its topic, consumers on ws://127.0.0.1:7420/v1/consume and the
 * admin port on 127.0.0.1:7421.
 */
import { z } from 'zod';
import { WHEN_FULL } from '../daemon/core/stream.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const port = z.int().min(0).max(65_535);
const host = z.string().min(1);
const positiveInt = (max: number) => z.int().min(1).max(max);

export const streamSpecSchema = z.strictObject({
  /** 0 is the most important. */
  priority: z.int().min(0).max(9).default(1),
  capacityRecords: positiveInt(10_000_000).default(10_000),
  capacityBytes: positiveInt(1024 * MiB).default(4 * MiB),
  whenFull: z.enum(WHEN_FULL).default('drop-oldest'),
});

const subscriptionSchema = z.strictObject({
  /** MQTT topic filter. */
  topic: z.string().min(1),
  qos: z.literal([0, 1]).default(1),
  /** Stream name; `{topic}` is replaced by the message's topic. */
  stream: z.string().min(1).default('{topic}'),
  /** Priority of the streams this subscription creates (unless `streams.<name>` says otherwise). */
  priority: z.int().min(0).max(9).optional(),
});

const mqttSourceSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64 chars)').default('mqtt'),
  url: z.string().regex(/^mqtts?:\/\/.+/, 'an mqtt:// or mqtts:// URL').default('mqtt://127.0.0.1:1883'),
  clientId: z.string().min(1).max(128).optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  keepaliveSeconds: z.int().min(0).max(65_535).default(30),
  reconnectMs: positiveInt(600_000).default(1_000),
  subscriptions: z.array(subscriptionSchema).min(1).default([{ topic: 'sensors/#', qos: 1, stream: '{topic}' }]),
});

export const configSchema = z.strictObject({
  /** Where the spool and state live. */
  dataDir: z.string().min(1).default('./var'),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Memory for records held (waiting and in flight), payloads plus per-record overhead. */
      memoryBudgetBytes: positiveInt(4096 * MiB).default(32 * MiB),
      /** Distinct streams; input for a stream beyond this is rejected and counted. */
      maxStreams: positiveInt(100_000).default(256),
      /** Larger payloads are rejected and counted in spillway_input_rejected_total. */
      maxPayloadBytes: positiveInt(256 * MiB).default(256 * KiB),
    })
    .prefault({}),
  /** Applies to every stream not named under `streams`. */
  streamDefaults: streamSpecSchema.prefault({}),
  /** Per-stream settings by exact stream name; unset keys come from `streamDefaults`. */
  streams: z.record(z.string().min(1), streamSpecSchema.partial()).default({}),
  sources: z
    .strictObject({
      embeddedBroker: z
        .strictObject({
          enabled: z.boolean().default(true),
          host: host.default('127.0.0.1'),
          port: port.default(1883),
        })
        .prefault({}),
      mqtt: z.array(mqttSourceSchema).default([{}].map((s) => mqttSourceSchema.parse(s))),
    })
    .prefault({}),
  consumers: z
    .strictObject({
      listen: z
        .strictObject({
          enabled: z.boolean().default(true),
          host: host.default('127.0.0.1'),
          port: port.default(7420),
          path: z.string().startsWith('/').default('/v1/consume'),
        })
        .prefault({}),
      /** When non-empty, `hello.token` must be one of these. */
      tokens: z.array(z.string().min(1)).default([]),
      helloTimeoutMs: positiveInt(600_000).default(5_000),
      maxFrameBytes: positiveInt(64 * MiB).default(1 * MiB),
      maxConsumers: positiveInt(10_000).default(64),
      maxCredit: positiveInt(2 ** 31 - 1).default(10_000),
      ackTimeoutMs: positiveInt(86_400_000).default(30_000),
      /** Deliveries a record gets before it is dropped as `poison`. */
      maxAttempts: positiveInt(1_000_000).default(10),
      /** Records per `records` message. */
      maxBatchRecords: positiveInt(100_000).default(500),
    })
    .prefault({}),
  admin: z
    .strictObject({
      enabled: z.boolean().default(true),
      host: host.default('127.0.0.1'),
      port: port.default(7421),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** How long SIGTERM waits for in-flight acks. */
      drainTimeoutMs: z.int().min(0).max(600_000).default(10_000),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type MqttSourceConfig = Config['sources']['mqtt'][number];
export type SubscriptionConfig = MqttSourceConfig['subscriptions'][number];
