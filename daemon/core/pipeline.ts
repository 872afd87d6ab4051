/**
 * The core's public face: streams, sources, consumers, acks, reload and
 * observation, composed from the credit ledger, the in-flight table, the
 * dispatcher (`dispatcher.ts`), the global memory budget (`memory-budget.ts`)
 * and the spool tier (`spool-tier.ts`) over shared state
 * (`pipeline-state.ts`); its types live in `pipeline-types.ts`. No
 * sockets, timers or clock reads: methods that need time take it (`now`
 * monotonic ms for ack deadlines, `age` age-clock ms for TTL), and the spool
 * is a synchronous port (SQLite in the daemon, memory in the property tests).
 *
 * Invariants after every method (checked by the property tests):
 *   recovered + ingested = acked + dropped + buffered + spooled + inflight
 *   for each consumer: sent <= granted, inflight <= maxCredit
 *   first deliveries of a fifo stream leave in increasing seq
 *   no record leaves while a more important one waits
 *   heldBytes <= memoryBudgetBytes, spoolBytes <= spoolQuotaBytes
 */
import { CreditLedger, type ConsumerState } from './credit-ledger.js';
import { Dispatcher } from './dispatcher.js';
import { InflightTable } from './inflight.js';
import { MemoryBudget } from './memory-budget.js';
import { PipelineState } from './pipeline-state.js';
import { Rec, RECORD_OVERHEAD_BYTES as RECORD_COST, type DropReason } from './record.js';
import type { Delivery, IngestOutcome, PipelineOptions, Rejection, Totals } from './pipeline-types.js';
import { SpoolTier } from './spool-tier.js';
import { addCounters, Stream, type StreamSpec } from './stream.js';

export type { Delivery, IngestOutcome, PipelineOptions, Rejection, Totals } from './pipeline-types.js';

/** The spec of the stand-in that keeps the counts of forgotten streams. */
const FORGOTTEN_SPEC: StreamSpec = { priority: 9, capacityRecords: 1, capacityBytes: 1, whenFull: 'drop-newest', replay: 'fifo', backlogShare: 0, ttlMs: 0 };

export class Pipeline {
  readonly #opts: PipelineOptions;
  readonly #s: PipelineState;
  readonly #budget: MemoryBudget;
  readonly #tier: SpoolTier;
  readonly #ledger: CreditLedger;
  readonly #inflight = new InflightTable();
  readonly #dispatcher: Dispatcher;
  /** Durable mode: records accepted since the last group commit. */
  #uncommitted: Rec[] = [];
  /** Streams not named in the config (what `maxStreams` bounds). */
  #unconfiguredStreams = 0;
  /** The counters of streams forgotten while idle, so totals by stream still balance. */
  #forgotten: Stream | undefined;
  #forgottenCount = 0;
  #rejection: Rejection = 'too_many_streams';
  #streamIds = 0;

