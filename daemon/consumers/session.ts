/**
 * One consumer connection, in either mode: the protocol's state machine
 * between a WebSocket and the engine. In listen mode the socket was accepted
 * (ws-listen.ts); in dial mode the daemon opened it (ws-dial.ts) and the
 * upstream plays the consumer. Either way the consumer speaks first, and the
 * hello timer starts when the session is made, once the socket is open.
 *
 *   awaiting_hello ──hello (valid, authorised)──> open ──close──> closed
 *        │                                          │
 *        └── anything else, or no hello in time ────┴── error + close
 *
 * Whatever the consumer held when it goes is taken back by the engine and
 * redelivered (docs/PROTOCOL.md, guarantee 6).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import type { Rec } from '../core/record.js';
import type { ConsumerSink, Engine } from '../engine.js';
import type { ShellCounters } from '../observability/counters.js';
import { encodeError, encodeRecords, encodeWelcome, parseClientMessage, PROTOCOL_VERSION, type ErrorCode } from './protocol.js';
import { tokenMatches } from './tokens.js';

export interface SessionOptions {
  readonly tokens: readonly string[];
  readonly helloTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly maxCredit: number;
  readonly ackTimeoutMs: number;
  readonly maxBatchRecords: number;
}

export interface SessionContext {
  readonly engine: Engine;
  readonly log: Logger;
  readonly counters: ShellCounters;
}

/** What the owner of a session wants to hear about (dial mode resets its backoff on a welcome). */
export interface SessionHooks {
  readonly onWelcome?: () => void;
  /** An `ack` arrived (dial mode shows when its upstream last acked). */
  readonly onAck?: () => void;
}

type State = 'awaiting_hello' | 'open' | 'closed';

/** Close codes: 1008 policy violation for protocol errors, 1001 going away at shutdown. */
const CLOSE_POLICY = 1008;
const CLOSE_GOING_AWAY = 1001;

export class ConsumerSession implements ConsumerSink {
  readonly #ws: WebSocket;
  readonly #opts: SessionOptions;
  readonly #ctx: SessionContext;
  readonly #remote: string;
  readonly #hooks: SessionHooks;
  #state: State = 'awaiting_hello';
  #welcomed = false;
  #id = 0;
  #name = '';
  #helloTimer: NodeJS.Timeout | undefined;

  constructor(ws: WebSocket, remote: string, opts: SessionOptions, ctx: SessionContext, hooks: SessionHooks = {}) {
    this.#ws = ws;
    this.#hooks = hooks;
    this.#remote = remote;
    this.#opts = opts;
    this.#ctx = ctx;
    this.#helloTimer = setTimeout(() => this.fail('protocol', `no hello within ${opts.helloTimeoutMs} ms`), opts.helloTimeoutMs);
    ws.on('message', (data, isBinary) => this.#onFrame(data, isBinary));
    ws.on('close', () => this.#closed());
    ws.on('error', (err) => this.#ctx.log.debug({ remote, err: err.message }, 'consumer socket error'));
  }

  get open(): boolean {
    return this.#state === 'open';
  }

  /** The engine's consumer id while open, else 0. */
  get consumerId(): number {
    return this.#state === 'open' ? this.#id : 0;
  }

  /** True once a hello was accepted, and still after the close (dial mode resets its backoff on it). */
  get welcomed(): boolean {
    return this.#welcomed;
  }

  /**
   * Sends a daemon message that is not a delivery (a `loss` notice) if the
   * consumer said a valid hello: a connection that has not sees nothing.
   * Returns whether it was sent.
   */
  notify(text: string): boolean {
    if (this.#state !== 'open' || this.#ws.readyState !== this.#ws.OPEN) return false;
    this.#ws.send(text);
    return true;
  }

  deliver(records: readonly Rec[]): void {
    const step = this.#opts.maxBatchRecords;
    for (let i = 0; i < records.length; i += step) {
      this.#ws.send(encodeRecords(records, i, Math.min(records.length, i + step)));
    }
  }

  /** Sends `error` and closes; what the consumer held is redelivered. */
  fail(code: ErrorCode, message: string): void {
    if (this.#state === 'closed') return;
    this.#ctx.counters.consumerErrors.inc([code]);
    const level = code === 'shutting_down' ? 'info' : 'warn';
    this.#ctx.log[level]({ event: 'consumer_error', consumer: this.#name || undefined, remote: this.#remote, code, reason: message }, 'closing consumer connection');
    if (this.#ws.readyState === this.#ws.OPEN) {
      this.#ws.send(encodeError(code, message));
      this.#ws.close(code === 'shutting_down' ? CLOSE_GOING_AWAY : CLOSE_POLICY, code);
    }
    this.#closed();
  }

  #onFrame(data: RawData, isBinary: boolean): void {
    if (this.#state === 'closed') return;
    if (isBinary) return this.fail('bad_message', 'binary frames are not allowed; send JSON text');
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (buf.length > this.#opts.maxFrameBytes) return this.fail('bad_message', `frame of ${buf.length} bytes exceeds ${this.#opts.maxFrameBytes}`);
    const parsed = parseClientMessage(buf.toString('utf8'));
    if (!parsed.ok) return this.fail(parsed.code, parsed.message);
    const msg = parsed.msg;
    if (msg.type === 'hello') return this.#hello(msg.v, msg.consumer, msg.token);
    if (this.#state !== 'open') return this.fail('protocol', `${msg.type} before hello`);
    const engine = this.#ctx.engine;
    switch (msg.type) {
      case 'credit':
        engine.credit(this.#id, msg.n);
        break;
      case 'ack':
        engine.ack(this.#id, msg.seqs);
        this.#hooks.onAck?.();
        break;
      case 'nack':
        engine.nack(this.#id, msg.seqs);
        break;
      default: {
        const never: never = msg;
        throw new Error(`unhandled message ${JSON.stringify(never)}`);
      }
    }
  }

  #hello(v: number, consumer: string, token: string | undefined): void {
    if (this.#state !== 'awaiting_hello') return this.fail('protocol', 'hello sent twice');
    if (v !== PROTOCOL_VERSION) return this.fail('protocol', `protocol version ${v} is not supported (this daemon speaks ${PROTOCOL_VERSION})`);
    if (this.#opts.tokens.length > 0 && (token === undefined || !tokenMatches(token, this.#opts.tokens))) {
      return this.fail('unauthorized', 'missing or unknown token');
    }
    clearTimeout(this.#helloTimer);
    this.#name = consumer;
    this.#state = 'open';
    this.#welcomed = true;
    this.#id = this.#ctx.engine.attach(consumer, this);
    this.#ws.send(encodeWelcome(randomUUID(), this.#opts.maxCredit, this.#opts.ackTimeoutMs));
    this.#ctx.log.info({ event: 'consumer_connected', consumer, remote: this.#remote }, 'consumer connected');
    this.#hooks.onWelcome?.();
  }

  #closed(): void {
    clearTimeout(this.#helloTimer);
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    if (wasOpen) {
      this.#ctx.engine.detach(this.#id);
      this.#ctx.log.info({ event: 'consumer_disconnected', consumer: this.#name, remote: this.#remote }, 'consumer disconnected');
    }
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(CLOSE_GOING_AWAY);
  }
}
