/**
 * The core: streams, the global memory budget, the spool tier, the credit
 * ledger, the dispatcher and the in-flight table. No sockets, timers or
 * clock reads: methods that need time take it (`now` monotonic ms for ack
 * deadlines, `age` age-clock ms for TTL), and the spool is a synchronous
 * port (SQLite in the daemon, memory in the property tests).
 *
 * Invariants after every method (checked by the property tests):
 *   recovered + ingested = acked + dropped + buffered + spooled + inflight
 *   for each consumer: sent <= granted, inflight <= maxCredit
 *   first deliveries of a fifo stream leave in increasing seq
 *   no record leaves while a more important one waits
 *   heldBytes <= memoryBudgetBytes, spoolBytes <= spoolQuotaBytes
 */
import { CreditLedger, type ConsumerState } from './credit-ledger.js';
import { InflightTable } from './inflight.js';
import { Rec, RECORD_OVERHEAD_BYTES as RECORD_COST, type DropReason } from './record.js';
import { Scheduler } from './scheduler.js';
import { Stream, type StreamSpec } from './stream.js';
import { SPOOL_ROW_OVERHEAD_BYTES, SpoolError, type SpoolPort, type StoredRecord } from '../spool/spool-port.js';

export interface PipelineOptions {
  readonly memoryBudgetBytes: number;
  readonly maxStreams: number;
  readonly maxCredit: number;
  readonly ackTimeoutMs: number;
  /** Deliveries a record gets; when the last one fails it is dropped as `poison`. */
  readonly maxAttempts: number;
  /**
   * The spec of a stream from its name and the priority its source sets
   * (an MQTT subscription's, a serial port's), if any. Asked when a stream
   * is first seen and again by `reconfigure`.
   */
  readonly specFor: (name: string, sourcePriority?: number) => StreamSpec;
  /** The first seq to hand out (seq continues across restarts). */
  readonly firstSeq?: number;
  /** The spool; without one, `spill` behaves as `drop-oldest`. */
  readonly spool?: SpoolPort;
  readonly spoolQuotaBytes?: number;
  /** Durable mode: every record is written to the spool as it is ingested. */
  readonly durable?: boolean;
  /** Records moved to the spool per spill (one transaction). */
  readonly spillBatchRecords?: number;
  /** Records read back from the spool at a time. */
  readonly replayBatchRecords?: number;
  /** Share of the memory budget reserved for a priority: others cannot use it. */
  readonly reservedShares?: Readonly<Record<number, number>>;
}

/**
 * `accepted`: the record waits (in memory, or on disk). `dropped`: it became
 * a record and was dropped at once (counted). `rejected`: it never became a
 * record (too many streams); the caller counts it. `blocked`: its stream's
 * policy is `block` and there is no room: the source must hold it back and
 * offer it again when the engine says there is room.
 */
export type IngestOutcome = 'accepted' | 'dropped' | 'rejected' | 'blocked';

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
  readonly spooled: number;
  readonly spoolBytes: number;
  readonly inflight: number;
  readonly heldBytes: number;
  readonly acksIgnored: number;
  /** Spool operations that failed (full disk, I/O error) since start. */
  readonly spoolFailures: number;
  /** Rows of acked or dropped records still to delete from the spool, and their bytes. */
  readonly spoolPendingDeletes: number;
  readonly spoolPendingDeleteBytes: number;
}

/** Deletes kept for retry while the spool fails; beyond this they are given up (the rows come back once after a restart: at least once). */
const MAX_PENDING_DELETES = 1_000_000;
/** Failed reads of a stream's backlog in a row before it is counted lost (spool_full). */
const MAX_READ_FAILURES = 3;

export class Pipeline {
  readonly #opts: PipelineOptions;
  readonly #spool: SpoolPort | undefined;
  readonly #streams = new Map<string, Stream>();
  readonly #scheduler = new Scheduler();
  readonly #ledger: CreditLedger;
  readonly #inflight = new InflightTable();
  readonly #spillBatch: number;
  readonly #replayBatch: number;
  #ackTimeoutMs: number;
  #maxAttempts: number;
  #memoryBudgetBytes: number;
  #spoolQuotaBytes: number;
  #reservedShares: Readonly<Record<number, number>>;
  #nextSeq: number;
  /** Seqs on disk whose records were acked or dropped: deleted in one transaction by `flushSpool`. */
  #pendingDeletes: number[] = [];
  #pendingDeleteBytes = 0;
  readonly #readFailures = new Map<Stream, number>();

