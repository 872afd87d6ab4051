/**
 * A small consumer of the spillway protocol (docs/PROTOCOL.md): connect,
 * hello, credit, ack, nack. Used by the tests, the demo and the benchmarks,
 * and the base of `spillway consume`.
 *
 * Two ways to use it:
 *   - `connect()` once, then `credit` / `ack` / `nack` by hand;
 *   - `run(signal)`: stays connected until `signal` aborts, reconnecting with
 *     capped, jittered exponential backoff when `reconnect` is set, granting
 *     `credit` again after every welcome (credit belongs to a connection).
 *     Pair it with `ackAndCredit(seqs)` to keep at most `credit` records
 *     outstanding.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { backoffDelay, type BackoffConfig } from '../backoff.js';

export const SUBPROTOCOL = 'spillway.v1';

export interface WireRecord {
  readonly seq: number;
  readonly stream: string;
  readonly prio: number;
  readonly ts: number;
  readonly data: string;
  readonly enc: 'utf8' | 'base64';
  readonly attempt: number;
}

export interface Welcome {
  readonly type: 'welcome';
  readonly v: number;
  readonly session: string;
  readonly maxCredit: number;
  readonly ackTimeoutMs: number;
  /** The group joined; absent for a tap. */
  readonly group?: string;
  readonly tap?: boolean;
}

export interface ServerError {
  readonly type: 'error';
  readonly code: string;
  readonly message: string;
}

/** `{"type":"loss",...}`: records of `stream` dropped for `reason`, `count` of them, between `from` and `to` (ms). */
export interface LossNotice {
  readonly type: 'loss';
  readonly stream: string;
  readonly reason: string;
  readonly count: number;
  readonly from: number;
  readonly to: number;
  /** The group whose records these were (a drop of a record several groups held is told to each). */
  readonly group?: string;
}

export interface ConsumerOptions {
  readonly url: string;
  readonly name: string;
  readonly token?: string;
  /** The group to join (hello.group; the daemon's default: `default`). */
  readonly group?: string;
  /** A tap (hello.tap): sees records as first delivered to any group, holds none, acks nothing. */
  readonly tap?: boolean;
  /** Headers for the upgrade request. */
  readonly headers?: Record<string, string>;
  /** For wss://: the CA to trust (default: the system CAs), and a client certificate for mutual TLS. */
  readonly tls?: { readonly ca?: Buffer | string; readonly cert?: Buffer | string; readonly key?: Buffer | string };
  /** `run` only: credit granted after every welcome. */
  readonly credit?: number;
  /** `run` only: reconnect after a lost or failed connection. */
  readonly reconnect?: BackoffConfig;
}

export interface ConsumerEvents {
  /** Every welcome (with `run`, one per connection). */
  welcome: [Welcome];
  records: [WireRecord[]];
  /** An `error` message from the daemon (it closes the connection next). */
  serverError: [ServerError];
  loss: [LossNotice];
  /** A message of a type this client does not know (v1 consumers ignore them). */
  other: [Record<string, unknown>];
  close: [code: number, reason: string];
}

/** How `run` ended when it did not throw. */
export type RunEnd = { readonly reason: 'aborted' } | { readonly reason: 'closed'; readonly code: number; readonly serverError?: ServerError };

/** Error codes that another attempt would only repeat: `run` gives up on them. */
const FATAL_CODES: ReadonlySet<string> = new Set(['unauthorized', 'bad_message', 'protocol']);
/** How long `close` waits for the close handshake before dropping the socket. */
const CLOSE_WAIT_MS = 2_000;

export class SpillwayConsumer extends EventEmitter<ConsumerEvents> {
  readonly #opts: ConsumerOptions;
  #ws: WebSocket | undefined;
  #closed: Promise<number> = Promise.resolve(1006);

  constructor(opts: ConsumerOptions) {
    super();
    this.#opts = opts;
  }

