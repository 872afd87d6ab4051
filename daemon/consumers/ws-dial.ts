/**
 * Dial mode: the daemon connects out to each configured upstream (edge
 * devices sit behind NAT) and the upstream plays the consumer: it speaks
 * first with `hello`, grants credit and acks, exactly as in listen mode
 * (one `ConsumerSession` per connection).
 *
 *   idle ──connect──> connecting ──open──> session (awaiting hello → open)
 *     ▲                   │                    │
 *     └── backoff delay ──┴── error / close ───┘
 *
 * Every connection that fails or drops is retried after a capped, jittered
 * exponential delay; the delay starts over once an upstream was welcomed.
 * Whatever a dropped connection held in flight is taken back by the engine
 * (the session detaches) and redelivered, with `attempt` + 1, to whichever
 * consumer has credit first: the same upstream once it is back, or another.
 */
import type { ClientOptions } from 'ws';
import { SUBPROTOCOL } from './protocol.js';
import { ConsumerSession, type SessionContext, type SessionOptions } from './session.js';
import { SpillwaySocket } from './spillway-socket.js';
import { readClientTls, type ClientTlsMaterial } from './tls-files.js';
import type { DialConfig } from './config.js';
import { backoffDelay } from '../backoff.js';
import { shownUrl, type UplinkState } from '../observability/uplink.js';

/** The `consumers` settings a dialled session shares with listen mode. */
export interface WsDialConfig {
  readonly dial: readonly DialConfig[];
  readonly maxFrameBytes: number;
  readonly maxCredit: number;
  readonly ackTimeoutMs: number;
  readonly maxBatchRecords: number;
  readonly maxBufferedBytes: number;
  readonly stuckTimeoutMs: number;
}

/** How long `stop` waits for a close handshake before dropping the socket. */
const CLOSE_WAIT_MS = 1_000;

export class WsDialer {
  readonly name: string;
  readonly #cfg: DialConfig;
  readonly #key: string;
  readonly #session: SessionOptions;
  readonly #ctx: SessionContext;
  #tls: ClientTlsMaterial = {};
  #ws: SpillwaySocket | undefined;
  #current: ConsumerSession | undefined;
  #retry: NodeJS.Timeout | undefined;
  #ping: NodeJS.Timeout | undefined;
  /** Failed or lost connections since the upstream was last welcomed. */
  #failures = 0;
  /** Failed or lost connections since start, and the wall-clock ms of the last ack. */
  #reconnects = 0;
  #lastAckAt: number | null = null;
  #dialing = false;

