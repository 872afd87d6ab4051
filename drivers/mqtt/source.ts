/**
 * An MQTT source: subscribes through mqtt.js and turns each message into a
 * record of the stream its subscription names.
 *
 * Messages are taken in mqtt.js's `handleMessage` hook, which runs before
 * the client sends a QoS 1 PUBACK: the PUBACK leaves only after the record
 * was offered to the pipeline (accepted, or dropped and counted).
 */
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import type { StreamSpec } from '../../daemon/core/stream.js';
import type { MqttSourceConfig, SubscriptionConfig } from '../../config/schema.js';
import type { Driver, DriverContext, SourceHealth } from '../driver.js';
import { streamName, topicMatches } from './topic.js';

interface Route {
  readonly stream: string;
  readonly spec: StreamSpec;
}

/** Topics whose route is remembered; beyond this the cache starts over. */
const ROUTE_CACHE_TOPICS = 4096;
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
  /** A message refused by a `block` stream, its PUBACK withheld until there is room. */
  #held: Held | undefined;

  constructor(cfg: MqttSourceConfig) {
    this.name = cfg.name;
    this.#cfg = cfg;
  }

  async start(ctx: DriverContext): Promise<void> {
    this.#ctx = ctx;
    const cfg = this.#cfg;
    const client = mqtt.connect(cfg.url, {
      clientId: cfg.clientId ?? `spillway-${cfg.name}-${process.pid}`,
      username: cfg.username,
      password: cfg.password,
      keepalive: cfg.keepaliveSeconds,
      reconnectPeriod: cfg.reconnectMs,
      connectTimeout: 10_000,
      clean: true,
      resubscribe: true,
    });
    this.#client = client;
    client.handleMessage = (packet, done) => this.#onMessage(packet, () => done());
    client.on('connect', () => {
      this.#up = true;
      this.#detail = 'connected';
      ctx.log.info({ event: 'source_up', url: cfg.url }, 'MQTT source connected');
    });
    client.on('close', () => {
      if (this.#up) ctx.log.warn({ event: 'source_down', url: cfg.url }, 'MQTT source disconnected; reconnecting');
      this.#up = false;
      this.#detail = 'disconnected';
    });
    client.on('error', (err) => {
      this.#detail = err.message;
      ctx.log.warn({ event: 'source_error', url: cfg.url, err: err.message }, 'MQTT source error');
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
    const outcome = ctx.ingest(route.stream, payload, route.spec);
    if (outcome === 'blocked') {
      // mqtt.js stalls the whole connection (keepalive included) while a PUBACK is withheld:
      // block at most half the keepalive, then let the message go, counted.
      const limitMs = Math.max(1_000, (this.#cfg.keepaliveSeconds * 1_000) / 2);
      this.#held = { route, payload, done, timer: setTimeout(() => this.#giveUp(`no room within ${limitMs} ms`), limitMs) };
      return;
    }
    if (outcome === 'rejected') ctx.reject('too_many_streams');
    done();
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
    return { stream: streamName(sub.stream, topic), spec: (this.#ctx as DriverContext).streamSpec(sub.priority) };
  }
}
