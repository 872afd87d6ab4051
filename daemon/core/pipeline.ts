/**
 * The pure core: streams, the global memory budget, the credit ledger, the
 * dispatcher and the in-flight table. No sockets, timers or clock reads:
 * every method that needs time takes `now` (monotonic ms), and the shell
 * carries out what `dispatch` decides.
 *
 * Invariants after every method (checked by the property tests):
 *   recovered + ingested = acked + dropped + buffered + inflight
 *   for each consumer: sent <= granted, inflight <= maxCredit
 *   first deliveries of a stream leave in increasing seq
 *   no record leaves while a more important one waits
 *   heldBytes <= memoryBudgetBytes
 */
import { CreditLedger, type ConsumerState } from './credit-ledger.js';
import { InflightTable } from './inflight.js';
import { Rec, type DropReason } from './record.js';
import { Scheduler } from './scheduler.js';
import { Stream, type StreamSpec } from './stream.js';

export interface PipelineOptions {
  readonly memoryBudgetBytes: number;
  readonly maxStreams: number;
  readonly maxCredit: number;
  readonly ackTimeoutMs: number;
  /** Deliveries a record gets; when the last one fails it is dropped as `poison`. */
  readonly maxAttempts: number;
  /**
   * The spec of a stream when it is first seen, from its name and the spec
   * its source proposes (an MQTT subscription's priority, say).
   */
  readonly specFor: (name: string, proposed?: StreamSpec) => StreamSpec;
  /** The first seq to hand out (seq continues across restarts). */
  readonly firstSeq?: number;
}

/**
 * `accepted`: the record waits in memory. `dropped`: it became a record and
 * was dropped at once (counted). `rejected`: it never became a record (too
 * many streams); the caller counts it as rejected input.
 */
export type IngestOutcome = 'accepted' | 'dropped' | 'rejected';

export interface Delivery {
  readonly consumer: ConsumerState;
  readonly records: Rec[];
}

export interface Totals {
  readonly recovered: number;
  readonly ingested: number;
  readonly acked: number;
  readonly dropped: number;
  readonly buffered: number;
  readonly bufferedBytes: number;
  readonly inflight: number;
  readonly heldBytes: number;
  readonly acksIgnored: number;
}

export class Pipeline {
  readonly #opts: PipelineOptions;
  readonly #streams = new Map<string, Stream>();
  readonly #scheduler = new Scheduler();
  readonly #ledger: CreditLedger;
  readonly #inflight = new InflightTable();
  #ackTimeoutMs: number;
  #maxAttempts: number;
  #memoryBudgetBytes: number;
  #nextSeq: number;

  #recovered = 0;
  #ingested = 0;
  #acked = 0;
  #dropped = 0;
  #buffered = 0;
  #bufferedBytes = 0;
  /** Cost of every record held, waiting or in flight, against the budget. */
  #heldBytes = 0;
  #acksIgnored = 0;

  constructor(opts: PipelineOptions) {
    this.#opts = opts;
    this.#ledger = new CreditLedger(opts.maxCredit);
    this.#ackTimeoutMs = opts.ackTimeoutMs;
    this.#maxAttempts = opts.maxAttempts;
    this.#memoryBudgetBytes = opts.memoryBudgetBytes;
    this.#nextSeq = opts.firstSeq ?? 1;
  }

