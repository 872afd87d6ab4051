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
 *
 * A consumer that stops reading cannot make the daemon queue without bound:
 * deliveries go through its `SendBuffer` (send-buffer.ts), which tells the
 * engine when the consumer cannot take more (`setWritable`), and a consumer
 * that reads nothing for `stuckTimeoutMs` while its buffer is full is closed
 * with `protocol`.
 *
 * A closed session is closed at once for its owner (`onClosed`: the listener
 * frees the consumer slot, the engine takes the records back) and its socket
 * is terminated after CLOSE_GRACE_MS if the peer does not answer the close
 * (ws would otherwise wait 30 s for the close handshake).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import type { Rec } from '../core/record.js';
import type { ConsumerSink, Engine } from '../engine.js';
import type { ShellCounters } from '../observability/counters.js';
import { SendBuffer } from './send-buffer.js';
import { DEFAULT_GROUP } from '../../config/groups.js';
import { encodeError, encodeWelcome, parseClientMessage, PROTOCOL_VERSION, type ClientMessage, type ErrorCode } from './protocol.js';
import { tokenMatches } from './tokens.js';

export interface SessionOptions {
  readonly tokens: readonly string[];
  readonly helloTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly maxCredit: number;
  readonly ackTimeoutMs: number;
  readonly maxBatchRecords: number;
  /** A consumer is sent nothing while its socket holds more than this (read on every send). */
  readonly maxBufferedBytes: number;
  /** A consumer above maxBufferedBytes that reads nothing for this long is closed. */
  readonly stuckTimeoutMs: number;
}

export interface SessionContext {
  readonly engine: Engine;
  readonly log: Logger;
  readonly counters: ShellCounters;
}

/** What the owner of a session wants to hear about (dial mode resets its backoff on a welcome). */
export interface SessionHooks {
  readonly onWelcome?: () => void;
  /** Called once, as soon as the session is closed (error sent, or the socket closed), not after the close handshake. */
  readonly onClosed?: () => void;
  /** Dial mode: the group of the entry, whatever the hello says. */
  readonly group?: string;
  /** An `ack` arrived (dial mode shows when its upstream last acked). */
  readonly onAck?: () => void;
}

type State = 'awaiting_hello' | 'open' | 'closed';

