/**
 * An MQTT source: subscribes through mqtt.js and turns each message into a
 * record of the stream its subscription names.
 *
 * Messages are taken in mqtt.js's `handleMessage` hook, which runs before
 * the client sends a QoS 1 PUBACK: the PUBACK leaves only after the record
 * was offered to the pipeline (accepted, or dropped and counted) and, in
 * durable mode, committed to the spool (the pipeline writes it before
 * `ingest` returns).
 *
 * Reconnects are ours, not mqtt.js's fixed period: capped exponential
 * backoff with jitter, so a fleet of gateways does not hammer a broker that
 * comes back.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { SpillwayError } from '../../daemon/errors.js';
import { backoffDelay } from '../../daemon/backoff.js';
import type { MqttSourceConfig, SubscriptionConfig } from '../../config/schema.js';
import type { Driver, DriverContext, SourceHealth } from '../driver.js';
import { streamName, topicMatches } from './topic.js';

interface Route {
  readonly stream: string;
  /** The subscription's priority, if it sets one. */
  readonly priority: number | undefined;
}

/** Topics whose route is remembered; beyond this the cache starts over. */
const ROUTE_CACHE_TOPICS = 4096;
/** Messages taken in one go before mqtt.js's parser is made to yield a turn of the event loop. */
const YIELD_EVERY = 256;
/** How long `start` waits for the first connection before going on degraded. */
const FIRST_CONNECT_MS = 5_000;

interface Held {
  readonly route: Route;
  readonly payload: Buffer;
  readonly done: () => void;
  readonly timer: NodeJS.Timeout;
}

export class MqttSource implements Driver {
  readonly name: string;
  readonly #cfg: MqttSourceConfig;
  #ctx: DriverContext | undefined;
  #client: MqttClient | undefined;
  readonly #routes = new Map<string, Route | null>();
  #up = false;
  #detail = 'not started';
  /** A source_error was logged at WARN since the last connect. */
  #errorLogged = false;
  /** A message refused by a `block` stream, its PUBACK withheld until there is room. */
  #held: Held | undefined;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;

  constructor(cfg: MqttSourceConfig) {
    this.name = cfg.name;
    this.#cfg = cfg;
  }