  #recovered = 0;
  #ingested = 0;
  #acked = 0;
  #dropped = 0;
  #buffered = 0;
  #bufferedBytes = 0;
  #spooled = 0;
  /** Bytes on disk (payload + row overhead), against the quota. */
  #spoolBytes = 0;
  /** Cost of every record in memory, waiting or in flight, against the budget. */
  #heldBytes = 0;
  readonly #heldByPrio = new Map<number, number>();
  #acksIgnored = 0;
  #spoolFailures = 0;

  constructor(opts: PipelineOptions) {
    this.#opts = opts;
    this.#spool = opts.spool;
    this.#ledger = new CreditLedger(opts.maxCredit);
    this.#ackTimeoutMs = opts.ackTimeoutMs;
    this.#maxAttempts = opts.maxAttempts;
    this.#memoryBudgetBytes = opts.memoryBudgetBytes;
    this.#spoolQuotaBytes = opts.spoolQuotaBytes ?? Number.MAX_SAFE_INTEGER;
    this.#reservedShares = opts.reservedShares ?? {};
    this.#spillBatch = opts.spillBatchRecords ?? 256;
    this.#replayBatch = opts.replayBatchRecords ?? 256;
    this.#nextSeq = opts.firstSeq ?? 1;
  }

  /** The seq the next accepted record gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /**
   * Takes over what the spool holds at start: every stored record becomes a
   * spooled record of its stream (`recovered`), and seq continues above them.
   */
  recover(): number {
    const spool = this.#spool;
    if (spool === undefined) return 0;
    let n = 0;
    for (const s of spool.summary()) {
      const stream = this.#stream(s.stream, undefined, true) as Stream;
      stream.spooled += s.records;
      stream.spooledBytes += s.payloadBytes;
      stream.addSpan(0, s.maxSeq);
      this.#spooled += s.records;
      this.#spoolBytes += s.payloadBytes + s.records * SPOOL_ROW_OVERHEAD_BYTES;
      this.#nextSeq = Math.max(this.#nextSeq, s.maxSeq + 1);
      this.#scheduler.enqueue(stream);
      n += s.records;
    }
    this.#recovered += n;
    return n;
  }

  // ── sources ────────────────────────────────────────────────────────────

  /**
   * Takes a payload from a source. `ts` is the wall-clock receive time
   * (for consumers), `age` the age clock (for TTL). Drops, of it or of older
   * and less important records it displaced, are counted on their streams.
   */
  ingest(streamName: string, payload: Uint8Array, ts: number, age: number, sourcePriority?: number): IngestOutcome {
    const stream = this.#stream(streamName, sourcePriority, false);
    if (stream === undefined) return 'rejected';
    const size = payload.length;

    // 1. The stream's own ring: make room by its policy (block refuses before a seq is spent).
    while (stream.ring.wouldOverflowBy(size)) {
      const policy = stream.spec.whenFull;
      if (policy === 'block') return 'blocked';
      if (stream.ring.length === 0 || policy === 'drop-newest') return this.#dropAtIngest(stream, payload, ts, age, 'overflow');
      switch (policy) {
        case 'drop-oldest':
          this.#dropFromRing(stream, 'overflow');
          break;
        case 'spill':
          this.#spillOrDrop(stream, this.#spillBatch);
          break;
        default: {
          const unknown: never = policy;
          throw new Error(`unknown whenFull policy ${String(unknown)}`);
        }
      }
    }

    // 2. The global memory budget: the least important, oldest ring record leaves memory.
    const cost = size + RECORD_COST;
    if (!this.#makeRoom(cost, stream.priority)) {
      if (stream.spec.whenFull === 'block') return 'blocked';
      if (stream.spec.whenFull === 'spill' && stream.ring.length === 0 && this.#spool !== undefined) {
        // Nothing less important is held: this one goes straight to disk.
        const rec = this.#newRecord(stream, payload, ts, age);
        this.#spillRecords(stream, [rec]);
        return 'accepted';
      }
      return this.#dropAtIngest(stream, payload, ts, age, 'overflow');
    }

    const rec = this.#newRecord(stream, payload, ts, age);
    this.#hold(rec);
    if (this.#opts.durable === true && this.#spool !== undefined && !this.#writeOne(rec)) {
      this.#release(rec);
      this.#drop(rec, 'spool_full');
      return 'dropped';
    }
    stream.ring.push(rec);
    this.#buffered++;
    this.#bufferedBytes += rec.size;
    this.#scheduler.enqueue(stream);
    return 'accepted';
  }