  /** `key` names the entry in logs and errors, e.g. `consumers.dial[0]`. */
  constructor(cfg: DialConfig, key: string, shared: Omit<WsDialConfig, 'dial'>, ctx: SessionContext) {
    this.#cfg = cfg;
    this.#key = key;
    this.name = cfg.name ?? new URL(cfg.url).host;
    // Read through getters: a config reload (credit, ack timeout, batch size) reaches the next connection.
    this.#session = {
      // The daemon chose whom to dial (and wss with tls.ca authenticates it): hello.token is not checked here.
      tokens: [],
      helloTimeoutMs: cfg.helloTimeoutMs,
      get maxFrameBytes() {
        return shared.maxFrameBytes;
      },
      get maxCredit() {
        return shared.maxCredit;
      },
      get ackTimeoutMs() {
        return shared.ackTimeoutMs;
      },
      get maxBatchRecords() {
        return shared.maxBatchRecords;
      },
      get maxBufferedBytes() {
        return shared.maxBufferedBytes;
      },
      get stuckTimeoutMs() {
        return shared.stuckTimeoutMs;
      },
    };
    this.#ctx = { ...ctx, log: ctx.log.child({ upstream: this.name }) };
  }

  /** Failed or lost connections since the upstream was last welcomed. */
  get failures(): number {
    return this.#failures;
  }

  /** True while an upstream is connected and welcomed. */
  get connected(): boolean {
    return this.#current?.open === true;
  }

  /** The shape of a source's health, for /healthz or the status page. */
  health(): { readonly name: string; readonly up: boolean; readonly detail: string } {
    if (this.connected) return { name: this.name, up: true, detail: 'connected' };
    return { name: this.name, up: false, detail: this.#ws === undefined ? `reconnecting (${this.#failures} failed attempts)` : 'connecting' };
  }

  /** Connected, last ack, window in use and reconnects, for /healthz, /status and the page. */
  uplink(): UplinkState {
    const id = this.#current?.consumerId ?? 0;
    let inflight = 0;
    if (id !== 0) {
      for (const c of this.#ctx.engine.pipeline.consumers()) if (c.id === id) inflight = c.inflight;
    }
    const { up, detail } = this.health();
    return { name: this.name, kind: 'dial', group: this.#cfg.group, url: shownUrl(this.#cfg.url), connected: up, lastAckAt: this.#lastAckAt, inflight, window: this.#session.maxCredit, reconnects: this.#reconnects, detail };
  }

  /** Reads the TLS files (failing the start if one cannot be read), then dials; does not wait for the upstream. */
  async start(): Promise<void> {
    await this.load();
    this.dial();
  }

  /** Reads the TLS files; throws naming the key of a file that cannot be read. */
  async load(): Promise<void> {
    const cfg = this.#cfg;
    this.#tls = await readClientTls(cfg.tls, `${this.#key}.tls`);
    const url = new URL(cfg.url);
    if (cfg.token !== undefined && url.protocol === 'ws:' && !isLoopback(url.hostname)) {
      this.#ctx.log.warn({ event: 'upstream_token_in_clear', url: cfg.url }, `${this.#key}.token is sent without TLS; use a wss:// URL`);
    }
  }

  /** Starts connecting (and reconnecting until `stopReconnecting`). */
  dial(): void {
    if (this.#dialing) return;
    this.#dialing = true;
    this.#connect();
  }

  /** Stops reconnecting; the current connection stays (acks still come back while the daemon drains). */
  stopReconnecting(): void {
    this.#dialing = false;
    clearTimeout(this.#retry);
  }

  /** Stops reconnecting, says `shutting_down` to the upstream and closes; what it held is redelivered later. */
  async stop(): Promise<void> {
    this.stopReconnecting();
    const ws = this.#ws;
    if (ws === undefined || ws.readyState === ws.CLOSED) return;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    if (this.#current !== undefined) this.#current.fail('shutting_down', 'the daemon is stopping');
    else ws.terminate();
    const timer = setTimeout(() => ws.terminate(), CLOSE_WAIT_MS);
    await closed;
    clearTimeout(timer);
  }

  broadcast(text: string, group?: string): number {
    return this.#current?.notify(text, group) === true ? 1 : 0;
  }

  #connect(): void {
    if (!this.#dialing) return;
    const cfg = this.#cfg;
    const options: ClientOptions = {
      headers: cfg.token === undefined ? {} : { authorization: `Bearer ${cfg.token}` },
      maxPayload: this.#session.maxFrameBytes,
      perMessageDeflate: false,
      followRedirects: false,
      handshakeTimeout: cfg.handshakeTimeoutMs,
      ...this.#tls,
    };
    const ws = new SpillwaySocket(cfg.url, [SUBPROTOCOL], options);
    this.#ws = ws;
    let lastError = '';
    ws.on('error', (err) => (lastError = err.message));
    ws.once('open', () => {
      this.#current = new ConsumerSession(ws, cfg.url, this.#session, this.#ctx, {
        onWelcome: () => (this.#failures = 0),
        onAck: () => (this.#lastAckAt = Date.now()),
        group: cfg.group,
      });
      this.#startPing(ws);
      // The session logs `consumer_connected` once the upstream says hello.
      this.#ctx.log.debug({ event: 'upstream_open', url: cfg.url, failures: this.#failures }, 'connected to upstream; waiting for its hello');
    });
    ws.once('close', (code) => {
      clearInterval(this.#ping);
      const session = this.#current;
      this.#current = undefined;
      this.#ws = undefined;
      const delay = backoffDelay(this.#failures, cfg.reconnect, Math.random());
      this.#failures++;
      if (this.#dialing) this.#reconnects++;
      this.#report(session !== undefined, code, lastError, delay);
      if (!this.#dialing) return;
      this.#retry = setTimeout(() => this.#connect(), delay);
    });
  }

  /** One line when an upstream goes or stays away; repeats of a failure streak go to debug. */
  #report(wasOpen: boolean, code: number, error: string, retryMs: number): void {
    if (!this.#dialing) return;
    const fields = { event: wasOpen ? 'upstream_disconnected' : 'upstream_unreachable', url: this.#cfg.url, code, err: error || undefined, failures: this.#failures, retryMs };
    if (this.#failures > 1) return this.#ctx.log.debug(fields, 'upstream still unreachable');
    // 401/403: the upstream refused our token or certificate; an operator must act.
    if (/\b40[13]\b/.test(error)) return this.#ctx.log.error(fields, 'upstream refused the connection (token or certificate); retrying');
    this.#ctx.log.warn(fields, wasOpen ? 'upstream connection lost; records in flight will be redelivered' : 'cannot connect to upstream; retrying');
  }

  /** A ping each interval; a connection that did not answer the previous one is dropped. */
  #startPing(ws: SpillwaySocket): void {
    if (this.#cfg.pingIntervalMs === 0) return;
    let alive = true;
    ws.on('pong', () => (alive = true));
    this.#ping = setInterval(() => {
      if (!alive) {
        this.#ctx.log.debug({ url: this.#cfg.url }, 'no pong from upstream: dropping the connection');
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    }, this.#cfg.pingIntervalMs);
    this.#ping.unref();
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host.startsWith('127.');
}

export interface WsDial {
  readonly dialers: readonly WsDialer[];
  start(): Promise<void>;
  /** Stops reconnecting (while the daemon drains). */
  stopReconnecting(): void;
  stop(): Promise<void>;
  broadcast(text: string, group?: string): number;
}

/** Every upstream of `consumers.dial`. */
export function createWsDial(cfg: WsDialConfig, ctx: SessionContext): WsDial {
  // `cfg` is passed whole, not spread: its session settings may be getters (config reload).
  const dialers = cfg.dial.map((d, i) => new WsDialer(d, `consumers.dial[${i}]`, cfg, ctx));
  return {
    dialers,
    start: async () => {
      // Every file first: a start that fails leaves nothing dialling.
      await Promise.all(dialers.map((d) => d.load()));
      for (const d of dialers) d.dial();
    },
    stopReconnecting: () => dialers.forEach((d) => d.stopReconnecting()),
    stop: async () => {
      await Promise.all(dialers.map((d) => d.stop()));
    },
    broadcast: (text, group) => dialers.reduce((n, d) => n + d.broadcast(text, group), 0),
  };
}
