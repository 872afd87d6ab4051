/**
 * A small consumer of the spillway protocol (spec/PROTOCOL.md): connect,
 * hello, credit, ack, nack. Used by the tests, the demo and the benchmarks,
 * and the base of `spillway consume`.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';

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
}

export interface ServerError {
  readonly type: 'error';
  readonly code: string;
  readonly message: string;
}

export interface ConsumerOptions {
  readonly url: string;
  readonly name: string;
  readonly token?: string;
  /** Headers for the upgrade request. */
  readonly headers?: Record<string, string>;
}

export interface ConsumerEvents {
  records: [WireRecord[]];
  /** An `error` message from the daemon (it closes the connection next). */
  serverError: [ServerError];
  /** A message of a type this client does not know (v1 consumers ignore them). */
  other: [Record<string, unknown>];
  close: [code: number, reason: string];
}

export class SpillwayConsumer extends EventEmitter<ConsumerEvents> {
  readonly #opts: ConsumerOptions;
  #ws: WebSocket | undefined;

  constructor(opts: ConsumerOptions) {
    super();
    this.#opts = opts;
  }

  /** Opens the connection, says hello and resolves with the welcome. */
  connect(signal?: AbortSignal): Promise<Welcome> {
    const ws = new WebSocket(this.#opts.url, SUBPROTOCOL, { headers: this.#opts.headers });
    this.#ws = ws;
    return new Promise<Welcome>((resolve, reject) => {
      let welcomed = false;
      const onAbort = () => ws.terminate();
      signal?.addEventListener('abort', onAbort, { once: true });
      ws.on('open', () => this.#send({ type: 'hello', v: 1, consumer: this.#opts.name, token: this.#opts.token }));
      ws.on('message', (data) => {
        const msg = JSON.parse(data.toString()) as { type: string } & Record<string, unknown>;
        switch (msg.type) {
          case 'welcome':
            welcomed = true;
            resolve(msg as unknown as Welcome);
            break;
          case 'records':
            this.emit('records', msg['records'] as WireRecord[]);
            break;
          case 'error':
            this.emit('serverError', msg as unknown as ServerError);
            if (!welcomed) reject(Object.assign(new Error(`${String(msg['code'])}: ${String(msg['message'])}`), { code: msg['code'] }));
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

  get connected(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  credit(n: number): void {
    this.#send({ type: 'credit', n });
  }

  ack(seqs: readonly number[]): void {
    if (seqs.length > 0) this.#send({ type: 'ack', seqs });
  }

  nack(seqs: readonly number[]): void {
    if (seqs.length > 0) this.#send({ type: 'nack', seqs });
  }

  /** Sends any text frame (tests use it to misbehave). */
  sendRaw(data: string | Buffer, binary = false): void {
    this.#ws?.send(data, { binary });
  }

  close(): Promise<void> {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000);
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
