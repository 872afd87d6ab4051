/**
 * Config of the consumer endpoints beyond config/schema.ts's `consumers`
 * block: TLS for listen mode, the upstreams dial mode connects out to, and
 * loss notices. Strict like config/schema.ts (unknown keys are errors), every
 * key with a default or optional, except a dial upstream's `url`; types
 * derived from the schemas; each key `.describe()`d for docs/CONFIG.md.
 * Shapes follow the MQTT source's (`tls: {ca, cert, key}`, `reconnect`).
 * Files (certificates, keys, CAs) are read once at start; a file that
 * cannot be read stops the start naming its key.
 */
import { z } from 'zod';

const positiveInt = (max: number) => z.int().min(1).max(max);
const pemFile = z.string().min(1);

/** `consumers.listen.tls`: serve wss:// instead of ws://. */
export const listenTlsSchema = z
  .strictObject({
    cert: pemFile.describe('PEM file of the server certificate (the chain may follow it in the same file).'),
    key: pemFile.describe("PEM file of the certificate's private key."),
    clientCa: pemFile
      .optional()
      .describe('PEM file of a CA: when set, every client must present a certificate it signed (mutual TLS), or the TLS handshake fails.'),
  })
  .describe('Serve `wss://` with this certificate; absent: plain `ws://`.');

/** TLS of an outgoing connection (dial mode, the MQTT upstream): the same shape as `sources.mqtt[].tls`. */
export const clientTlsSchema = z
  .strictObject({
    ca: pemFile.optional().describe("PEM file of the CA that signed the server's certificate (default: the system's CAs)."),
    cert: pemFile.optional().describe('PEM file of a client certificate, for servers that require one (mutual TLS).'),
    key: pemFile.optional().describe("PEM file of the client certificate's key."),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'cert and key go together', path: ['cert'] })
  .describe("TLS files for a secure URL; the server's certificate is always verified.");

/** Reconnect delays of an outgoing connection: the same shape as `sources.mqtt[].reconnect`. */
// Defaults: back within a second of the far end (a step of at most 800 ms, so the next try comes
// at most 800 ms after it is reachable again), however long it was away. A fleet of many gateways
// on one collector raises maxMs (each retry is one TCP connect).
export const reconnectSchema = z
  .strictObject({
    initialMs: positiveInt(600_000).default(100).describe('First retry after about this long; each failure doubles it.'),
    maxMs: positiveInt(3_600_000)
      .default(800)
      .describe('The cap; every delay is picked at random in the upper half of its step. A fleet reconnecting to one collector may raise it (say 30000).'),
  })
  .refine((r) => r.maxMs >= r.initialMs, { message: 'maxMs must be at least initialMs', path: ['maxMs'] })
  .describe('Reconnect delays after a failed or lost connection: exponential from initialMs, capped at maxMs, with jitter.');

/** One entry of `consumers.dial`: an upstream the daemon connects out to; the upstream plays the consumer. */
export const dialSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64 chars)')
      .optional()
      .describe("In logs (default: the URL's host and port)."),
    url: z
      .string()
      // Host and port are checked with the other URLs (config/url-checks.ts).
      .regex(/^wss?:\/\/.+/, 'a ws:// or wss:// URL')
      .describe('The upstream to connect to; it must select the subprotocol `spillway.v1`.'),
    token: z.string().min(1).optional().describe('Sent as `Authorization: Bearer <token>` on the upgrade request.'),
    group: z.string().min(1).default('default').describe('The group (`groups.<name>`) whose records this upstream takes; it must be declared (without `groups`, only `default` exists).'),
    tls: clientTlsSchema.optional(),
    reconnect: reconnectSchema.prefault({}),
    helloTimeoutMs: positiveInt(600_000).default(5_000).describe('The upstream must say `hello` within this long of the connection opening.'),
    handshakeTimeoutMs: positiveInt(600_000).default(10_000).describe('The TCP, TLS and WebSocket handshakes must complete within this long.'),
    pingIntervalMs: z
      .int()
      .min(0)
      .max(3_600_000)
      .default(30_000)
      .describe('A ping this often; a connection that did not answer the previous one is dropped and dialled again (0: off).'),
  })
  .describe('An upstream the daemon connects out to (dial mode); it plays the consumer, speaking first with `hello`.');

/** `consumers.lossNotices`: `loss` messages telling connected consumers what was dropped. */
export const lossNoticesSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Send `loss` notices.'),
    intervalMs: positiveInt(3_600_000)
      .min(1_000)
      .default(1_000)
      .describe('How often the drop counters are read; also the least time between two notices for one stream.'),
    maxPendingEntries: positiveInt(100_000)
      .default(1_024)
      .describe('Pending aggregates (one per stream and reason) kept while no consumer is connected; beyond, drops fold into stream "*".'),
  })
  .describe('`loss` messages telling every consumer that said hello how many records of a stream were dropped, for which reason, and when.');

export type ListenTlsConfig = z.infer<typeof listenTlsSchema>;
export type ClientTlsConfig = z.infer<typeof clientTlsSchema>;
export type ReconnectConfig = z.infer<typeof reconnectSchema>;
export type DialConfig = z.infer<typeof dialSchema>;
export type LossNoticesConfig = z.infer<typeof lossNoticesSchema>;
