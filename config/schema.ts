/**
 * The one config schema: strict (unknown keys are errors), every key with a
 * default, and the TypeScript type derived from it. An empty file (or no
 * file) gives the embedded defaults: the embedded MQTT broker on
 * 127.0.0.1:1883, every message under `sensors/#` a record of the stream
 * named after its topic, consumers on ws://127.0.0.1:7420/v1/consume and the
 * admin port on 127.0.0.1:7421.
 */
import { validate as validCron } from 'node-cron';
import { z } from 'zod';
import { REPLAY_MODES, WHEN_FULL } from '../daemon/core/stream.js';
import { serialPortSchema } from '../drivers/serial/config.js';
import { dialSchema, listenTlsSchema, lossNoticesSchema } from '../daemon/consumers/config.js';
import { upstreamsSchema } from '../daemon/upstreams/config.js';
import { groupsSchema, undeclaredGroups } from './groups.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The embedded broker's source name (logs, metric labels). */
export const EMBEDDED_BROKER_NAME = 'embedded-broker';

const port = z.int().min(0).max(65_535);
const cron = z.string().refine((v) => validCron(v), 'a cron expression (5 fields, or 6 with seconds first)');
const host = z.string().min(1);
const positiveInt = (max: number) => z.int().min(1).max(max);

export const streamSpecSchema = z.strictObject({
  /** 0 is the most important. */
  priority: z.int().min(0).max(9).default(1),
  capacityRecords: positiveInt(10_000_000).default(10_000),
  capacityBytes: positiveInt(1024 * MiB).default(4 * MiB),
  /** spill: oldest records to the spool; drop-oldest / drop-newest; block: hold the source back. */
  whenFull: z.enum(WHEN_FULL).default('spill'),
  /** fifo: oldest first; live-first: fresh records first, the backlog at `backlogShare` of deliveries. */
  replay: z.enum(REPLAY_MODES).default('fifo'),
  backlogShare: z.number().min(0).max(1).default(0.2),
  /** Records older than this are dropped as `expired`; 0 keeps them until delivered. */
  ttlMs: z.int().min(0).max(10 * 365 * 86_400_000).default(0),
});

/**
 * `streams.<name>`: the keys of a stream spec without their defaults, so a
 * key the entry does not set comes from `streamDefaults` (zod's `.partial()`
 * would keep each key's own default and override streamDefaults with it).
 */
const sh = streamSpecSchema.shape;
const streamOverrideSchema = z.strictObject({
  priority: sh.priority.unwrap().optional(),
  capacityRecords: sh.capacityRecords.unwrap().optional(),
  capacityBytes: sh.capacityBytes.unwrap().optional(),
  whenFull: sh.whenFull.unwrap().optional(),
  replay: sh.replay.unwrap().optional(),
  backlogShare: sh.backlogShare.unwrap().optional(),
  ttlMs: sh.ttlMs.unwrap().optional(),
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

/** A topic filter mapped to streams, for the embedded broker (the publisher picks the QoS there). */
const routeSchema = subscriptionSchema.omit({ qos: true });

const tlsFilesSchema = z.strictObject({
  /** PEM file of the CA that signed the broker's certificate (default: the system's CAs). */
  ca: z.string().min(1).optional(),
  /** PEM files of a client certificate and its key, for brokers that require one. */
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
});

const mqttSourceSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64 chars)').default('mqtt'),
    url: z.string().regex(/^mqtts?:\/\/.+/, 'an mqtt:// or mqtts:// URL').default('mqtt://127.0.0.1:1883'),
    /** 4 = MQTT 3.1.1, 5 = MQTT 5. */
    protocolVersion: z.literal([4, 5]).default(4),
    /** Fixed client id; required for a persistent session. Default: spillway-<name>-<pid>. */
    clientId: z.string().min(1).max(128).optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    /** TLS files for mqtts:// (the broker's certificate is always verified). */
    tls: tlsFilesSchema.optional(),
    /** Keep the session across reconnects and restarts (clean=false, MQTT 5 session expiry): the broker queues QoS 1 messages while the daemon is away. */
    persistentSession: z.boolean().default(false),
    /** MQTT 5, persistent session: how long the broker keeps it after a disconnect. */
    sessionExpirySeconds: z.int().min(1).max(4_294_967_295).default(86_400),
    keepaliveSeconds: z.int().min(1).max(65_535).default(30),
    /** Reconnect delays: exponential from initialMs, capped at maxMs, with jitter. */
    reconnect: z
      .strictObject({
        initialMs: positiveInt(600_000).default(500),
        maxMs: positiveInt(3_600_000).default(30_000),
      })
      .refine((r) => r.maxMs >= r.initialMs, { message: 'maxMs must be at least initialMs', path: ['maxMs'] })
      .prefault({}),
    /**
     * How long a `block` stream may withhold a PUBACK. mqtt.js reads nothing
     * else meanwhile, keepalive included; past this the message is let go
     * (counted as rejected input) so the connection never times out.
     * Default: half the keepalive.
     */
    maxBlockMs: positiveInt(3_600_000).optional(),
    subscriptions: z.array(subscriptionSchema).min(1).default([{ topic: 'sensors/#', qos: 1, stream: '{topic}' }]),
  })
  .refine((s) => !s.persistentSession || s.clientId !== undefined, { message: 'a persistent session needs a fixed clientId', path: ['clientId'] })
  .refine((s) => s.maxBlockMs === undefined || s.maxBlockMs < s.keepaliveSeconds * 1_000, { message: 'maxBlockMs must be below the keepalive', path: ['maxBlockMs'] });