  constructor(opts: PipelineOptions) {
    this.#opts = opts;
    this.#s = new PipelineState({
      spool: opts.spool,
      memoryBudgetBytes: opts.memoryBudgetBytes,
      spoolQuotaBytes: opts.spoolQuotaBytes ?? Number.MAX_SAFE_INTEGER,
      reservedShares: opts.reservedShares ?? {},
      spillBatchRecords: opts.spillBatchRecords ?? 256,
      replayBatchRecords: opts.replayBatchRecords ?? 256,
      firstSeq: opts.firstSeq ?? 1,
    });
    this.#budget = new MemoryBudget(this.#s);
    this.#tier = new SpoolTier(this.#s, this.#budget);
    this.#budget.attach(this.#tier);
    this.#ledger = new CreditLedger(opts.maxCredit);
    this.#dispatcher = new Dispatcher({
      state: this.#s,
      ledger: this.#ledger,
      inflight: this.#inflight,
      budget: this.#budget,
      tier: this.#tier,
      ackTimeoutMs: opts.ackTimeoutMs,
      maxAttempts: opts.maxAttempts,
    });
  }

  /** The seq the next accepted record gets. */
  get nextSeq(): number {
    return this.#s.nextSeq;
  }

  /**
   * Takes over what the spool holds at start: every stored record becomes a
   * spooled record of its stream (`recovered`), and seq continues above them.
   */
  recover(lost: ReadonlyArray<{ readonly stream: string; readonly records: number }> = []): number {
    const n = this.#tier.recover((name) => this.#stream(name, undefined, true) as Stream);
    // Owed records that a damaged spool could not give back: recovered and dropped at once, counted.
    for (const { stream, records } of lost) {
      if (records <= 0) continue;
      const s = this.#stream(stream, undefined, true) as Stream;
      s.dropped.corrupt += records;
      this.#s.dropped += records;
      this.#s.recovered += records;
    }
    return n;
  }

  /** Why the last `ingest` that answered `rejected` did. */
  get rejection(): Rejection {
    return this.#rejection;
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
    const st = this.#s;
    const size = payload.length;
    stream.lastIngest = age;

    // 1. The stream's own ring: make room by its policy (block refuses before a seq is spent).
    while (stream.ring.wouldOverflowBy(size)) {
      const policy = stream.spec.whenFull;
      if (policy === 'block') return 'blocked';
      if (stream.ring.length === 0 || policy === 'drop-newest') return this.#dropAtIngest(stream, payload, ts, age, 'overflow');
      switch (policy) {
        case 'drop-oldest':
          this.#budget.dropFromRing(stream, 'overflow');
          break;
        case 'spill':
          if (!this.#tier.spill(stream, st.spillBatch)) return this.#dropAtIngest(stream, payload, ts, age, 'spool_full');
          break;
        default: {
          const unknown: never = policy;
          throw new Error(`unknown whenFull policy ${String(unknown)}`);
        }
      }
    }

    // 2. The global memory budget: the least important, oldest ring record leaves memory.
    const cost = size + RECORD_COST;
    if (!this.#budget.makeRoom(cost, stream.priority)) {
      if (stream.spec.whenFull === 'block') return 'blocked';
      if (stream.spec.whenFull === 'spill' && stream.ring.length === 0 && st.spool !== undefined) {
        // Nothing less important is held: this one goes straight to disk.
        const rec = this.#newRecord(stream, payload, ts, age);
        return this.#tier.spillRecords(stream, [rec]) ? 'accepted' : 'dropped';
      }
      return this.#dropAtIngest(stream, payload, ts, age, st.spoolFailing ? 'spool_full' : 'overflow');
    }

    const rec = this.#newRecord(stream, payload, ts, age);
    this.#budget.hold(rec);
    if (this.#opts.durable === true && st.spool !== undefined) {
      // Durable: written by the next group commit, before the source is acknowledged.
      rec.uncommitted = true;
      this.#uncommitted.push(rec);
    }
    stream.ring.push(rec);
    st.buffered++;
    st.bufferedBytes += rec.size;
    st.scheduler.enqueue(stream);
    return 'accepted';
  }

  /** True when a record of `size` bytes would be taken by the stream now (for `block` sources). */
  hasRoom(streamName: string, size: number): boolean {
    const s = this.#s.streams.get(streamName);
    if (s === undefined) return this.#unconfiguredStreams < this.#opts.maxStreams || this.#opts.configuredStream?.(streamName) === true;
    return !s.ring.wouldOverflowBy(size) && this.#budget.fits(size + RECORD_COST, s.priority);
  }

  // ── consumers ──────────────────────────────────────────────────────────

  /** Connects a consumer to a group (default `default`); undefined when the group is not declared. Only `default` exists until groups land. */
  connect(id: number, name: string, joins: { readonly group?: string; readonly tap?: boolean } = {}): ConsumerState | undefined {
    if (joins.tap === true || (joins.group ?? 'default') !== 'default') return undefined;
    return this.#ledger.add(id, name);
  }

  /** Takes back everything the consumer held; returns how many. */
  disconnect(id: number): number {
    const c = this.#ledger.remove(id);
    if (c === undefined) return 0;
    const held = this.#inflight.takeAll(c);
    for (const rec of held) this.#dispatcher.takeBack(rec);
    return held.length;
  }

  /** A consumer's transport is (not) able to take more now: while not, it is sent nothing and its timeouts do not count against records. */
  setWritable(id: number, writable: boolean): void {
    const c = this.#ledger.get(id);
    if (c !== undefined) c.writable = writable;
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
      rec.uncommitted = false;
      this.#s.acked++;
      this.#budget.release(rec);
      this.#tier.forgetOnDisk(rec);
    }
    this.#s.acksIgnored += ignored;
    return ignored;
  }

  /** Returns how many seqs were ignored. */
  nack(id: number, seqs: readonly number[]): number {
    const c = this.#ledger.get(id);
    let ignored = 0;
    for (const seq of seqs) {
      const rec = c === undefined ? undefined : this.#inflight.take(c, seq);
      if (rec === undefined) ignored++;
      else {
        rec.failures++;
        this.#dispatcher.takeBack(rec);
      }
    }
    this.#s.acksIgnored += ignored;
    return ignored;
  }

  /** Takes back deliveries whose ack timeout has passed; returns how many. */
  expire(now: number): number {
    const late = this.#inflight.takeExpired(now);
    for (const rec of late) this.#dispatcher.takeBack(rec);
    return late.length;
  }

  /** Drops waiting records older than their stream's TTL (age clock); returns how many. */
  expireTtl(age: number): number {
    let n = 0;
    for (const s of this.#s.streams.values()) {
      const ttl = s.spec.ttlMs;
      if (ttl <= 0) continue;
      const cutoff = age - ttl;
      const old = (rec: Rec) => rec.born < cutoff;
      for (const rec of s.removeWhere(old)) {
        this.#s.forgetBuffered(rec);
        this.#budget.discard(rec, 'expired');
        n++;
      }
      for (let head = s.ring.peek(); head !== undefined && old(head); head = s.ring.peek()) {
        this.#budget.dropFromRing(s, 'expired');
        n++;
      }
      n += this.#tier.expireSpooled(s, cutoff);
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
    return this.#dispatcher.dispatch(now);
  }

  /** Durable mode: records accepted and not yet committed. */
  get uncommitted(): number {
    return this.#uncommitted.length;
  }

  /**
   * Durable mode's group commit: every record accepted since the last one
   * that is still in memory and not yet on disk is written in one
   * transaction. True when they are all durable now (their sources may be
   * acknowledged); false when the write failed: they stay in memory, not
   * durable, and their sources must not be told they are safe.
   */
  commit(): boolean {
    const batch = this.#uncommitted;
    if (batch.length === 0) return true;
    this.#uncommitted = [];
    const owed = batch.filter((r) => r.uncommitted);
    for (const r of batch) r.uncommitted = false;
    return this.#tier.commit(owed);
  }

  /** Deletes from the spool what was acked or dropped since the last call, in one transaction. */
  flushSpool(): void {
    this.#tier.flush();
  }

  /**
   * At shutdown: writes every record still owed and not yet on disk (rings,
   * taken-back and in-flight records) to the spool, and records the delivery
   * attempts of those that are. The pipeline must not be used afterwards.
   * Returns how many records were written.
   */
  persist(): number {
    return this.#tier.persist(() => [...this.bufferedRecords(), ...this.#inflight.values()]);
  }

  // ── configuration (reload) ─────────────────────────────────────────────

  /**
   * Applies a new config to every stream (`specFor` answers from it now):
   * priority, ring capacity, policy, replay mode, TTL. A ring above its new
   * capacity sheds records by its policy as records arrive.
   */
  reconfigure(): void {
    for (const s of this.#s.streams.values()) this.#respec(s, s.sourcePriority);
  }

  #respec(s: Stream, sourcePriority: number | undefined): void {
    const before = s.priority;
    s.reconfigure(this.#opts.specFor(s.name, sourcePriority), sourcePriority);
    if (s.priority !== before) this.#s.scheduler.reprioritize(s);
  }

  set ackTimeoutMs(ms: number) {
    this.#dispatcher.ackTimeoutMs = ms;
  }

  set maxCredit(n: number) {
    this.#ledger.maxCredit = n;
  }

  set maxAttempts(n: number) {
    this.#dispatcher.maxAttempts = n;
  }

  set memoryBudgetBytes(n: number) {
    this.#s.memoryBudgetBytes = n;
  }

  set reservedShares(shares: Readonly<Record<number, number>>) {
    this.#s.reservedShares = shares;
  }

  set spoolQuotaBytes(n: number) {
    this.#s.spoolQuotaBytes = n;
  }

  // ── observation ────────────────────────────────────────────────────────

  totals(): Totals {
    const st = this.#s;
    return {
      recovered: st.recovered,
      ingested: st.ingested,
      acked: st.acked,
      dropped: st.dropped,
      buffered: st.buffered,
      bufferedBytes: st.bufferedBytes,
      spooled: st.spooled,
      spoolBytes: st.spoolBytes,
      inflight: this.#inflight.size,
      heldBytes: st.heldBytes,
      acksIgnored: st.acksIgnored,
      spoolFailures: st.spoolFailures,
      spoolFailing: st.spoolFailing,
      spoolPendingDeletes: this.#tier.pendingDeletes,
      spoolPendingDeleteBytes: this.#tier.pendingDeleteBytes,
    };
  }

  streams(): IterableIterator<Stream> {
    return this.#s.streams.values();
  }

  /** The summed counters of every stream forgotten so far, if any (for totals by stream on /metrics). */
  forgotten(): Stream[] {
    return this.#forgotten === undefined ? [] : [this.#forgotten];
  }

  /** Streams forgotten since start. */
  get forgottenStreams(): number {
    return this.#forgottenCount;
  }

  /**
   * Forgets streams not named in the config that hold nothing (nothing
   * waiting, spooled or in flight) and took no record for `idleMs` (age
   * clock), so `maxStreams` bounds live streams, not history. Their counts
   * stay in `forgotten()`. Returns the names forgotten.
   */
  forgetIdle(age: number, idleMs: number): string[] {
    const gone: string[] = [];
    for (const [name, s] of this.#s.streams) {
      if (s.waiting > 0 || s.inflight > 0 || age - s.lastIngest < idleMs || this.#opts.configuredStream?.(name) === true) continue;
      this.#s.streams.delete(name);
      this.#unconfiguredStreams--;
      this.#forgottenCount++;
      this.#forgotten ??= new Stream(0, '(forgotten)', FORGOTTEN_SPEC);
      addCounters(this.#forgotten, s);
      gone.push(name);
    }
    return gone;
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
    for (const s of this.#s.streams.values()) {
      yield* s.retry;
      yield* s.replay;
      yield* s.ring;
    }
  }

  // ── internals: streams and records ─────────────────────────────────────

  #stream(name: string, sourcePriority: number | undefined, recovering: boolean): Stream | undefined {
    const streams = this.#s.streams;
    let s = streams.get(name);
    if (s !== undefined) {
      if (s.sourcePriority === undefined && sourcePriority !== undefined) this.#respec(s, sourcePriority);
      return s;
    }
    const limit = this.#opts.maxStreamNameBytes;
    if (!recovering && limit !== undefined && name.length > limit / 3 && Buffer.byteLength(name) > limit) {
      this.#rejection = 'stream_name_too_long';
      return undefined;
    }
    const configured = this.#opts.configuredStream?.(name) === true;
    if (!recovering && !configured && this.#unconfiguredStreams >= this.#opts.maxStreams) {
      this.#rejection = 'too_many_streams';
      return undefined;
    }
    if (!configured) this.#unconfiguredStreams++;
    s = new Stream(++this.#streamIds, name, this.#opts.specFor(name, sourcePriority), sourcePriority);
    streams.set(name, s);
    return s;
  }

  #newRecord(stream: Stream, payload: Uint8Array, ts: number, age: number): Rec {
    const rec = new Rec(this.#s.nextSeq++, stream, stream.priority, ts, age, payload);
    stream.ingested++;
    this.#s.ingested++;
    return rec;
  }

  #dropAtIngest(stream: Stream, payload: Uint8Array, ts: number, age: number, reason: DropReason): IngestOutcome {
    this.#s.drop(this.#newRecord(stream, payload, ts, age), reason);
    return 'dropped';
  }
}
