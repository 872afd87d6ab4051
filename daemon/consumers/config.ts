/**
 * Config of the consumer endpoints beyond config/schema.ts's `consumers`
 * block: TLS for listen mode, the upstreams dial mode connects out to, and
 * loss notices. Strict like config/schema.ts (unknown keys are errors), every
 * key with a default except a dial upstream's `url`, types derived from the
 * schemas. Files (certificates, keys, CAs) are read once at start; a file
 * that cannot be read stops the start naming its key.
 */
import { z } from 'zod';

const positiveInt = (max: number) => z.int().min(1).max(max);
const pemFile = z.string().min(1);
const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64 chars)');

/** `consumers.listen.tls`: serve wss:// instead of ws://. */
export const listenTlsSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** PEM certificate (the chain may follow it in the same file). */
    certFile: pemFile.optional(),
    /** PEM private key of `certFile`. */
    keyFile: pemFile.optional(),
    /** When set, clients must present a certificate signed by this CA (mutual TLS); others fail the handshake. */
    clientCaFile: pemFile.optional(),
  })
  .superRefine((t, ctx) => {
    if (!t.enabled) return;
    if (t.certFile === undefined) ctx.addIssue({ code: 'custom', path: ['certFile'], message: 'a PEM certificate file is required when tls.enabled is true' });
    if (t.keyFile === undefined) ctx.addIssue({ code: 'custom', path: ['keyFile'], message: 'a PEM key file is required when tls.enabled is true' });
  });

export const backoffSchema = z
  .strictObject({
    /** First retry after about this long; each failure doubles it. */
    initialMs: positiveInt(600_000).default(500),
    /** The cap; every delay is jittered within the upper half of its step. */
    maxMs: positiveInt(3_600_000).default(30_000),
  })
  .refine((b) => b.initialMs <= b.maxMs, { message: 'initialMs must be at most maxMs', path: ['initialMs'] });

/** One entry of `consumers.dial`: an upstream the daemon connects out to; the upstream plays the consumer. */
export const dialSchema = z
  .strictObject({
    /** In logs; default: the URL's host and port. */
    name: name.optional(),
    url: z
      .string()
      .regex(/^wss?:\/\/.+/, 'a ws:// or wss:// URL')
      .refine((u) => URL.canParse(u), 'a URL that parses'),
    /** Sent as `Authorization: Bearer <token>` on the upgrade request. */
    token: z.string().min(1).optional(),
    /** CA that signs the upstream's certificate (wss://); default: the system CAs. */
    caFile: pemFile.optional(),
    /** A client certificate and key, for upstreams that want mutual TLS. */
    certFile: pemFile.optional(),
    keyFile: pemFile.optional(),
    /** Reconnect delays after a failed or lost connection. */
    backoff: backoffSchema.prefault({}),
    /** The upstream must say `hello` within this long of the connection opening. */
    helloTimeoutMs: positiveInt(600_000).default(5_000),
    /** The TCP + TLS + WebSocket handshake must complete within this long. */
    handshakeTimeoutMs: positiveInt(600_000).default(10_000),
    /** A ping this often; no pong by the next one and the connection is dropped (a NAT that forgot it). 0: off. */
    pingIntervalMs: z.int().min(0).max(3_600_000).default(30_000),
  })
  .refine((d) => (d.certFile === undefined) === (d.keyFile === undefined), { message: 'certFile and keyFile go together', path: ['certFile'] });

/** `consumers.lossNotices`: `loss` messages telling connected consumers what was dropped. */
export const lossNoticesSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** How often the drop counters are read; also the least time between two notices for one stream. */
  intervalMs: positiveInt(3_600_000).min(1_000).default(1_000),
  /** Pending aggregates (one per stream and reason) kept while no consumer is connected; beyond it they fold into stream "*". */
  maxPendingEntries: positiveInt(100_000).default(1_024),
});

export type ListenTlsConfig = z.infer<typeof listenTlsSchema>;
export type BackoffConfig = z.infer<typeof backoffSchema>;
export type DialConfig = z.infer<typeof dialSchema>;
export type LossNoticesConfig = z.infer<typeof lossNoticesSchema>;
