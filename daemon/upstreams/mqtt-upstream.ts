/**
 * An MQTT upstream: a consumer of the engine that publishes each record,
 * QoS 1, to a broker. The in-flight window is the credit and the PUBACK is
 * the ack, so the broker's pace is the daemon's pace:
 *
 *   connect ──CONNACK──> attach(name), credit(window)
 *      deliver(record) ──> PUBLISH (qos 1)      at most `window` awaiting PUBACK
 *      PUBACK           ──> ack(seq), credit(1)
 *      PUBACK error (5) ──> nack(seq), credit(1) after reconnect.initialMs
 *   close ──> detach (what was in flight is redelivered, attempt + 1)
 *         ──> backoff ──> connect (a new client)
 *
 * window = min(`window`, the broker's Receive Maximum from the MQTT 5 CONNACK).
 *
 * mqtt.js keeps unacked publishes in a store and an offline queue, both
 * unbounded, and resends them on reconnect. This upstream never leans on
 * them: it publishes only while connected and inside the window (so the
 * store holds at most `window` packets), and makes a fresh client for every
 * connection (so nothing from a dead connection is resent; the engine
 * redelivers it instead, and late callbacks of the old client are ignored).
 */
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Rec } from '../core/record.js';
import type { ConsumerSink, Engine } from '../engine.js';
import type { ShellCounters } from '../observability/counters.js';
import { readClientTls, type ClientTlsMaterial } from '../consumers/tls-files.js';
import { backoffDelay } from '../backoff.js';
import type { MqttUpstreamConfig } from './config.js';
import { TopicTemplate } from './topic-template.js';
import { shownUrl, type UplinkState } from '../observability/uplink.js';

export interface UpstreamContext {
  readonly engine: Engine;
  readonly log: Logger;
  readonly counters: ShellCounters;
}

export interface MqttUpstreamStats {
  readonly connected: boolean;
  /** The window of the current connection (0 while disconnected). */
  readonly window: number;
  /** Publishes awaiting their PUBACK now, and the most there ever were. */
  readonly inflight: number;
  readonly maxInflight: number;
  readonly published: number;
  readonly acked: number;
  readonly refused: number;
  readonly connections: number;
  /** Packets in mqtt.js's own store and offline queue: never above the window, and 0. */
  readonly clientStored: number;
  readonly clientQueued: number;
}

/** MQTT 5: a CONNACK without Receive Maximum means 65,535. */
const DEFAULT_RECEIVE_MAXIMUM = 65_535;
/** How long `stop` waits for a clean DISCONNECT before dropping the socket. */
const CLOSE_WAIT_MS = 1_000;

export class MqttUpstream implements ConsumerSink {
  readonly name: string;
  readonly #cfg: MqttUpstreamConfig;
  readonly #key: string;
  readonly #ctx: UpstreamContext;
  readonly #log: Logger;
  readonly #topics: TopicTemplate;
  #tls: ClientTlsMaterial = {};
  #client: MqttClient | undefined;
  /** Bumped when a connection ends: callbacks of an older connection are ignored. */
  #gen = 0;
  /** Engine consumer id while attached, else 0. */
  #id = 0;
  #window = 0;
  #inflight = 0;
  #maxInflight = 0;
  #published = 0;
  #acked = 0;
  #refused = 0;
  #connections = 0;
  #failures = 0;
  /** Failed or lost connections since start, and the wall-clock ms of the last PUBACK. */
  #reconnects = 0;
  #lastAckAt: number | null = null;
  #running = false;
  #retry: NodeJS.Timeout | undefined;
  #refusalLogged = false;

  /** `key` names the entry in logs and errors, e.g. `upstreams.mqtt[0]`. */
  constructor(cfg: MqttUpstreamConfig, key: string, ctx: UpstreamContext) {
    this.name = cfg.name;
    this.#cfg = cfg;
    this.#key = key;
    this.#ctx = ctx;
    this.#log = ctx.log.child({ upstream: cfg.name });
    this.#topics = new TopicTemplate(cfg.topicTemplate);
  }

  get connected(): boolean {
    return this.#id !== 0;
  }

  stats(): MqttUpstreamStats {
    const c = this.#client;
    return {
      connected: this.connected,
      window: this.#id === 0 ? 0 : this.#window,
      inflight: this.#inflight,
      maxInflight: this.#maxInflight,
      published: this.#published,
      acked: this.#acked,
      refused: this.#refused,
      connections: this.#connections,
      clientStored: c === undefined ? 0 : Object.keys(c.outgoing).length,
      clientQueued: c === undefined ? 0 : c.queue.length,
    };
  }

