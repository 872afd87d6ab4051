/**
 * An MQTT source: subscribes to an external broker through mqtt.js and turns
 * each message into a record of the stream its subscription names.
 *
 * Messages are taken in mqtt.js's `handleMessage` hook, which runs before
 * the client sends a QoS 1 PUBACK: the PUBACK leaves only after the record
 * was offered to the pipeline (accepted, or dropped and counted) and
 * `ctx.kept()` resolved true (durable mode: its commit is done). mqtt.js
 * handles one packet at a time while that callback is pending. When the
 * record cannot be kept, the callback gets an error (mqtt.js then sends no
 * PUBACK and reads on) and the connection is dropped, so a broker holding a
 * persistent session sends the message again. `stop` lets a PUBACK that
 * waits for its commit go out before the connection ends.
 *
 * Every connection the broker kept no session for (CONNACK
 * `sessionPresent: false`: every clean-session connect, and a persistent
 * session the broker lost) subscribes again, and so does the first
 * connection of a run (the config may have changed since the session was
 * made); the source is up only once the broker granted the subscriptions. (mqtt.js's own `resubscribe` only
 * remembers topics when its `reconnectPeriod` is above 0, and ours is 0.)
 *
 * Topics mqtt.js decoded lossily (U+FFFD) or holding U+0000 are refused
 * and counted as `bad_topic`, never made streams (router.ts).
 *
 * Reconnects are ours, not mqtt.js's fixed period: capped exponential
 * backoff with jitter, so a fleet of gateways does not hammer a broker that
 * comes back.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { SpillwayError } from '../../daemon/errors.js';
import { backoffDelay } from '../../daemon/backoff.js';
import type { MqttSourceConfig } from '../../config/schema.js';
import type { Driver, DriverContext, SourceHealth } from '../driver.js';
import { decodedTopicProblem, TopicRouter, type Route } from './router.js';
/** Messages taken in one go before mqtt.js's parser is made to yield a turn of the event loop. */
const YIELD_EVERY = 256;
/** How long `stop` waits for the PUBACKs of messages waiting for their commit (a commit takes ms). */
const STOP_DECIDE_MS = 5_000;
/** How long `start` waits for the first connection before going on degraded. */
const FIRST_CONNECT_MS = 5_000;

