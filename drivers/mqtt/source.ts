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

export class MqttSource implements Driver {
  readonly name: string;
  readonly #cfg: MqttSourceConfig;
  #ctx: DriverContext | undefined;
  #client: MqttClient | undefined;
  readonly #routes = new Map<string, Route | null>();
  #up = false;
  #detail = 'not started';

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
    client.handleMessage = (packet, done) => {
      this.#onMessage(packet);
      done();
    };
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

  async stop(): Promise<void> {
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

  #onMessage(packet: IPublishPacket): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    const payload = packet.payload;
    if (payload.length > ctx.maxPayloadBytes) {
      ctx.reject('oversized');
      ctx.log.debug({ topic: packet.topic, bytes: payload.length }, 'payload above maxPayloadBytes rejected');
      return;
    }
    const route = this.#route(packet.topic);
    if (route === null) {
      ctx.reject('unrouted');
      return;
    }
    // Copy: the parser's payload may be a view into a much larger socket chunk.
    const copy = Buffer.from(payload);
    if (ctx.ingest(route.stream, copy, route.spec) === 'rejected') ctx.reject('too_many_streams');
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
