/**
 * One consumer connection's send buffer, bounded in bytes: deliveries go
 * into the WebSocket only while `ws.bufferedAmount` (the socket's unwritten
 * bytes and ws's own queue) is below `consumers.maxBufferedBytes`.
 *
 * The engine hands a session a whole dispatch at once (up to its credit, so
 * up to `maxCredit` records). What does not fit waits here as references to
 * the records, which are in flight and already counted by the memory budget;
 * a record is encoded only when there is room for it, and one that the
 * session no longer holds by then (the core took it back: ack timeout, nack)
 * is skipped.
 *
 *   push(records) ──> waiting ──pump while bufferedAmount < bound──> ws.send(frame, flushed)
 *                        ▲                                                  │
 *                        └──────────── flushed: pump again ◄────────────────┘
 *
 *   writable  ⇔  nothing waits here and bufferedAmount < bound
 *
 * Bounds: bufferedAmount <= maxBufferedBytes + one frame, and a frame is cut
 * at `maxBatchRecords` records or FRAME_TARGET_CHARS, so it passes that by at
 * most one record's encoding. Waiting references: at most what the session
 * holds in flight (<= maxCredit) plus those the core took back since the last
 * tick, pruned every tick.
 *
 * Stuck: while not writable, a consumer that lets no frame be flushed to the
 * kernel for `stuckTimeoutMs` fires `stuck` (the session closes it). A slow
 * reader flushes a frame now and then and is not stuck.
 */
import type { WebSocket } from 'ws';
import type { Rec } from '../core/record.js';
import { encodeRecord } from './protocol.js';

export interface SendBufferOptions {
  /** Read on every use (a config reload applies at once). */
  readonly maxBufferedBytes: number;
  readonly maxBatchRecords: number;
  readonly stuckTimeoutMs: number;
}

export interface SendBufferHooks {
  /** Called on each change of writability (starts writable). */
  readonly writable: (writable: boolean) => void;
  /** The consumer read nothing for stuckTimeoutMs while above the bound. */
  readonly stuck: () => void;
  /** True while the session still holds this delivery of `rec` (sent as `attempt`). */
  readonly holds: (rec: Rec, attempt: number) => boolean;
  /** Monotonic ms. */
  readonly now: () => number;
}

/** A frame is cut once its text reaches this many chars (~bytes: most payloads are ASCII). */
export const FRAME_TARGET_CHARS = 64 * 1024;

/** Bounds of the tick that prunes taken-back records and judges a stuck consumer. */
const TICK_MIN_MS = 50;
const TICK_MAX_MS = 1_000;

export class SendBuffer {
  readonly #ws: WebSocket;
  readonly #opts: SendBufferOptions;
  readonly #hooks: SendBufferHooks;
  /** Records waiting for room, with the attempt they were sent as; `#head` is the next one. */
  #recs: Rec[] = [];
  #attempts: number[] = [];
  #head = 0;
  #writable = true;
  #lastFlush = 0;
  #tick: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(ws: WebSocket, opts: SendBufferOptions, hooks: SendBufferHooks) {
    this.#ws = ws;
    this.#opts = opts;
    this.#hooks = hooks;
  }

  /** Bytes written to the WebSocket and not yet taken by the kernel. */
  get bufferedBytes(): number {
    return this.#closed ? 0 : this.#ws.bufferedAmount;
  }

  /** Records waiting here for room (in flight at the consumer as far as the core knows). */
  get waitingRecords(): number {
    return this.#recs.length - this.#head;
  }

  get writable(): boolean {
    return this.#writable;
  }

  /** Takes a delivery: sends what fits now, keeps the rest until the socket drains. */
  push(records: readonly Rec[]): void {
    if (this.#closed) return;
    for (const rec of records) {
      this.#recs.push(rec);
      this.#attempts.push(rec.attempt);
    }
    this.#pump();
  }

  /** Forgets what waits (the session closed; the engine takes the records back). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#tick);
    this.#tick = undefined;
    this.#recs = [];
    this.#attempts = [];
    this.#head = 0;
  }

  #pump(): void {
    if (this.#closed) return;
    const ws = this.#ws;
    if (ws.readyState !== ws.OPEN) return;
    while (this.#head < this.#recs.length && ws.bufferedAmount < this.#opts.maxBufferedBytes) {
      const frame = this.#nextFrame();
      if (frame === undefined) break;
      ws.send(frame, () => this.#flushed());
    }
    if (this.#head === this.#recs.length && this.#head > 0) {
      this.#recs = [];
      this.#attempts = [];
      this.#head = 0;
    }
    this.#setWritable(this.#head === this.#recs.length && ws.bufferedAmount < this.#opts.maxBufferedBytes);
  }

  /** `{"type":"records",...}` of the next waiting records still held, or undefined when none is. */
  #nextFrame(): string | undefined {
    const max = this.#opts.maxBatchRecords;
    let out = '';
    let n = 0;
    while (this.#head < this.#recs.length && n < max && out.length < FRAME_TARGET_CHARS) {
      const rec = this.#recs[this.#head] as Rec;
      const attempt = this.#attempts[this.#head] as number;
      this.#head++;
      if (!this.#hooks.holds(rec, attempt)) continue;
      out += n === 0 ? '{"type":"records","records":[' : ',';
      out += encodeRecord(rec);
      n++;
    }
    return n === 0 ? undefined : out + ']}';
  }

  #flushed(): void {
    this.#lastFlush = this.#hooks.now();
    this.#pump();
  }

  #setWritable(writable: boolean): void {
    if (writable === this.#writable) return;
    this.#writable = writable;
    if (writable) {
      clearInterval(this.#tick);
      this.#tick = undefined;
    } else {
      this.#lastFlush = this.#hooks.now();
      const ms = Math.max(TICK_MIN_MS, Math.min(TICK_MAX_MS, Math.floor(this.#opts.stuckTimeoutMs / 4)));
      this.#tick = setInterval(() => this.#onTick(), ms);
      this.#tick.unref();
    }
    this.#hooks.writable(writable);
  }

  #onTick(): void {
    this.#prune();
    if (this.#hooks.now() - this.#lastFlush >= this.#opts.stuckTimeoutMs) {
      this.#hooks.stuck();
      return;
    }
    // Pruning may have emptied the queue.
    this.#pump();
  }

  /** Drops references to records the session no longer holds, so they do not outlive the core's copy. */
  #prune(): void {
    const recs: Rec[] = [];
    const attempts: number[] = [];
    for (let i = this.#head; i < this.#recs.length; i++) {
      const rec = this.#recs[i] as Rec;
      const attempt = this.#attempts[i] as number;
      if (!this.#hooks.holds(rec, attempt)) continue;
      recs.push(rec);
      attempts.push(attempt);
    }
    this.#recs = recs;
    this.#attempts = attempts;
    this.#head = 0;
  }
}