interface Held {
  readonly route: Route;
  readonly payload: Buffer;
  readonly done: (err?: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class MqttSource implements Driver {
  readonly name: string;
  readonly #cfg: MqttSourceConfig;
  #ctx: DriverContext | undefined;
  #client: MqttClient | undefined;
  readonly #router: TopicRouter;
  /** Up: connected and subscribed (or the broker resumed a session that is). */
  #up = false;
  #detail = 'not started';
  /** A source_error was logged at WARN since the last connect. */
  #errorLogged = false;
  /** The connection attempt (`#attempt`) whose error was logged last: mqtt.js reports some failed attempts twice. */
  #errorAttempt = -1;
  /** A message refused by a `block` stream, its PUBACK withheld until there is room. */
  #held: Held | undefined;
  #attempt = 0;
  /** The broker granted this process's subscriptions once (a resumed session still has them). */
  #subscribedOnce = false;
  /** Set by `stop`: nothing more is taken or acknowledged. */
  #closed = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  /**
   * Messages mqtt.js handed over whose PUBACK is not decided yet: one at a
   * time as seen here, counted rather than flagged so that one handed over
   * inside the previous one's `done` (mqtt.js parsing the rest of a socket
   * read there, as a review read its code) is waited for too.
   */
  #deciding = 0;
  /** Set by `stop` while messages are being decided: called once none is. */
  #decided: (() => void) | undefined;

  constructor(cfg: MqttSourceConfig) {
    this.name = cfg.name;
    this.#cfg = cfg;
    this.#router = new TopicRouter(cfg.subscriptions);
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
    const handOn = (done: (err?: Error) => void, err: Error | undefined): void => {
      // Counted down first: the next message may be handed over inside done().
      this.#deciding--;
      done(err);
      if (this.#deciding === 0) this.#decided?.();
    };
    client.handleMessage = (packet, done) => {
      this.#deciding++;
      this.#onMessage(packet, (err) => {
        if (err !== undefined || ++burst < YIELD_EVERY) return handOn(done, err);
        burst = 0;
        setImmediate(handOn, done, undefined);
      });
    };
    let firstUp: () => void = () => undefined;
    const up = new Promise<'ok'>((resolve) => (firstUp = () => resolve('ok')));
    client.on('connect', (connack) => {
      this.#attempt = 0;
      this.#errorLogged = false;
      this.#errorAttempt = -1;
      ctx.log.info({ event: 'source_connected', url: cfg.url, sessionPresent: connack.sessionPresent }, 'MQTT source connected');
      // A resumed session keeps what this process subscribed; the first connection subscribes
      // anyway, since the config may list filters the session from an earlier run lacks.
      if (connack.sessionPresent && this.#subscribedOnce) {
        this.#markUp('subscribed (session resumed)', true, firstUp);
        return;
      }
      this.#detail = 'connected, subscribing';
      this.#subscribe(client, () => {
        this.#subscribedOnce = true;
        this.#markUp(connack.sessionPresent ? 'subscribed (session resumed)' : 'subscribed', connack.sessionPresent, firstUp);
      });
    });
    client.on('close', () => {
      if (this.#up) ctx.log.warn({ event: 'source_down', url: cfg.url }, 'MQTT source disconnected; reconnecting');
      this.#up = false;
      if (this.#detail.startsWith('subscribed') || this.#detail.startsWith('connected')) this.#detail = 'disconnected';
      this.#scheduleReconnect();
    });
    client.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      this.#detail = code === undefined ? err.message : `${code}: ${err.message}`;
      const tls = code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO|TLS|SSL|HOSTNAME/i.test(code);
      // One line per failed attempt (mqtt.js reports some twice), and one WARN per failure streak: the repeats at debug until connected.
      if (this.#errorAttempt === this.#attempt) return;
      this.#errorAttempt = this.#attempt;
      const level = this.#errorLogged ? 'debug' : 'warn';
      this.#errorLogged = true;
      ctx.log[level](
        { event: 'source_error', url: cfg.url, attempt: this.#attempt + 1, code, err: err.message },
        tls ? 'MQTT source: the broker\'s TLS certificate was refused (check sources.mqtt[].tls.ca and the host name)' : 'MQTT source error',
      );
    });

    const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, FIRST_CONNECT_MS, 'timeout').unref());
    const first = await Promise.race([up, timeout]);
    if (first !== 'ok') {
      ctx.log.warn({ event: 'source_degraded', url: cfg.url, reason: `not subscribed within ${FIRST_CONNECT_MS} ms: ${this.#detail}` }, 'MQTT source not up yet; it keeps retrying');
    }
  }

  /** Subscribes on a connection the broker has no session for; `onGranted` once every filter is granted. */
  #subscribe(client: MqttClient, onGranted: () => void): void {
    const ctx = this.#ctx as DriverContext;
    const cfg = this.#cfg;
    client.subscribe(Object.fromEntries(cfg.subscriptions.map((s) => [s.topic, { qos: s.qos }])), (err, granted) => {
      if (this.#client !== client) return;
      if (err !== null && err !== undefined) {
        // The connection went before the SUBACK (the next connect subscribes again), or the broker refused.
        this.#detail = `subscribe failed: ${err.message}`;
        ctx.log.warn({ event: 'source_subscribe_failed', url: cfg.url, err: err.message }, 'MQTT source could not subscribe; it subscribes again on the next connection');
        return;
      }
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0) {
        this.#detail = `the broker refused the subscriptions ${refused.join(', ')}`;
        ctx.log.error({ event: 'source_subscribe_refused', url: cfg.url, topics: refused }, 'MQTT source: the broker refused subscriptions (check its ACL); nothing arrives on them');
        return;
      }
      onGranted();
    });
  }

  #markUp(detail: string, sessionPresent: boolean, firstUp: () => void): void {
    this.#up = true;
    this.#detail = detail;
    this.#ctx?.log.info({ event: 'source_up', url: this.#cfg.url, sessionPresent, detail }, `MQTT source ${detail}`);
    firstUp();
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
    this.#closed = true;
    this.#release(new Error('intake closed'));
    clearTimeout(this.#reconnectTimer);
    // A record taken and waiting for its commit is PUBACKed before the connection ends
    // (without it, a persistent session's broker sends it again, a duplicate).
    // Bounded: a commit that never ends (a hung disk) must not hold the stop; the broker then sends it again.
    if (this.#deciding > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#decided = resolve;
        timer = setTimeout(resolve, STOP_DECIDE_MS);
      });
      clearTimeout(timer);
    }
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

  #onMessage(packet: IPublishPacket, done: (err?: Error) => void): void {
    const ctx = this.#ctx;
    // Intake closed: no PUBACK for what is not taken (a persistent session gets it again).
    if (ctx === undefined || this.#closed) return done(new Error('intake closed'));
    const payload = packet.payload;
    if (payload.length > ctx.maxPayloadBytes) {
      ctx.reject('oversized');
      ctx.log.debug({ topic: packet.topic, bytes: payload.length }, 'payload above maxPayloadBytes rejected');
      return done();
    }
    const problem = decodedTopicProblem(packet.topic);
    if (problem !== undefined) {
      ctx.reject('bad_topic');
      ctx.log.debug({ problem }, 'a topic that is not valid UTF-8 or holds U+0000 was refused');
      return done();
    }
    const route = this.#router.route(packet.topic);
    if (route === null) {
      ctx.reject('unrouted');
      return done();
    }
    // Copy: the parser's payload may be a view into a much larger socket chunk.
    this.#offer(route, Buffer.from(payload), done);
  }

  /**
   * Offers a payload; `done` (which lets mqtt.js send the PUBACK and read
   * the next packet) runs once the pipeline took it and it is kept, or
   * refused it for good. A `block` stream without room holds the message:
   * the PUBACK waits, so the broker stops sending after its in-flight window.
   */
  #offer(route: Route, payload: Buffer, done: (err?: Error) => void): void {
    const ctx = this.#ctx as DriverContext;
    const outcome = ctx.ingest(route.stream, payload, route.priority);
    if (outcome === 'blocked') {
      // mqtt.js stalls the whole connection (keepalive included) while a PUBACK is withheld:
      // block at most maxBlockMs (default half the keepalive), then let the message go, counted.
      const limitMs = this.#cfg.maxBlockMs ?? (this.#cfg.keepaliveSeconds * 1_000) / 2;
      this.#held = { route, payload, done, timer: setTimeout(() => this.#giveUp(`no room within ${limitMs} ms`), limitMs) };
      return;
    }
    if (outcome !== 'accepted') return done();
    const client = this.#client;
    ctx.kept().then(
      (ok) => (ok ? done() : this.#notKept(client, done)),
      () => this.#notKept(client, done),
    );
  }

  /** No PUBACK for a record that is not kept; the connection goes so a persistent session's broker sends it again. */
  #notKept(client: MqttClient | undefined, done: (err?: Error) => void): void {
    const ctx = this.#ctx as DriverContext;
    ctx.reject('not_kept');
    ctx.log.error({ event: 'not_kept', url: this.#cfg.url }, 'MQTT source: a record could not be kept; no PUBACK, reconnecting (a persistent session gets it again, a clean one loses it at the broker)');
    done(new Error('not kept'));
    client?.stream.destroy();
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

  /**
   * A `block` stream had no room within maxBlockMs: the message is not
   * PUBACKed, and the connection goes, so the broker holds it (a persistent
   * session sends it again on the reconnect; a clean session loses it at
   * the broker, which is what a clean session means).
   */
  #giveUp(why: string): void {
    const held = this.#held;
    if (held === undefined) return;
    const ctx = this.#ctx as DriverContext;
    ctx.reject('blocked_too_long');
    const fields = { event: 'block_gave_up', stream: held.route.stream, reason: why, persistentSession: this.#cfg.persistentSession };
    if (this.#cfg.persistentSession) ctx.log.warn(fields, 'a blocked message was not acknowledged; reconnecting so the broker sends it again');
    else ctx.log.error(fields, 'a blocked message was not acknowledged; reconnecting (with a clean session the broker does not send it again: use persistentSession or spill)');
    this.#release(new Error(why));
    this.#client?.stream.destroy();
  }

  /** Hands the held message back to mqtt.js unacknowledged. */
  #release(err: Error): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    clearTimeout(held.timer);
    held.done(err);
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
    // Ours, on every connect without a session (mqtt.js's needs reconnectPeriod > 0).
    resubscribe: false,
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