export const configSchema = z.strictObject({
  /** Where the spool and state live. */
  dataDir: z.string().min(1).default('./var'),
  /**
   * memory: records live in RAM until pressure or shutdown; a crash loses what
   * the rings hold. durable: every record is committed to the spool before
   * its source is acked; a crash loses nothing acked to a source.
   */
  durability: z.enum(['memory', 'durable']).default('memory'),
  spool: z
    .strictObject({
      /** The SQLite file, relative to dataDir. */
      file: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a file name inside dataDir').default('spool.db'),
      /** Disk quota, payload plus ~48 bytes a row; when reached the least important, oldest spooled records go (spool_full). */
      quotaBytes: positiveInt(1024 * 1024 * MiB).default(1024 * MiB),
      /** normal: a commit survives a process crash; full: also power loss, at an fsync per commit. */
      synchronous: z.enum(['normal', 'full']).default('normal'),
      /** Records moved to the spool per transaction. */
      spillBatchRecords: positiveInt(100_000).default(256),
      /** Records read back from the spool at a time. */
      replayBatchRecords: positiveInt(100_000).default(256),
      /** Durable mode: how long a group commit waits for more records before its one transaction (0: the records of one event-loop turn). */
      groupCommitMs: z.int().min(0).max(1_000).default(0),
      /** Cron (with seconds) for the WAL checkpoint (in a worker thread). */
      checkpointCron: cron.default('*/30 * * * * *'),
      /** Cron for returning free pages to the file system. */
      reclaimCron: cron.default('15 */5 * * * *'),
      /** Cron for the TTL sweep. */
      ttlCron: cron.default('*/10 * * * * *'),
      /** Cron for the periodic stats log line. */
      statsCron: cron.default('0 * * * * *'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Memory for records held (waiting and in flight), payloads plus per-record overhead. */
      memoryBudgetBytes: positiveInt(4096 * MiB).default(32 * MiB),
      /** Distinct streams not named under `streams` (those always have room); input for a stream beyond this is rejected and counted. */
      maxStreams: positiveInt(100_000).default(256),
      /** Longer stream names (UTF-8 bytes) are rejected and counted (stream_name_too_long): every name is a metric label. */
      maxStreamNameBytes: positiveInt(65_536).default(256),
      /** A stream not named under `streams` that holds nothing and took no record for this long is forgotten (its counts stay on /metrics as stream="(forgotten)"); 0 keeps every stream. */
      streamIdleSeconds: z.int().min(0).max(10 * 365 * 86_400).default(3_600),
      /** Larger payloads are rejected and counted in spillway_input_rejected_total. */
      maxPayloadBytes: positiveInt(256 * MiB).default(256 * KiB),
      /** Share of the memory budget kept for a priority, e.g. {"0": 0.25}: others cannot use it. */
      reservedShares: z
        .record(z.string().regex(/^[0-9]$/, 'a priority 0-9'), z.number().min(0).max(1))
        .refine((shares) => Object.values(shares).reduce((a, b) => a + b, 0) <= 1, 'shares that add up to at most 1')
        .default({}),
    })
    .prefault({}),
  /** Applies to every stream not named under `streams`. */
  streamDefaults: streamSpecSchema.prefault({}),
  /** Per-stream settings by exact stream name; unset keys come from `streamDefaults`. */
  streams: z.record(z.string().min(1), streamOverrideSchema).default({}),
  sources: z
    .strictObject({
      embeddedBroker: z
        .strictObject({
          enabled: z.boolean().default(true),
          host: host.default('127.0.0.1'),
          port: port.default(1883),
          /** When set, clients must log in with these. */
          username: z.string().min(1).optional(),
          password: z.string().min(1).optional(),
          /** Larger publishes are refused by the broker before their body is read (and counted); the connection is closed. */
          maxPayloadBytes: positiveInt(256 * MiB).default(256 * KiB),
          /**
           * How long a `block` stream may withhold one client's PUBACK; past
           * it that client is disconnected (it resends on reconnect). Default:
           * half the client's keepalive, 5 s for a client without one.
           */
          maxBlockMs: positiveInt(3_600_000).optional(),
          /** Topic filters taken as records, each mapped to streams; other publishes are only forwarded (and counted as unrouted). */
          subscriptions: z.array(routeSchema).min(1).default([{ topic: 'sensors/#', stream: '{topic}' }]),
        })
        .refine((b) => (b.username === undefined) === (b.password === undefined), { message: 'username and password go together', path: ['password'] })
        .prefault({}),
      /** External brokers to subscribe to (the embedded broker needs none: it takes its publishes in process). */
      mqtt: z.array(mqttSourceSchema).default([]),
      /** Serial ports, each a stream (drivers/serial/config.ts). */
      serial: z.array(serialPortSchema).default([]),
    })
    .refine((s) => {
      const names = [...(s.embeddedBroker.enabled ? [EMBEDDED_BROKER_NAME] : []), ...s.mqtt.map((d) => d.name), ...s.serial.map((d) => d.name)];
      return new Set(names).size === names.length;
    }, 'source names that are all different')
    .prefault({}),
  consumers: z
    .strictObject({
      listen: z
        .strictObject({
          enabled: z.boolean().default(true),
          host: host.default('127.0.0.1'),
          port: port.default(7420),
          path: z.string().startsWith('/').default('/v1/consume'),
          /** wss:// with cert + key; mutual TLS with clientCa. Absent: plain ws://. */
          tls: listenTlsSchema.optional(),
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
      /** A consumer whose socket holds more unsent bytes than this is sent nothing until it drains. */
      maxBufferedBytes: positiveInt(256 * MiB).min(64 * 1024).default(1 * MiB),
      /** A consumer above maxBufferedBytes that reads nothing for this long is closed (`protocol`). */
      stuckTimeoutMs: positiveInt(3_600_000).min(100).default(30_000),
      dial: z.array(dialSchema).default([]).describe('Upstreams the daemon connects out to (dial mode); each plays a consumer.'),
      lossNotices: lossNoticesSchema.prefault({}),
    })
    .prefault({}),
  upstreams: upstreamsSchema.prefault({}),
  /** Destinations that each get every record of the streams they select (docs/PROTOCOL.md, Groups). Absent: one group `default` with every stream. */
  groups: groupsSchema.optional(),
  admin: z
    .strictObject({
      enabled: z.boolean().default(true),
      host: host.default('127.0.0.1'),
      port: port.default(7421),
      /** One sample of the status page's charts this often (15 minutes are kept). */
      chartSampleSeconds: positiveInt(60).default(5),
    })
    .prefault({}),
  health: z
    .strictObject({
      /** /healthz turns 503 when records wait, consumers have credit, and nothing moved for this long. */
      stallSeconds: positiveInt(86_400).default(30),
      /** /healthz turns 503 when records wait and no consumer or uplink has been connected for this long. */
      uplinkDownSeconds: positiveInt(86_400).default(60),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** How long SIGTERM waits for in-flight acks. */
      drainTimeoutMs: z.int().min(0).max(600_000).default(10_000),
    })
    .prefault({}),
}).superRefine((c, ctx) => {
  // Every destination names a declared group (without `groups`, only `default` exists).
  const declared = c.groups === undefined ? 'only default exists without a groups key' : `declared: ${Object.keys(c.groups).join(', ')}`;
  const entries = [
    ...c.consumers.dial.map((d, i) => ({ path: ['consumers', 'dial', i, 'group'], group: d.group })),
    ...c.upstreams.mqtt.map((u, i) => ({ path: ['upstreams', 'mqtt', i, 'group'], group: u.group })),
  ];
  for (const bad of undeclaredGroups(c.groups, entries.map((e) => ({ path: e.path.join('.'), group: e.group })))) {
    const entry = entries.find((e) => e.path.join('.') === bad.path);
    ctx.addIssue({ code: 'custom', path: entry?.path ?? [], message: `a declared group (${declared})` });
  }
});

export type Config = z.infer<typeof configSchema>;
export type MqttSourceConfig = Config['sources']['mqtt'][number];
export type SubscriptionConfig = MqttSourceConfig['subscriptions'][number];
export type EmbeddedBrokerConfig = Config['sources']['embeddedBroker'];
/** What routing needs from a subscription (an MQTT source's or the embedded broker's). */
export type RouteConfig = EmbeddedBrokerConfig['subscriptions'][number];