  /** True when a record of `size` bytes would be taken by the stream now (for `block` sources). */
  hasRoom(streamName: string, size: number): boolean {
    const s = this.#streams.get(streamName);
    if (s === undefined) return this.#streams.size < this.#opts.maxStreams;
    return !s.ring.wouldOverflowBy(size) && this.#fits(size + RECORD_COST, s.priority);
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
      this.#release(rec);
      this.#forgetOnDisk(rec);
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

  /** Drops waiting records older than their stream's TTL (age clock); returns how many. */
  expireTtl(age: number): number {
    let n = 0;
    for (const s of this.#streams.values()) {
      const ttl = s.spec.ttlMs;
      if (ttl <= 0) continue;
      const cutoff = age - ttl;
      const old = (rec: Rec) => rec.born < cutoff;
      for (const rec of s.removeWhere(old)) {
        this.#forgetBuffered(rec);
        this.#discard(rec, 'expired');
        n++;
      }
      for (let head = s.ring.peek(); head !== undefined && old(head); head = s.ring.peek()) {
        this.#dropFromRing(s, 'expired');
        n++;
      }
      if (s.spooled > 0 && this.#spool !== undefined) {
        for (const span of s.spans) {
          let gone;
          try {
            gone = this.#spool.deleteBornBefore(s.name, span.after, span.upto, cutoff);
          } catch (err) {
            this.#spoolFailed(err);
            break; // the next sweep tries again
          }
          this.#forgetSpooled(s, gone.records, gone.payloadBytes);
          s.dropped.expired += gone.records;
          this.#dropped += gone.records;
          n += gone.records;
        }
      }
    }
    return n;
  }

  /**
   * Decides what to send now. Consumers are served the most available credit
   * first, each a share of the waiting records in proportion to its credit;
   * records leave most important priority first, round robin between the
   * streams of a priority, oldest tier first within a stream.
   */
  dispatch(now: number): Delivery[] {
    const out: Delivery[] = [];
    if (this.#buffered + this.#spooled === 0) return out;
    const deadline = now + this.#ackTimeoutMs;
    let eligible = this.#ledger.eligible();
    let progress = true;
    while (eligible.length > 0 && progress) {
      progress = false;
      let total = 0;
      for (const c of eligible) total += this.#ledger.available(c);
      const waiting = this.#buffered + this.#spooled;
      for (const c of eligible) {
        const avail = this.#ledger.available(c);
        let n = Math.min(avail, Math.ceil((waiting * avail) / total));
        let delivery: Delivery | undefined;
        for (; n > 0; n--) {
          const rec = this.#takeNext();
          if (rec === undefined) break;
          this.#send(rec, c, deadline);
          if (delivery === undefined) {
            delivery = out.find((d) => d.consumer === c) ?? { consumer: c, records: [] };
            if (delivery.records.length === 0) out.push(delivery);
          }
          delivery.records.push(rec);
          progress = true;
        }
      }
      eligible = this.#ledger.eligible();
    }
    return out;
  }

  /** Deletes from the spool what was acked or dropped since the last call, in one transaction. */
  flushSpool(): void {
    if (this.#pendingDeletes.length === 0 || this.#spool === undefined) return;
    try {
      this.#spool.delete(this.#pendingDeletes);
    } catch (err) {
      this.#spoolFailed(err);
      if (this.#pendingDeletes.length > MAX_PENDING_DELETES) {
        this.#pendingDeletes = [];
        this.#pendingDeleteBytes = 0;
      }
      return;
    }
    this.#pendingDeletes = [];
    this.#pendingDeleteBytes = 0;
  }

  /**
   * At shutdown: writes every record still owed and not yet on disk (rings,
   * taken-back and in-flight records) to the spool, and records the delivery
   * attempts of those that are. The pipeline must not be used afterwards.
   * Returns how many records were written.
   */
  persist(): number {
    const spool = this.#spool;
    if (spool === undefined) return 0;
    this.flushSpool();
    const fresh: Rec[] = [];
    const attempts: Array<{ seq: number; attempt: number }> = [];
    for (const rec of [...this.bufferedRecords(), ...this.#inflight.values()]) {
      if (rec.onDisk) attempts.push({ seq: rec.seq, attempt: rec.attempt });
      else fresh.push(rec);
    }
    // The quota holds here too: the most important records get the room first.
    fresh.sort((a, b) => a.prio - b.prio || a.seq - b.seq);
    const keep: StoredRecord[] = [];
    for (const rec of fresh) {
      const bytes = rec.size + SPOOL_ROW_OVERHEAD_BYTES;
      if (this.#makeDiskRoom(bytes, rec.prio)) {
        this.#spoolBytes += bytes;
        keep.push(stored(rec));
      } else this.#drop(rec, 'spool_full');
    }
    this.flushSpool();
    spool.write(keep);
    spool.setAttempts(attempts);
    return keep.length;
  }

  // ── configuration (reload) ─────────────────────────────────────────────

  /**
   * Applies a new config to every stream (`specFor` answers from it now):
   * priority, ring capacity, policy, replay mode, TTL. A ring above its new
   * capacity sheds records by its policy as records arrive.
   */
  reconfigure(): void {
    for (const s of this.#streams.values()) this.#respec(s, s.sourcePriority);
  }

  #respec(s: Stream, sourcePriority: number | undefined): void {
    const before = s.priority;
    s.reconfigure(this.#opts.specFor(s.name, sourcePriority), sourcePriority);
    if (s.priority !== before) this.#scheduler.reprioritize(s);
  }

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

  set reservedShares(shares: Readonly<Record<number, number>>) {
    this.#reservedShares = shares;
  }

  set spoolQuotaBytes(n: number) {
    this.#spoolQuotaBytes = n;
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
      spooled: this.#spooled,
      spoolBytes: this.#spoolBytes,
      inflight: this.#inflight.size,
      heldBytes: this.#heldBytes,
      acksIgnored: this.#acksIgnored,
      spoolFailures: this.#spoolFailures,
      spoolPendingDeletes: this.#pendingDeletes.length,
      spoolPendingDeleteBytes: this.#pendingDeleteBytes,
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

  /** Records waiting in memory, stream by stream, oldest tier first. */
  *bufferedRecords(): IterableIterator<Rec> {
    for (const s of this.#streams.values()) {
      yield* s.retry;
      yield* s.replay;
      yield* s.ring;
    }
  }

  // ── internals: streams and records ─────────────────────────────────────

  #stream(name: string, sourcePriority: number | undefined, recovering: boolean): Stream | undefined {
    let s = this.#streams.get(name);
    if (s !== undefined) {
      if (s.sourcePriority === undefined && sourcePriority !== undefined) this.#respec(s, sourcePriority);
      return s;
    }
    if (!recovering && this.#streams.size >= this.#opts.maxStreams) return undefined;
    s = new Stream(this.#streams.size + 1, name, this.#opts.specFor(name, sourcePriority), sourcePriority);
    this.#streams.set(name, s);
    return s;
  }

  #newRecord(stream: Stream, payload: Uint8Array, ts: number, age: number): Rec {
    const rec = new Rec(this.#nextSeq++, stream, stream.priority, ts, age, payload);
    stream.ingested++;
    this.#ingested++;
    return rec;
  }

  #dropAtIngest(stream: Stream, payload: Uint8Array, ts: number, age: number, reason: DropReason): IngestOutcome {
    this.#drop(this.#newRecord(stream, payload, ts, age), reason);
    return 'dropped';
  }

  #takeNext(): Rec | undefined {
    let stalled: Set<Stream> | undefined;
    for (;;) {
      const stream = this.#scheduler.peek();
      if (stream === undefined) return undefined;
      if (stream.needsLoad && !this.#load(stream)) {
        // Its backlog cannot come into memory now (memory holds only more
        // important records). Streams of the same priority may go on; a less
        // important one may not, nor may we go round in circles.
        stalled ??= new Set();
        stalled.add(stream);
        this.#scheduler.rotate(stream);
        const next = this.#scheduler.peek();
        if (next === undefined || stalled.has(next) || next.priority > stream.priority) return undefined;
        continue;
      }
      const rec = stream.takeNext();
      this.#scheduler.rotate(stream);
      if (rec === undefined) continue;
      this.#forgetBuffered(rec);
      return rec;
    }
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
      this.#discard(rec, 'poison');
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

  /** Counts a drop of a record not in memory. */
  #drop(rec: Rec, reason: DropReason): void {
    rec.stream.dropped[reason]++;
    this.#dropped++;
  }

  /** Drops a record held in memory (no longer buffered nor in flight). */
  #discard(rec: Rec, reason: DropReason): void {
    this.#release(rec);
    this.#forgetOnDisk(rec);
    this.#drop(rec, reason);
  }

  #dropFromRing(stream: Stream, reason: DropReason): void {
    const victim = stream.ring.shift();
    if (victim === undefined) return;
    this.#forgetBuffered(victim);
    this.#discard(victim, reason);
  }

  // ── internals: the memory budget ───────────────────────────────────────

  #hold(rec: Rec): void {
    const cost = rec.cost;
    this.#heldBytes += cost;
    this.#heldByPrio.set(rec.prio, (this.#heldByPrio.get(rec.prio) ?? 0) + cost);
  }

  #release(rec: Rec): void {
    const cost = rec.cost;
    this.#heldBytes -= cost;
    this.#heldByPrio.set(rec.prio, (this.#heldByPrio.get(rec.prio) ?? 0) - cost);
  }

  /** True when `cost` more bytes of priority `prio` fit, counting what other priorities keep reserved. */
  #fits(cost: number, prio: number): boolean {
    let reservedForOthers = 0;
    for (const [p, share] of Object.entries(this.#reservedShares)) {
      const q = Number(p);
      if (q !== prio) reservedForOthers += Math.max(0, share * this.#memoryBudgetBytes - (this.#heldByPrio.get(q) ?? 0));
    }
    return this.#heldBytes + cost + reservedForOthers <= this.#memoryBudgetBytes;
  }

  /**
   * Frees memory for `cost` bytes of priority `prio`: the least important
   * stream's oldest ring records leave first (spilled if its policy is
   * `spill`, else dropped as `overflow`), then records read back from the
   * spool (released: they are still on disk), then taken-back records; never
   * one more important than `prio`. Returns false when that is not enough.
   */
  #makeRoom(cost: number, prio: number): boolean {
    if (cost > this.#memoryBudgetBytes) return false;
    while (!this.#fits(cost, prio)) {
      const victim = this.#scheduler.evictionCandidate();
      const head = victim?.ring.peek();
      if (victim !== undefined && head !== undefined && head.prio >= prio) {
        if (victim.spec.whenFull === 'spill' && this.#spool !== undefined) this.#spillOrDrop(victim, this.#spillBatch);
        else this.#dropFromRing(victim, 'overflow');
        continue;
      }
      if (!this.#evictWaiting(prio)) return false;
    }
    return true;
  }

  /**
   * The last resort of `#makeRoom`, so a backlog can always come back into
   * memory: the least important stream (at `prio` or below) gives back its
   * replay records to the spool, or moves one taken-back record there (or
   * drops it, without a spool or the `spill` policy).
   */
  #evictWaiting(prio: number): boolean {
    let victim: Stream | undefined;
    for (const s of this.#streams.values()) {
      if (s.priority < prio || s.replay.length + s.retry.length === 0) continue;
      if (victim === undefined || s.priority > victim.priority) victim = s;
    }
    if (victim === undefined) return false;
    if (victim.replay.length > 0) {
      const back = victim.giveBackReplay();
      let bytes = 0;
      for (const rec of back) {
        bytes += rec.size;
        this.#forgetBuffered(rec);
        this.#release(rec);
      }
      victim.spooled += back.length;
      victim.spooledBytes += bytes;
      this.#spooled += back.length;
      return true;
    }
    const rec = victim.retry[0] as Rec;
    const spill = this.#spool !== undefined && victim.spec.whenFull === 'spill';
    if (spill && rec.onDisk) {
      // Already on disk: its delivery count must be right there before memory lets it go.
      try {
        (this.#spool as SpoolPort).setAttempts([{ seq: rec.seq, attempt: rec.attempt }]);
      } catch (err) {
        this.#spoolFailed(err);
        return false;
      }
    }
    victim.retry.shift();
    victim.retryBytes -= rec.size;
    this.#forgetBuffered(rec);
    this.#release(rec);
    if (!spill) {
      this.#forgetOnDisk(rec);
      this.#drop(rec, 'overflow');
      return true;
    }
    if (!rec.onDisk && !this.#writeOne(rec)) {
      this.#drop(rec, 'spool_full');
      return true;
    }
    victim.addSpan(rec.seq - 1, rec.seq);
    victim.spooled++;
    victim.spooledBytes += rec.size;
    this.#spooled++;
    this.#scheduler.enqueue(victim);
    return true;
  }

  // ── internals: the spool ───────────────────────────────────────────────

  /** Moves up to `n` of the oldest ring records to the spool; what cannot be written is dropped as `spool_full`. */
  #spillOrDrop(stream: Stream, n: number): void {
    if (this.#spool === undefined) {
      this.#dropFromRing(stream, 'overflow');
      return;
    }
    const batch: Rec[] = [];
    for (let i = 0; i < n; i++) {
      const rec = stream.ring.shift();
      if (rec === undefined) break;
      this.#forgetBuffered(rec);
      this.#release(rec);
      batch.push(rec);
    }
    this.#spillRecords(stream, batch);
  }

  /** Writes records (out of memory, oldest first, newer than the stream's backlog) to the spool. */
  #spillRecords(stream: Stream, batch: readonly Rec[]): void {
    const spool = this.#spool as SpoolPort;
    const toWrite = batch.filter((r) => !r.onDisk);
    let bytes = 0;
    for (const r of toWrite) bytes += r.size + SPOOL_ROW_OVERHEAD_BYTES;
    let written = toWrite.length === 0;
    if (!written && this.#makeDiskRoom(bytes, stream.priority)) {
      try {
        spool.write(toWrite.map(stored));
        this.#spoolBytes += bytes;
        written = true;
      } catch (err) {
        this.#spoolFailed(err);
      }
    }
    if (!written) {
      for (const rec of batch) {
        this.#forgetOnDisk(rec);
        this.#drop(rec, 'spool_full');
      }
      return;
    }
    for (const rec of batch) {
      stream.spooled++;
      stream.spooledBytes += rec.size;
    }
    if (batch.length > 0) stream.addSpilled((batch[0] as Rec).seq, (batch[batch.length - 1] as Rec).seq);
    this.#spooled += batch.length;
    stream.spilled += batch.length;
    this.#scheduler.enqueue(stream);
  }

  /**
   * Frees quota for `bytes` of priority `prio`: the least important stream's
   * oldest spooled records go first (`spool_full`), never more important ones.
   */
  #makeDiskRoom(bytes: number, prio: number): boolean {
    const spool = this.#spool as SpoolPort;
    if (bytes > this.#spoolQuotaBytes) return false;
    while (this.#spoolBytes + bytes > this.#spoolQuotaBytes) {
      let victim: Stream | undefined;
      for (const s of this.#streams.values()) {
        if (s.spooled === 0) continue;
        if (victim === undefined || s.priority > victim.priority || (s.priority === victim.priority && oldestSpooled(s) < oldestSpooled(victim))) victim = s;
      }
      const span = victim?.spans[0];
      if (victim === undefined || span === undefined || victim.priority < prio) return false;
      let gone;
      try {
        gone = spool.deleteOldest(victim.name, span.after, span.upto, Math.max(this.#spillBatch, 1));
      } catch (err) {
        this.#spoolFailed(err);
        return false;
      }
      if (gone.records === 0) {
        victim.spans.shift(); // nothing left in that span
        if (victim.spans.length === 0) this.#lostBacklog(victim);
        continue;
      }
      this.#forgetSpooled(victim, gone.records, gone.payloadBytes);
      victim.dropped.spool_full += gone.records;
      this.#dropped += gone.records;
    }
    return true;
  }

  /** Writes one record to the spool within the quota; marks it on disk. */
  #writeOne(rec: Rec): boolean {
    const bytes = rec.size + SPOOL_ROW_OVERHEAD_BYTES;
    if (!this.#makeDiskRoom(bytes, rec.prio)) return false;
    try {
      (this.#spool as SpoolPort).write([stored(rec)]);
    } catch (err) {
      this.#spoolFailed(err);
      return false;
    }
    rec.onDisk = true;
    this.#spoolBytes += bytes;
    return true;
  }

  /** Counts a failed spool operation (the shell reports it on /healthz); rethrows what is not a spool error. */
  #spoolFailed(err: unknown): void {
    if (!(err instanceof SpoolError)) throw err;
    this.#spoolFailures++;
  }

  /**
   * Reads the next part of a stream's backlog into memory; false when it
   * cannot now. Room is made for the first record before anything is taken;
   * the rest come only while they fit.
   */
  #load(stream: Stream): boolean {
    const spool = this.#spool;
    if (spool === undefined) return false;
    const read = () => {
      for (let span = stream.spans[0]; span !== undefined; span = stream.spans[0]) {
        const rows = spool.read(stream.name, span.after, span.upto, this.#replayBatch);
        if (rows.length > 0) return rows;
        stream.spans.shift(); // read to its end (or its rows were deleted)
      }
      return [];
    };
    let rows;
    try {
      rows = read();
    } catch (err) {
      this.#spoolFailed(err);
      // A backlog that cannot be read a few times in a row is counted lost rather than blocking the stream.
      const failures = (this.#readFailures.get(stream) ?? 0) + 1;
      this.#readFailures.set(stream, failures);
      if (failures < MAX_READ_FAILURES) return false;
      this.#readFailures.delete(stream);
      this.#lostBacklog(stream);
      return true;
    }
    this.#readFailures.delete(stream);
    // Making room may spill, and a full quota may then delete this backlog's oldest rows: read again.
    for (let first = rows[0]; first !== undefined && !this.#fits(first.payload.length + RECORD_COST, first.prio); first = rows[0]) {
      if (!this.#makeRoom(first.payload.length + RECORD_COST, first.prio)) return false;
      try {
        rows = read();
      } catch (err) {
        this.#spoolFailed(err);
        return false;
      }
    }
    if (rows.length === 0) {
      this.#lostBacklog(stream);
      return true;
    }
    const recs: Rec[] = [];
    let bytes = 0;
    for (const row of rows) {
      if (!this.#fits(row.payload.length + RECORD_COST, row.prio)) break;
      const rec = new Rec(row.seq, stream, row.prio, row.ts, row.born, row.payload);
      rec.attempt = row.attempt;
      rec.onDisk = true;
      this.#hold(rec);
      recs.push(rec);
      bytes += rec.size;
    }
    stream.advance((recs[recs.length - 1] as Rec).seq);
    stream.spooled -= recs.length;
    stream.spooledBytes -= bytes;
    this.#spooled -= recs.length;
    stream.addReplay(recs);
    this.#buffered += recs.length;
    this.#bufferedBytes += bytes;
    return true;
  }

  /** The accounting says a stream has records on disk that are not there (deleted outside, or corrupt): count them lost. */
  #lostBacklog(stream: Stream): void {
    if (stream.spooled === 0) return;
    stream.dropped.spool_full += stream.spooled;
    this.#dropped += stream.spooled;
    this.#forgetSpooled(stream, stream.spooled, stream.spooledBytes);
    stream.spans.length = 0;
  }

  #forgetSpooled(stream: Stream, records: number, payloadBytes: number): void {
    stream.spooled -= records;
    stream.spooledBytes -= payloadBytes;
    this.#spooled -= records;
    this.#spoolBytes -= payloadBytes + records * SPOOL_ROW_OVERHEAD_BYTES;
  }

  /** A record that has a copy on disk is done with: delete the copy in the next flush. */
  #forgetOnDisk(rec: Rec): void {
    if (!rec.onDisk) return;
    rec.onDisk = false;
    const bytes = rec.size + SPOOL_ROW_OVERHEAD_BYTES;
    this.#pendingDeletes.push(rec.seq);
    this.#pendingDeleteBytes += bytes;
    this.#spoolBytes -= bytes;
  }
}

/** The oldest seq a stream may have only on disk. */
function oldestSpooled(s: Stream): number {
  return (s.spans[0]?.after ?? Infinity) + 1;
}

function stored(rec: Rec): StoredRecord {
  return { seq: rec.seq, stream: rec.stream.name, prio: rec.prio, ts: rec.ts, born: rec.born, attempt: rec.attempt, payload: rec.payload };
}
