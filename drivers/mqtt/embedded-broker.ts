/**
 * The embedded MQTT broker (aedes) as a source driver, so a gateway needs no
 * separate Mosquitto. A publish becomes a record inside aedes's
 * `authorizePublish`, which runs before aedes writes the PUBACK (aedes 1.2
 * writes a QoS 1 PUBACK *before* it hands the message on, so a subscriber
 * would be too late): the PUBACK leaves only once the pipeline took the
 * record and `ctx.kept()` said it is kept (client-intake.ts). It listens
 * only from `start` (app.ts starts drivers once the pipeline is ready) until
 * `stop` (intake closed): nothing is PUBACKed outside that window.
 *
 * Every connection passes a GuardedSocket first: a PUBLISH announcing more
 * than `maxPayloadBytes`, or a topic that is not valid UTF-8 or holds
 * U+0000, closes the connection before aedes buffers or decodes it.
 *
 * Publishes matching no subscription are forwarded to the broker's own
 * subscribers only, counted as `unrouted`.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import { EMBEDDED_BROKER_NAME, type EmbeddedBrokerConfig } from '../../config/schema.js';
import { tokenMatches } from '../../daemon/consumers/tokens.js';
import { SpillwayError } from '../../daemon/errors.js';
import type { Driver, DriverContext, SourceHealth } from '../driver.js';
import { LogBudget } from '../serial/log-budget.js';
import { ClientIntake, type IntakeHooks, type RefuseReason } from './client-intake.js';
import { GuardedSocket } from './guarded-socket.js';
import type { ScanRefusal } from './packet-scanner.js';
import { decodedTopicProblem, TopicRouter } from './router.js';

/** How long a `block` stream may hold a client that set no keepalive. */
const DEFAULT_MAX_BLOCK_MS = 5_000;

export class EmbeddedBroker implements Driver {
  readonly name = EMBEDDED_BROKER_NAME;
  readonly #cfg: EmbeddedBrokerConfig;
  readonly #router: TopicRouter;
  #ctx: DriverContext | undefined;
  #broker: Aedes | undefined;
  #server: Server | undefined;
  #url: string | undefined;
  /** True from `start` until `stop`: the only time a publish is taken. */
  #open = false;
  readonly #intakes = new Map<Client, ClientIntake>();
  /** Keepalive (s) each client asked for in its CONNECT. */
  readonly #keepalive = new WeakMap<Client, number>();
  /** Refusals are per connection, and a hostile client reconnects: their lines are rate-limited. */
  readonly #refusalLog = new LogBudget({ perWindow: 10, windowMs: 10_000 });

  constructor(cfg: EmbeddedBrokerConfig) {
    this.#cfg = cfg;
    this.#router = new TopicRouter(cfg.subscriptions);
  }

  /** The broker's URL once it listens. */
  listenUrl(): string | undefined {
    return this.#url;
  }