  /** Opens the connection, says hello and resolves with the welcome. */
  connect(signal?: AbortSignal): Promise<Welcome> {
    const ws = new WebSocket(this.#opts.url, SUBPROTOCOL, { headers: this.#opts.headers, perMessageDeflate: false, ...this.#opts.tls });
    this.#ws = ws;
    this.#closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    return new Promise<Welcome>((resolve, reject) => {
      let welcomed = false;
      const onAbort = () => ws.terminate();
      signal?.addEventListener('abort', onAbort, { once: true });
      ws.on('open', () =>
        this.#send({ type: 'hello', v: 1, consumer: this.#opts.name, token: this.#opts.token, ...(this.#opts.tap === true ? { tap: true } : {}), ...(this.#opts.group === undefined ? {} : { group: this.#opts.group }) }),
      );
      ws.on('message', (data) => {
        let msg: { type?: unknown } & Record<string, unknown>;
        try {
          msg = JSON.parse(data.toString()) as typeof msg;
        } catch {
          this.emit('other', { type: undefined, raw: data.toString().slice(0, 200) });
          return;
        }
        switch (msg.type) {
          case 'welcome':
            welcomed = true;
            resolve(msg as unknown as Welcome);
            this.emit('welcome', msg as unknown as Welcome);
            break;
          case 'records':
            this.emit('records', msg['records'] as WireRecord[]);
            break;
          case 'error':
            this.emit('serverError', msg as unknown as ServerError);
            if (!welcomed) reject(Object.assign(new Error(`${String(msg['code'])}: ${String(msg['message'])}`), { code: msg['code'] }));
            break;
          case 'loss':
            this.emit('loss', msg as unknown as LossNotice);
            break;
          default:
            this.emit('other', msg);
        }
      });
      ws.on('error', (err) => {
        if (!welcomed) reject(err);
      });
      ws.on('close', (code, reason) => {
        signal?.removeEventListener('abort', onAbort);
        if (!welcomed) reject(new Error(`closed before welcome (${code})`));
        this.emit('close', code, reason.toString());
      });
    });
  }

  /**
   * Stays connected until `signal` aborts (then closes cleanly and resolves
   * `aborted`). Without `reconnect` it resolves `closed` when the connection
   * ends, or rejects when it cannot connect. With `reconnect` it connects
   * again after a backoff, and rejects only on `unauthorized`, `bad_message`
   * or `protocol`, which another attempt would repeat.
   */
  async run(signal?: AbortSignal): Promise<RunEnd> {
    const onAbort = () => void this.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    const last: { error?: ServerError } = {};
    const onServerError = (e: ServerError) => (last.error = e);
    this.on('serverError', onServerError);
    const fatal = () => (last.error !== undefined && FATAL_CODES.has(last.error.code) ? last.error : undefined);
    try {
      for (let failures = 0; ; failures++) {
        if (signal?.aborted) return { reason: 'aborted' };
        delete last.error;
        try {
          await this.connect();
          failures = 0;
          if (this.#opts.credit !== undefined) this.credit(this.#opts.credit);
          const code = await this.#closed;
          if (signal?.aborted) return { reason: 'aborted' };
          const f = fatal();
          if (f !== undefined) throw Object.assign(new Error(`${f.code}: ${f.message}`), { code: f.code });
          if (this.#opts.reconnect === undefined) return last.error === undefined ? { reason: 'closed', code } : { reason: 'closed', code, serverError: last.error };
        } catch (err) {
          if (signal?.aborted) return { reason: 'aborted' };
          if (this.#opts.reconnect === undefined || fatal() !== undefined) throw err;
        }
        try {
          await sleep(backoffDelay(failures, this.#opts.reconnect, Math.random()), undefined, { signal });
        } catch {
          return { reason: 'aborted' };
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.off('serverError', onServerError);
    }
  }

  get connected(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  credit(n: number): void {
    this.#send({ type: 'credit', n });
  }

  ack(seqs: readonly number[]): void {
    if (seqs.length > 0) this.#send({ type: 'ack', seqs });
  }

  /** Acks these records and grants as much credit again: with `credit` N granted at the welcome, at most N are ever outstanding. */
  ackAndCredit(seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    this.ack(seqs);
    this.credit(seqs.length);
  }

  nack(seqs: readonly number[]): void {
    if (seqs.length > 0) this.#send({ type: 'nack', seqs });
  }

  /** Sends any text frame (tests use it to misbehave). */
  sendRaw(data: string | Buffer, binary = false): void {
    this.#ws?.send(data, { binary });
  }

  /** Closes cleanly (records not yet acked are redelivered by the daemon); drops the socket if the daemon does not answer. */
  close(): Promise<void> {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => ws.terminate(), CLOSE_WAIT_MS);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000);
    });
  }

  /** Drops the connection without a close handshake. */
  terminate(): void {
    this.#ws?.terminate();
  }

  #send(msg: object): void {
    const ws = this.#ws;
    if (ws !== undefined && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }
}

/** The payload bytes of a record. */
export function recordBytes(r: WireRecord): Buffer {
  return Buffer.from(r.data, r.enc === 'base64' ? 'base64' : 'utf8');
}