  /** The shape of a source's health, for /healthz or the status page. */
  health(): { readonly name: string; readonly up: boolean; readonly detail: string } {
    return { name: this.name, up: this.connected, detail: this.connected ? `connected, window ${this.#window}` : 'disconnected' };
  }

  /** Connected, last PUBACK, window in use and reconnects, for /healthz, /status and the page. */
  uplink(): UplinkState {
    const { up, detail } = this.health();
    return { name: this.name, kind: 'mqtt', group: this.#cfg.group, url: shownUrl(this.#cfg.url), connected: up, lastAckAt: this.#lastAckAt, inflight: this.#inflight, window: this.#id === 0 ? 0 : this.#window, reconnects: this.#reconnects, detail };
  }

  /** Reads the TLS files, then connects; does not wait for the broker. */
  async start(): Promise<void> {
    await this.load();
    this.dial();
  }

  /** Reads the TLS files; throws naming the key of a file that cannot be read. */
  async load(): Promise<void> {
    this.#tls = await readClientTls(this.#cfg.tls, `${this.#key}.tls`);
  }

  dial(): void {
    if (this.#running) return;
    this.#running = true;
    this.#connect();
  }

  /** Stops reconnecting; the current connection stays (PUBACKs still come back while the daemon drains). */
  stopReconnecting(): void {
    this.#running = false;
    clearTimeout(this.#retry);
  }

  /** Detaches (what is in flight is redelivered later) and disconnects. */
  async stop(): Promise<void> {
    this.stopReconnecting();
    const client = this.#client;
    this.#client = undefined;
    this.#lost();
    if (client === undefined) return;
    const clean = client.connected && Object.keys(client.outgoing).length === 0;
    // A broker that stopped answering never completes the DISCONNECT: drop the socket then.
    const timer = setTimeout(() => client.stream?.destroy(), CLOSE_WAIT_MS);
    await new Promise<void>((resolve) => client.end(!clean, () => resolve()));
    clearTimeout(timer);
  }

  // ── ConsumerSink ───────────────────────────────────────────────────────

  /** Called by the engine only while attached, at most `window` records beyond the PUBACKs seen. */
  deliver(records: readonly Rec[]): void {
    const client = this.#client;
    if (client === undefined || this.#id === 0) return;
    const gen = this.#gen;
    const id = this.#id;
    const v5 = this.#cfg.protocolVersion === 5;
    for (const r of records) {
      const p = r.payload;
      const payload = Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
      const opts: IClientPublishOptions = { qos: 1 };
      if (v5 && this.#cfg.userProperties) {
        opts.properties = {
          userProperties: { seq: String(r.seq), stream: r.stream.name, prio: String(r.prio), ts: String(r.ts), attempt: String(r.attempt) },
        };
      }
      this.#inflight++;
      this.#published++;
      if (this.#inflight > this.#maxInflight) this.#maxInflight = this.#inflight;
      const seq = r.seq;
      client.publish(this.#topics.topicFor(r.stream.name, r.prio), payload, opts, (err, packet) => this.#settled(gen, id, seq, err, packet));
    }
  }

  // ── internals ──────────────────────────────────────────────────────────

  #connect(): void {
    if (!this.#running) return;
    const cfg = this.#cfg;
    const gen = this.#gen;
    const client = mqtt.connect(cfg.url, {
      clientId: cfg.clientId ?? `spillway-${cfg.name}-${process.pid}`,
      username: cfg.username,
      password: cfg.password,
      protocolVersion: cfg.protocolVersion,
      keepalive: cfg.keepaliveSeconds,
      connectTimeout: cfg.connectTimeoutMs,
      // Reconnects are ours (backoff with jitter, a fresh client each time).
      reconnectPeriod: 0,
      clean: true,
      queueQoSZero: false,
      resubscribe: false,
      ...this.#tls,
      // mqtt.js calls its debug logger several times per packet.
      log: () => undefined,
    });
    this.#client = client;
    let lastError = '';
    client.on('error', (err) => (lastError = err.message));
    client.on('connect', (connack) => {
      if (gen !== this.#gen || this.#id !== 0) return;
      const receiveMaximum = cfg.protocolVersion === 5 ? (connack.properties?.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM) : Infinity;
      this.#window = Math.min(cfg.window, receiveMaximum);
      this.#inflight = 0;
      this.#refusalLogged = false;
      this.#connections++;
      // The config refuses an undeclared group, so the engine always takes this one.
      this.#id = this.#ctx.engine.attach(cfg.name, this, { group: cfg.group }) ?? 0;
      this.#ctx.engine.credit(this.#id, this.#window);
      const fields = { event: 'upstream_connected', url: cfg.url, window: this.#window, receiveMaximum: Number.isFinite(receiveMaximum) ? receiveMaximum : undefined };
      if (this.#failures > 0) this.#log.info({ ...fields, failures: this.#failures }, 'connected to MQTT upstream again');
      else this.#log.info(fields, 'connected to MQTT upstream');
      this.#failures = 0;
    });
    client.on('close', () => {
      if (gen !== this.#gen) return;
      const wasUp = this.#id !== 0;
      this.#lost();
      // end(true) empties mqtt.js's store (its callbacks see an old generation): nothing of this connection is resent.
      client.end(true);
      if (this.#client === client) this.#client = undefined;
      if (!this.#running) return;
      const delay = backoffDelay(this.#failures, cfg.reconnect, Math.random());
      this.#failures++;
      this.#reconnects++;
      this.#report(wasUp, lastError, delay);
      this.#retry = setTimeout(() => this.#connect(), delay);
    });
  }

  /** The connection is gone: detach, so the engine takes back and redelivers what was in flight. */
  #lost(): void {
    this.#gen++;
    this.#inflight = 0;
    if (this.#id === 0) return;
    const id = this.#id;
    this.#id = 0;
    this.#ctx.engine.detach(id);
  }

  #settled(gen: number, id: number, seq: number, err: Error | undefined, packet: unknown): void {
    if (gen !== this.#gen) return;
    this.#inflight--;
    const engine = this.#ctx.engine;
    if (err === undefined || err === null) {
      this.#acked++;
      this.#lastAckAt = Date.now();
      engine.ack(id, [seq]);
      engine.credit(id, 1);
      return;
    }
    // A PUBACK with an error reason code (MQTT 5): the broker refused this record. It is sent
    // again (counting towards maxAttempts), and the window slot comes back after a pause so a
    // refusing broker is not hammered.
    this.#refused++;
    engine.nack(id, [seq]);
    if (!this.#refusalLogged) {
      this.#refusalLogged = true;
      const reasonCode = (packet as { reasonCode?: number } | undefined)?.reasonCode;
      this.#log.warn({ event: 'upstream_publish_refused', url: this.#cfg.url, seq, reasonCode, err: err.message }, 'MQTT upstream refused a publish; it will be retried (logged once per connection)');
    }
    const pause = setTimeout(() => {
      if (gen === this.#gen) engine.credit(id, 1);
    }, this.#cfg.reconnect.initialMs);
    pause.unref();
  }

  /** One line when the broker goes or stays away; repeats of a failure streak go to debug. */
  #report(wasUp: boolean, error: string, retryMs: number): void {
    const fields = { event: wasUp ? 'upstream_disconnected' : 'upstream_unreachable', url: this.#cfg.url, err: error || undefined, failures: this.#failures, retryMs };
    if (this.#failures > 1) return this.#log.debug(fields, 'MQTT upstream still unreachable');
    // The broker refused our credentials: an operator must act.
    if (/not authori[sz]ed|bad user ?name or password/i.test(error)) return this.#log.error(fields, 'MQTT upstream refused the connection (credentials); retrying');
    this.#log.warn(fields, wasUp ? 'MQTT upstream connection lost; records in flight will be redelivered' : 'cannot connect to MQTT upstream; retrying');
  }
}

export interface MqttUpstreams {
  readonly upstreams: readonly MqttUpstream[];
  start(): Promise<void>;
  /** Stops reconnecting (while the daemon drains). */
  stopReconnecting(): void;
  stop(): Promise<void>;
}

/** Every upstream of `upstreams.mqtt`. */
export function createMqttUpstreams(cfg: readonly MqttUpstreamConfig[], ctx: UpstreamContext): MqttUpstreams {
  const upstreams = cfg.map((c, i) => new MqttUpstream(c, `upstreams.mqtt[${i}]`, ctx));
  return {
    upstreams,
    start: async () => {
      // Every file first: a start that fails leaves nothing connecting.
      await Promise.all(upstreams.map((u) => u.load()));
      for (const u of upstreams) u.dial();
    },
    stopReconnecting: () => upstreams.forEach((u) => u.stopReconnecting()),
    stop: async () => {
      await Promise.all(upstreams.map((u) => u.stop()));
    },
  };
}