  /** The seq the next accepted record gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  // ── sources ────────────────────────────────────────────────────────────

  /**
   * Takes a payload from a source. The returned outcome says whether the
   * record was kept; drops (of it or of older, less important records it
   * displaced) are counted on their streams.
   */
  ingest(streamName: string, payload: Uint8Array, ts: number, proposed?: StreamSpec): IngestOutcome {
    const stream = this.#stream(streamName, proposed);
    if (stream === undefined) return 'rejected';
    const rec = new Rec(this.#nextSeq++, stream, stream.priority, ts, payload);
    stream.ingested++;
    this.#ingested++;
    this.#heldBytes += rec.cost;

    // 1. The stream's own ring.
    while (stream.ring.wouldOverflow(rec)) {
      const policy = stream.spec.whenFull;
      switch (policy) {
        case 'drop-newest':
          this.#drop(rec, 'overflow');
          return 'dropped';
        case 'drop-oldest': {
          const victim = stream.ring.shift();
          if (victim === undefined) {
            // Larger than the whole ring: nothing to make room with.
            this.#drop(rec, 'overflow');
            return 'dropped';
          }
          this.#forgetBuffered(victim);
          this.#drop(victim, 'overflow');
          break;
        }
        default: {
          const unknown: never = policy;
          throw new Error(`unknown whenFull policy ${String(unknown)}`);
        }
      }
    }

    // 2. The global memory budget: the least important, oldest record goes.
    if (rec.cost > this.#memoryBudgetBytes) {
      this.#drop(rec, 'overflow');
      return 'dropped';
    }
    while (this.#heldBytes > this.#memoryBudgetBytes) {
      const victimStream = this.#scheduler.evictionCandidate();
      const victim = victimStream?.peekOldest();
      if (victimStream === undefined || victim === undefined || victim.prio < rec.prio) {
        this.#drop(rec, 'overflow');
        return 'dropped';
      }
      victimStream.takeOldest();
      this.#forgetBuffered(victim);
      this.#drop(victim, 'overflow');
    }

    stream.ring.push(rec);
    this.#buffered++;
    this.#bufferedBytes += rec.size;
    this.#scheduler.enqueue(stream);
    return 'accepted';
  }

  // ── consumers ──────────────────────────────────────────────────────────

  connect(id: number, name: string): ConsumerState {
    return this.#ledger.add(id, name);
  }

  /** Takes back everything the consumer held; returns how many. */
  disconnect(id: number): number {
    const c = this.#ledger.remove(id);
    if (c === undefined) return 0;
    const held = this.#inflight.takeAll(c);
    for (const rec of held) this.#takeBack(rec);
    return held.length;
  }

  credit(id: number, n: number): void {
    const c = this.#ledger.get(id);
    if (c !== undefined) this.#ledger.grant(c, n);
  }

  /** Returns how many seqs were ignored (unknown, foreign, already acked). */
  ack(id: number, seqs: readonly number[]): number {
    const c = this.#ledger.get(id);
    let ignored = 0;
    for (const seq of seqs) {
      const rec = c === undefined ? undefined : this.#inflight.take(c, seq);
      if (rec === undefined) {
        ignored++;
        continue;
      }
      rec.stream.acked++;
      this.#acked++;
      this.#heldBytes -= rec.cost;
    }
    this.#acksIgnored += ignored;
    return ignored;
  }

  /** Returns how many seqs were ignored. */
  nack(id: number, seqs: readonly number[]): number {
    const c = this.#ledger.get(id);
    let ignored = 0;
    for (const seq of seqs) {
      const rec = c === undefined ? undefined : this.#inflight.take(c, seq);
      if (rec === undefined) ignored++;
      else this.#takeBack(rec);
    }
    this.#acksIgnored += ignored;
    return ignored;
  }

  /** Takes back deliveries whose ack timeout has passed; returns how many. */
  expire(now: number): number {
    const late = this.#inflight.takeExpired(now);
    for (const rec of late) this.#takeBack(rec);
    return late.length;
  }

  /**
   * Decides what to send now. Consumers are served the most available credit
   * first, each a share of the waiting records in proportion to its credit;
   * records leave most important priority first, round robin between the
   * streams of a priority, FIFO within a stream.
   */
  dispatch(now: number): Delivery[] {
    const out: Delivery[] = [];
    if (this.#buffered === 0) return out;
    const deadline = now + this.#ackTimeoutMs;
    let eligible = this.#ledger.eligible();
    let progress = true;
    while (this.#buffered > 0 && eligible.length > 0 && progress) {
      progress = false;
      let total = 0;
      for (const c of eligible) total += this.#ledger.available(c);
      const waiting = this.#buffered;
      for (const c of eligible) {
        const avail = this.#ledger.available(c);
        let n = Math.min(avail, Math.ceil((waiting * avail) / total), this.#buffered);
        if (n === 0) continue;
        let delivery = out.find((d) => d.consumer === c);
        if (delivery === undefined) {
          delivery = { consumer: c, records: [] };
          out.push(delivery);
        }
        for (; n > 0; n--) {
          const rec = this.#takeNext();
          if (rec === undefined) break;
          this.#send(rec, c, deadline);
          delivery.records.push(rec);
          progress = true;
        }
      }
      eligible = this.#ledger.eligible();
    }
    return out;
  }

  // ── configuration (reload) ─────────────────────────────────────────────

  set ackTimeoutMs(ms: number) {
    this.#ackTimeoutMs = ms;
  }

  set maxCredit(n: number) {
    this.#ledger.maxCredit = n;
  }

  set maxAttempts(n: number) {
    this.#maxAttempts = n;
  }

  set memoryBudgetBytes(n: number) {
    this.#memoryBudgetBytes = n;
  }

  // ── observation ────────────────────────────────────────────────────────

  totals(): Totals {
    return {
      recovered: this.#recovered,
      ingested: this.#ingested,
      acked: this.#acked,
      dropped: this.#dropped,
      buffered: this.#buffered,
      bufferedBytes: this.#bufferedBytes,
      inflight: this.#inflight.size,
      heldBytes: this.#heldBytes,
      acksIgnored: this.#acksIgnored,
    };
  }

  streams(): IterableIterator<Stream> {
    return this.#streams.values();
  }

  consumers(): IterableIterator<ConsumerState> {
    return this.#ledger.values();
  }

  consumer(id: number): ConsumerState | undefined {
    return this.#ledger.get(id);
  }

  /** Records sent and not yet acked, in send order. */
  inflightRecords(): IterableIterator<Rec> {
    return this.#inflight.values();
  }

  /** Records waiting in memory, stream by stream, oldest first. */
  *bufferedRecords(): IterableIterator<Rec> {
    for (const s of this.#streams.values()) {
      yield* s.retry;
      yield* s.ring;
    }
  }

  // ── internals ──────────────────────────────────────────────────────────

  #stream(name: string, proposed: StreamSpec | undefined): Stream | undefined {
    let s = this.#streams.get(name);
    if (s !== undefined) return s;
    if (this.#streams.size >= this.#opts.maxStreams) return undefined;
    s = new Stream(this.#streams.size + 1, name, this.#opts.specFor(name, proposed));
    this.#streams.set(name, s);
    return s;
  }

  #takeNext(): Rec | undefined {
    const stream = this.#scheduler.peek();
    if (stream === undefined) return undefined;
    const rec = stream.takeNext();
    this.#scheduler.rotate(stream);
    if (rec !== undefined) this.#forgetBuffered(rec);
    return rec;
  }

  #send(rec: Rec, c: ConsumerState, deadline: number): void {
    rec.attempt++;
    if (rec.attempt > 1) rec.stream.redelivered++;
    this.#ledger.consume(c);
    this.#inflight.add(rec, c, deadline);
  }

  /** A delivery failed (nack, timeout, disconnect): queue it again, or drop it as poison. */
  #takeBack(rec: Rec): void {
    if (rec.attempt >= this.#maxAttempts) {
      this.#drop(rec, 'poison');
      return;
    }
    rec.stream.putBack(rec);
    this.#buffered++;
    this.#bufferedBytes += rec.size;
    this.#scheduler.enqueue(rec.stream);
  }

  #forgetBuffered(rec: Rec): void {
    this.#buffered--;
    this.#bufferedBytes -= rec.size;
  }

  #drop(rec: Rec, reason: DropReason): void {
    rec.stream.dropped[reason]++;
    this.#dropped++;
    this.#heldBytes -= rec.cost;
  }
}