  async start(ctx: DriverContext): Promise<void> {
    this.#ctx = ctx;
    const { username, password } = this.#cfg;
    const options: AedesOptions = {
      preConnect: (client, packet, done) => {
        this.#keepalive.set(client, packet.keepalive ?? 0);
        done(null, true);
      },
      authorizePublish: (client, packet, done) => this.#onPublish(client, packet, done),
    };
    // aedes's own `authenticate` lets everyone in; replace it only when a login is configured.
    if (username !== undefined) {
      options.authenticate = (_client, user, pass, done) => {
        const ok = user !== undefined && pass !== undefined && tokenMatches(user, [username]) && tokenMatches(pass.toString('utf8'), [password ?? '']);
        if (!ok) ctx.reject('unauthorized');
        done(null, ok);
      };
    }
    const broker = await Aedes.createBroker(options);
    this.#broker = broker;
    broker.on('clientError', (client, err) => ctx.log.debug({ client: client.id, err: err.message }, 'embedded broker client error'));
    const server = createServer((socket) => this.#accept(broker, socket));
    this.#server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(new SpillwayError('LISTEN', `embedded MQTT broker cannot listen on ${this.#cfg.host}:${this.#cfg.port}: ${err.message}`, { cause: err })));
        server.listen(this.#cfg.port, this.#cfg.host, () => resolve());
      });
    } catch (err) {
      this.#server = undefined;
      this.#broker = undefined;
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      throw err;
    }
    const { port } = server.address() as AddressInfo;
    this.#url = `mqtt://${this.#cfg.host}:${port}`;
    this.#open = true;
  }

  /** Room again: every client held by a `block` stream offers its held publish once more. */
  resume(): void {
    for (const intake of this.#intakes.values()) if (intake.blocked) intake.resume();
  }

  async stop(): Promise<void> {
    this.#open = false;
    const intakes = [...this.#intakes.values()];
    for (const intake of intakes) intake.refuse('closed', 'intake closed');
    // What was taken before the close is acknowledged once kept; then the connections go.
    await Promise.all(intakes.map((i) => i.settled()));
    const server = this.#server;
    const broker = this.#broker;
    this.#server = undefined;
    this.#broker = undefined;
    if (server !== undefined) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      if (broker !== undefined) await new Promise<void>((resolve) => broker.close(() => resolve()));
      await closed;
    }
  }

  health(): SourceHealth {
    if (this.#url === undefined) return { name: this.name, up: false, detail: 'not listening' };
    const clients = this.#broker?.connectedClients ?? 0;
    return { name: this.name, up: this.#open, detail: this.#open ? `listening on ${this.#url}, ${clients} clients` : 'stopped' };
  }

  #accept(broker: Aedes, socket: Socket): void {
    const limit = Math.min(this.#cfg.maxPayloadBytes, (this.#ctx as DriverContext).maxPayloadBytes);
    const conn = new GuardedSocket(socket, limit, (refusal) => this.#refusedOnWire(socket, refusal));
    broker.handle(conn);
  }

  #refusedOnWire(socket: Socket, refusal: ScanRefusal): void {
    const ctx = this.#ctx as DriverContext;
    ctx.reject(refusal.reason);
    const budget = this.#refusalLog.take(performance.now());
    if (!budget.log) return;
    ctx.log.warn({ event: 'input_refused', ...refusal, remote: socket.remoteAddress, suppressed: budget.suppressed }, `embedded broker closed a connection: ${describeRefusal(refusal)}`);
  }

  #onPublish(client: Client | null, packet: Parameters<NonNullable<AedesOptions['authorizePublish']>>[1], done: (err?: Error | null) => void): void {
    const ctx = this.#ctx as DriverContext;
    if (!this.#open) return done(new Error('intake closed'));
    const payload = packet.payload as Buffer;
    const topic = packet.topic;
    const isPublish = (packet as { cmd?: string }).cmd === 'publish';
    // The wire guard checked a PUBLISH's topic bytes and size already; a will (sent in CONNECT)
    // reaches here decoded by mqtt-packet, where only the lossy check is possible.
    const problem = isPublish ? undefined : decodedTopicProblem(topic);
    if (problem !== undefined || payload.length > ctx.maxPayloadBytes) {
      ctx.reject(problem === undefined ? 'oversized' : 'bad_topic');
      return done(new Error(problem === undefined ? `payload of ${payload.length} bytes exceeds ${ctx.maxPayloadBytes}` : `topic refused: ${problem}`));
    }
    const route = this.#router.route(topic);
    if (route === null) {
      ctx.reject('unrouted');
      return done(null);
    }
    // Copy: the parser's payload may be a view into a much larger socket chunk.
    const copy = Buffer.from(payload);
    if (client === null || !isPublish) {
      // A will, published by the broker as its client goes: no PUBACK to withhold.
      // A rejection is counted by the daemon.
      if (ctx.ingest(route.stream, copy, route.priority) === 'blocked') ctx.reject('blocked_will');
      return done(null);
    }
    this.#intake(client).offer(route, copy, packet.qos > 0, done);
  }

  #intake(client: Client): ClientIntake {
    const known = this.#intakes.get(client);
    if (known !== undefined) return known;
    const ctx = this.#ctx as DriverContext;
    const keepaliveMs = (this.#keepalive.get(client) ?? 0) * 1_000;
    const maxBlockMs = this.#cfg.maxBlockMs ?? (keepaliveMs > 0 ? keepaliveMs / 2 : DEFAULT_MAX_BLOCK_MS);
    const hooks: IntakeHooks = {
      ingest: (route, payload) => ctx.ingest(route.stream, payload, route.priority),
      kept: () => ctx.kept(),
      refused: (reason, detail) => this.#refused(client, reason, detail),
      lost: (outcome) => {
        if (outcome === 'not_kept') ctx.reject('not_kept'); // a rejection is counted by the daemon
      },
    };
    const intake = new ClientIntake(hooks, maxBlockMs);
    this.#intakes.set(client, intake);
    client.conn.once('close', () => {
      intake.discard();
      this.#intakes.delete(client);
    });
    return intake;
  }

  #refused(client: Client, reason: RefuseReason, detail: string): void {
    const ctx = this.#ctx as DriverContext;
    const fields = { event: 'publisher_refused', client: client.id, reason, detail };
    switch (reason) {
      case 'closed':
        ctx.log.debug(fields, 'embedded broker: intake closed, a client\'s unacknowledged publishes refused (it resends them)');
        return;
      case 'not_kept':
        ctx.reject(reason);
        ctx.log.error(fields, 'embedded broker: publishes could not be kept; their client was disconnected unacknowledged (it resends them)');
        return;
      case 'blocked_too_long': {
        ctx.reject(reason);
        const budget = this.#refusalLog.take(performance.now());
        if (budget.log) ctx.log.warn({ ...fields, suppressed: budget.suppressed }, `embedded broker disconnected a client without acknowledging its publish (${reason}); it resends it when it reconnects`);
        return;
      }
      default: {
        const unknown: never = reason;
        throw new Error(`unknown refusal ${String(unknown)}`);
      }
    }
  }
}

function describeRefusal(r: ScanRefusal): string {
  switch (r.reason) {
    case 'oversized':
      return `a packet announced ${r.announcedBytes} bytes, more than the ${r.limitBytes} allowed (sources.embeddedBroker.maxPayloadBytes)`;
    case 'bad_topic':
      return r.problem === 'nul' ? 'a PUBLISH topic holds U+0000' : 'a PUBLISH topic is not valid UTF-8';
    case 'malformed':
      return `malformed MQTT framing: ${r.problem}`;
    default: {
      const unknown: never = r;
      throw new Error(`unknown refusal ${String(unknown)}`);
    }
  }
}