/** Close codes: 1008 policy violation for protocol errors, 1001 going away at shutdown. */
const CLOSE_POLICY = 1008;
const CLOSE_GOING_AWAY = 1001;
/** How long a closed session's socket may take to answer the close before it is terminated. */
export const CLOSE_GRACE_MS = 1_000;

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
  #tap = false;
  #group = DEFAULT_GROUP;
  #terminateTimer: NodeJS.Timeout | undefined;
  readonly #sendBuffer: SendBuffer;

  constructor(ws: WebSocket, remote: string, opts: SessionOptions, ctx: SessionContext, hooks: SessionHooks = {}) {
    this.#ws = ws;
    this.#hooks = hooks;
    this.#remote = remote;
    this.#opts = opts;
    this.#ctx = ctx;
    this.#helloTimer = setTimeout(() => this.fail('protocol', `no hello within ${opts.helloTimeoutMs} ms`), opts.helloTimeoutMs);
    this.#sendBuffer = new SendBuffer(ws, opts, {
      writable: (writable) => this.#ctx.engine.setWritable(this.#id, writable),
      stuck: () => this.#stuck(),
      // A tap holds nothing: what it was sent is its own to see, never taken back.
      holds: (rec, attempt) => this.#tap || heldBy(rec, attempt, this.#id),
      now: () => performance.now(),
    });
    ws.on('message', (data, isBinary) => this.#onFrame(data, isBinary));
    ws.on('close', () => {
      clearTimeout(this.#terminateTimer);
      this.#closed();
    });
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
   * Returns whether it was sent. With `group`, only that group's consumers
   * (and taps, which see every stream) get it.
   */
  notify(text: string, group?: string): boolean {
    if (this.#state !== 'open' || this.#ws.readyState !== this.#ws.OPEN) return false;
    if (group !== undefined && !this.#tap && group !== this.#group) return false;
    this.#ws.send(text);
    return true;
  }

  deliver(records: readonly Rec[]): void {
    if (this.#state === 'open') this.#sendBuffer.push(records);
  }

  /** Sends `error` and closes; what the consumer held is redelivered. */
  /** The engine already forgot this consumer (its group was removed): tell it and close. */
  groupRemoved(group: string): void {
    this.#id = 0;
    this.fail('unknown_group', `group ${JSON.stringify(group).slice(0, 140)} was removed by a config reload`);
  }

  fail(code: ErrorCode, message: string): void {
    if (this.#state === 'closed') return;
    this.#ctx.counters.consumerErrors.inc([code]);
    const level = code === 'shutting_down' ? 'info' : 'warn';
    this.#ctx.log[level]({ event: 'consumer_error', consumer: this.#name || undefined, remote: this.#remote, code, reason: message }, 'closing consumer connection');
    if (this.#ws.readyState === this.#ws.OPEN) {
      this.#ws.send(encodeError(code, message));
      this.#ws.close(code === 'shutting_down' ? CLOSE_GOING_AWAY : CLOSE_POLICY, code);
      const ws = this.#ws;
      this.#terminateTimer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
      this.#terminateTimer.unref();
    }
    this.#closed();
  }

  #stuck(): void {
    const o = this.#opts;
    this.fail('protocol', `the consumer read none of the ${this.#sendBuffer.bufferedBytes} bytes waiting for it (more than consumers.maxBufferedBytes ${o.maxBufferedBytes}) for ${o.stuckTimeoutMs} ms`);
    // It reads nothing, so it will not read the close either.
    this.#ws.terminate();
  }

  #onFrame(data: RawData, isBinary: boolean): void {
    if (this.#state === 'closed') return;
    if (isBinary) return this.fail('bad_message', 'binary frames are not allowed; send JSON text');
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (buf.length > this.#opts.maxFrameBytes) return this.fail('bad_message', `frame of ${buf.length} bytes exceeds ${this.#opts.maxFrameBytes}`);
    const parsed = parseClientMessage(buf.toString('utf8'));
    if (!parsed.ok) return this.fail(parsed.code, parsed.message);
    const msg = parsed.msg;
    if (msg.type === 'hello') return this.#hello(msg);
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

  #hello(hello: Extract<ClientMessage, { type: 'hello' }>): void {
    const { v, consumer, token } = hello;
    if (this.#state !== 'awaiting_hello') return this.fail('protocol', 'hello sent twice');
    if (v !== PROTOCOL_VERSION) return this.fail('protocol', `protocol version ${v} is not supported (this daemon speaks ${PROTOCOL_VERSION})`);
    if (this.#opts.tokens.length > 0 && (token === undefined || !tokenMatches(token, this.#opts.tokens))) {
      return this.fail('unauthorized', 'missing or unknown token');
    }
    // Dial mode: the entry's configured group; listen mode: the hello's (default `default`).
    const group = this.#hooks.group ?? hello.group ?? DEFAULT_GROUP;
    const id = this.#ctx.engine.attach(consumer, this, hello.tap ? { tap: true } : { group });
    this.#tap = hello.tap;
    this.#group = group;
    if (id === undefined) return this.fail('unknown_group', `group ${JSON.stringify(group).slice(0, 140)} is not declared`);
    clearTimeout(this.#helloTimer);
    this.#name = consumer;
    this.#state = 'open';
    this.#welcomed = true;
    this.#id = id;
    this.#ctx.counters.sendBuffers.add(this.#sendBuffer);
    this.#ws.send(encodeWelcome(randomUUID(), this.#opts.maxCredit, this.#opts.ackTimeoutMs, hello.tap ? { tap: true } : { group }));
    this.#ctx.log.info({ event: 'consumer_connected', consumer, remote: this.#remote, ...(hello.tap ? { tap: true } : { group }) }, 'consumer connected');
    this.#hooks.onWelcome?.();
  }

  #closed(): void {
    clearTimeout(this.#helloTimer);
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    this.#sendBuffer.close();
    this.#ctx.counters.sendBuffers.delete(this.#sendBuffer);
    if (wasOpen) {
      this.#ctx.engine.detach(this.#id);
      this.#ctx.log.info({ event: 'consumer_disconnected', consumer: this.#name, remote: this.#remote }, 'consumer disconnected');
    }
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(CLOSE_GOING_AWAY);
    this.#hooks.onClosed?.();
  }
}

/**
 * True while consumer `id` holds the delivery of `rec` it was sent as
 * `attempt` (not taken back by an ack timeout or a nack, not sent again).
 * The one place that reads the core's in-flight fields.
 */
function heldBy(rec: Rec, attempt: number, id: number): boolean {
  return rec.holder !== null && rec.holder.id === id && rec.attempt === attempt;
}