  async start(ctx: DriverContext): Promise<void> {
    this.#ctx = ctx;
    const cfg = this.#cfg;
    let options: IClientOptions;
    try {
      options = clientOptions(cfg);
    } catch (err) {
      throw new SpillwayError('SOURCE', `MQTT source ${cfg.name}: cannot read a TLS file: ${(err as Error).message}`, { cause: err });
    }
    const client = mqtt.connect(cfg.url, options);
    this.#client = client;
    // mqtt.js parses the next packet only after `done`: calling it synchronously for a whole
    // socket read (up to thousands of packets) would hold the event loop for seconds under a
    // flood. Every YIELD_EVERY messages, `done` waits a turn, so acks, dispatch and keepalive run.
    let burst = 0;
    client.handleMessage = (packet, done) =>
      this.#onMessage(packet, () => {
        if (++burst < YIELD_EVERY) return done();
        burst = 0;
        setImmediate(done);
      });
    client.on('connect', (connack) => {
      this.#up = true;
      this.#attempt = 0;
      this.#errorLogged = false;
      this.#detail = 'connected';
      ctx.log.info({ event: 'source_up', url: cfg.url, sessionPresent: connack.sessionPresent }, 'MQTT source connected');
    });
    client.on('close', () => {
      if (this.#up) ctx.log.warn({ event: 'source_down', url: cfg.url }, 'MQTT source disconnected; reconnecting');
      this.#up = false;
      if (this.#detail === 'connected') this.#detail = 'disconnected';
      this.#scheduleReconnect();
    });
    client.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      this.#detail = code === undefined ? err.message : `${code}: ${err.message}`;
      const tls = code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO|TLS|SSL|HOSTNAME/i.test(code);
      // One WARN per failure streak (mqtt.js reports each failed attempt, some twice); repeats at debug until connected.
      const level = this.#errorLogged ? 'debug' : 'warn';
      this.#errorLogged = true;
      ctx.log[level](
        { event: 'source_error', url: cfg.url, code, err: err.message },
        tls ? 'MQTT source: the broker\'s TLS certificate was refused (check sources.mqtt[].tls.ca and the host name)' : 'MQTT source error',
      );
    });

    const subscribed = client.subscribeAsync(Object.fromEntries(cfg.subscriptions.map((s) => [s.topic, { qos: s.qos }])));
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, FIRST_CONNECT_MS, 'timeout').unref());
    const first = await Promise.race([subscribed.then(() => 'ok' as const, (err: Error) => err), timeout]);
    if (first !== 'ok') {
      ctx.log.warn(
        { event: 'source_degraded', url: cfg.url, reason: first === 'timeout' ? `no connection within ${FIRST_CONNECT_MS} ms` : first.message },
        'MQTT source not up yet; it keeps retrying',
      );
    }
  }

  /** There may be room again: offer the held message once more. */
  resume(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    clearTimeout(held.timer);
    this.#offer(held.route, held.payload, held.done);
  }

  async stop(): Promise<void> {
    if (this.#held !== undefined) this.#giveUp('stopping');
    clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    if (client === undefined) return;
    this.#client = undefined;
    this.#up = false;
    this.#detail = 'stopped';
    await client.endAsync(false);
  }

  health(): SourceHealth {
    return { name: this.name, up: this.#up, detail: this.#detail };
  }

  #onMessage(packet: IPublishPacket, done: () => void): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return done();
    const payload = packet.payload;
    if (payload.length > ctx.maxPayloadBytes) {
      ctx.reject('oversized');
      ctx.log.debug({ topic: packet.topic, bytes: payload.length }, 'payload above maxPayloadBytes rejected');
      return done();
    }
    const route = this.#route(packet.topic);
    if (route === null) {
      ctx.reject('unrouted');
      return done();
    }
    // Copy: the parser's payload may be a view into a much larger socket chunk.
    this.#offer(route, Buffer.from(payload), done);
  }

  /**
   * Offers a payload; `done` (which lets mqtt.js send the PUBACK and read
   * the next packet) runs once the pipeline took it, or refused it for good.
   * A `block` stream without room holds the message: the PUBACK waits, so
   * the broker stops sending after its in-flight window.
   */
  #offer(route: Route, payload: Buffer, done: () => void): void {
    const ctx = this.#ctx as DriverContext;
    const outcome = ctx.ingest(route.stream, payload, route.priority);
    if (outcome === 'blocked') {
      // mqtt.js stalls the whole connection (keepalive included) while a PUBACK is withheld:
      // block at most maxBlockMs (default half the keepalive), then let the message go, counted.
      const limitMs = this.#cfg.maxBlockMs ?? (this.#cfg.keepaliveSeconds * 1_000) / 2;
      this.#held = { route, payload, done, timer: setTimeout(() => this.#giveUp(`no room within ${limitMs} ms`), limitMs) };
      return;
    }
    if (outcome === 'rejected') ctx.reject('too_many_streams');
    done();
  }

  #scheduleReconnect(): void {
    const client = this.#client;
    if (client === undefined || this.#reconnectTimer !== undefined) return;
    const delay = backoffDelay(this.#attempt++, this.#cfg.reconnect, Math.random());
    this.#detail = `${this.#detail}; retrying in ${delay} ms`;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#client === client && !client.connected) client.reconnect();
    }, delay);
    this.#reconnectTimer.unref();
  }

  #giveUp(why: string): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    clearTimeout(held.timer);
    this.#ctx?.reject('blocked_too_long');
    this.#ctx?.log.error({ event: 'block_gave_up', stream: held.route.stream, reason: why }, 'a blocked message was let go unrecorded (counted in spillway_input_rejected_total)');
    held.done();
  }

  #route(topic: string): Route | null {
    const known = this.#routes.get(topic);
    if (known !== undefined) return known;
    const sub = this.#cfg.subscriptions.find((s) => topicMatches(s.topic, topic));
    const route = sub === undefined ? null : this.#makeRoute(sub, topic);
    if (this.#routes.size >= ROUTE_CACHE_TOPICS) this.#routes.clear();
    this.#routes.set(topic, route);
    return route;
  }

  #makeRoute(sub: SubscriptionConfig, topic: string): Route {
    return { stream: streamName(sub.stream, topic), priority: sub.priority };
  }
}

function clientOptions(cfg: MqttSourceConfig): IClientOptions {
  const read = (path: string | undefined) => (path === undefined ? undefined : readFileSync(path));
  const opts: IClientOptions = {
    clientId: cfg.clientId ?? `spillway-${cfg.name}-${process.pid}`,
    protocolVersion: cfg.protocolVersion,
    username: cfg.username,
    password: cfg.password,
    keepalive: cfg.keepaliveSeconds,
    // Reconnects are scheduled by the source (backoff with jitter).
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    clean: !cfg.persistentSession,
    resubscribe: true,
    // mqtt.js calls its debug logger several times per packet: ~2 % of the hot path.
    log: () => undefined,
  };
  if (cfg.persistentSession && cfg.protocolVersion === 5) opts.properties = { sessionExpiryInterval: cfg.sessionExpirySeconds };
  if (cfg.tls !== undefined) {
    opts.ca = read(cfg.tls.ca);
    opts.cert = read(cfg.tls.cert);
    opts.key = read(cfg.tls.key);
    opts.rejectUnauthorized = true;
  }
  return opts;
}
