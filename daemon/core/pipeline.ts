/**
 * The core's public face: streams, sources, consumer groups, consumers and
 * taps, acks, reload and observation, composed from the groups
 * (`group.ts`: per group its lanes, credit ledger, in-flight table,
 * dispatcher, and its part of the memory budget and the spool tier), the
 * streams they share (`stream-registry.ts`) and the shared state
 * (`pipeline-state.ts`); ingest lives in `ingest.ts`, its types in
 * `pipeline-types.ts`. No sockets, timers or clock reads: methods that need
 * time take it (`now` monotonic ms for ack deadlines, `age` age-clock ms for
 * TTL), and the spool is a synchronous port (SQLite in the daemon, memory in
 * the property tests).
 *
 * Without `groups` there is one group `default` selecting every stream and
 * everything behaves as before groups. With several, each record is held
 * once (one payload in memory, one spool row) with the set of groups that
 * still owe it, and leaves when the last of them has acked or dropped it.
 *
 * Invariants after every method (checked by the property tests), per group:
 *   recovered + ingested = acked + dropped + buffered + spooled + inflight
 *   for each consumer: sent <= granted, inflight <= maxCredit
 *   first deliveries of a fifo stream leave in increasing seq
 *   no record leaves while a more important one waits for that group
 * and for the pipeline: heldBytes <= memoryBudgetBytes, spoolBytes <= spoolQuotaBytes.
 */
import type { ConsumerState } from './credit-ledger.js';
import { CreditLedger } from './credit-ledger.js';
import { buffered, DEFAULT_GROUP, type Group } from './group.js';
import { GroupSet } from './group-set.js';
import { Ingest } from './ingest.js';
import { SharedState } from './pipeline-state.js';
import { SPOOL_ROW_OVERHEAD_BYTES } from '../spool/spool-port.js';
import type { Rec } from './record.js';
import { StreamEntry } from './stream-registry.js';
import type {
  Delivery,
  GroupChanges,
  GroupSpec,
  GroupStreamCounters,
  GroupTotals,
  IngestOutcome,
  PipelineOptions,
  Rejection,
  StreamView,
  Totals,
} from './pipeline-types.js';
import { addCounters, Stream, type StreamSpec } from './stream.js';
import { streamView } from './stream-view.js';

export type {
  Delivery,
  GroupChanges,
  GroupSpec,
  GroupStreamCounters,
  GroupTotals,
  IngestOutcome,
  PipelineOptions,
  Rejection,
  StreamView,
  Totals,
} from './pipeline-types.js';

/** The spec of the stand-in that keeps the counts of forgotten streams. */
const FORGOTTEN_SPEC: StreamSpec = { priority: 9, capacityRecords: 1, capacityBytes: 1, whenFull: 'drop-newest', replay: 'fifo', backlogShare: 0, ttlMs: 0 };
const ALL_STREAMS: ReadonlyArray<GroupSpec> = [{ name: DEFAULT_GROUP, selects: () => true }];

export class Pipeline {
  readonly #opts: PipelineOptions;
  readonly #sh: SharedState;
  readonly #gs: GroupSet;
  readonly #streams = new Map<string, StreamEntry>();
  readonly #ingest: Ingest;
  /** Consumers by id: their group. */
  readonly #consumerGroup = new Map<number, Group>();
  readonly #taps: CreditLedger;
  readonly #tapGroup = new Map<number, Group | undefined>();
  #limits: { maxCredit: number; ackTimeoutMs: number; maxAttempts: number };
  /** Streams not named in the config (what `maxStreams` bounds). */
  #unconfiguredStreams = 0;
  /** The counters of streams forgotten while idle, so totals by stream still balance. */
  #forgotten: Stream | undefined;
  #forgottenCount = 0;
  #rejection: Rejection = 'too_many_streams';
  #streamIds = 0;

  constructor(opts: PipelineOptions) {
    this.#opts = opts;
    this.#sh = new SharedState({
      spool: opts.spool,
      memoryBudgetBytes: opts.memoryBudgetBytes,
      spoolQuotaBytes: opts.spoolQuotaBytes ?? Number.MAX_SAFE_INTEGER,
      reservedShares: opts.reservedShares ?? {},
      spillBatchRecords: opts.spillBatchRecords ?? 256,
      replayBatchRecords: opts.replayBatchRecords ?? 256,
      firstSeq: opts.firstSeq ?? 1,
    });
    this.#limits = { maxCredit: opts.maxCredit, ackTimeoutMs: opts.ackTimeoutMs, maxAttempts: opts.maxAttempts };
    this.#taps = new CreditLedger(opts.maxCredit);
    this.#ingest = new Ingest(this.#sh, opts.durable === true && opts.spool !== undefined);
    this.#gs = new GroupSet(this.#sh, this.#limits);
    this.#gs.apply(opts.groups?.() ?? ALL_STREAMS, this.#streams.values());
  }

  /** The seq the next accepted record gets. */
  get nextSeq(): number {
    return this.#sh.nextSeq;
  }

  /**
   * Takes over what the spool holds at start: every stored record becomes a
   * spooled record of each group that owes it (`recovered`), and seq
   * continues above them. Rows owed only by groups no longer configured are
   * released first (`releasedAtStart`, for the caller to log). Owed records
   * that a damaged spool could not give back (`lost`) are recovered and
   * dropped at once (`corrupt`) for each group that selects their stream.
   * Returns the records recovered (each once).
   */
  recover(lost: ReadonlyArray<{ readonly stream: string; readonly records: number }> = []): number {
    const spool = this.#sh.spool;
    let n = 0;
    if (spool !== undefined) {
      // Rows released here were never counted against the quota: it is counted from what stays.
      const counted = this.#sh.spoolBytes;
      this.#gs.settle();
      this.#sh.spoolBytes = counted;
      const streamFor = (g: Group) => (name: string) => (this.#entry(name, undefined, true) as StreamEntry).lane(g);
      for (const g of this.#gs.list) g.tier.recover(spool, streamFor(g));
      const rows = spool.summary();
      for (const s of rows) n += s.records;
      if (this.#sh.multi) for (const s of rows) this.#sh.spoolBytes += s.payloadBytes + s.records * SPOOL_ROW_OVERHEAD_BYTES;
      // A quota lowered while the daemon was stopped: the least important, oldest rows go now.
      this.#gs.list[0]?.tier.fitQuota();
    }
    for (const { stream, records } of lost) {
      if (records <= 0) continue;
      const e = this.#entry(stream, undefined, true) as StreamEntry;
      for (const g of this.#gs.list) {
        if ((e.mask & g.bit) === 0) continue;
        e.lane(g).dropped.corrupt += records;
        g.s.dropped += records;
        g.s.recovered += records;
      }
    }
    for (const g of this.#gs.list) if (g.limited) this.#ingest.shed(g);
    return n;
  }

  /** Groups no longer configured whose records the spool held at start, released by `recover`. */
  get releasedAtStart(): ReadonlyArray<{ readonly group: string; readonly records: number }> {
    return this.#gs.releasedAtStart;
  }

  /** Why the last `ingest` that answered `rejected` did. */
  get rejection(): Rejection {
    return this.#rejection;
  }

  // ── sources ────────────────────────────────────────────────────────────

  /**
   * Takes a payload from a source. `ts` is the wall-clock receive time
   * (for consumers), `age` the age clock (for TTL). Drops, of it or of older
   * and less important records it displaced, are counted on their groups' lanes.
   */
  ingest(streamName: string, payload: Uint8Array, ts: number, age: number, sourcePriority?: number): IngestOutcome {
    const e = this.#entry(streamName, sourcePriority, false);
    if (e === undefined) return 'rejected';
    e.lastIngest = age;
    return this.#ingest.ingest(e, this.#gs.list, payload, ts, age);
  }

  /** True when a record of `size` bytes would be taken by the stream now (for `block` sources). */
  hasRoom(streamName: string, size: number): boolean {
    const e = this.#streams.get(streamName);
    if (e !== undefined) return this.#ingest.hasRoom(e, this.#gs.list, size);
    const admitted = this.#unconfiguredStreams < this.#opts.maxStreams || this.#opts.configuredStream?.(streamName) === true;
    return admitted && this.#ingest.fits(this.#gs.list, size, this.#opts.specFor(streamName, undefined).priority);
  }

  // ── consumers ──────────────────────────────────────────────────────────

  /**
   * A consumer joins a group (default `default`); undefined when that group
   * is not declared. A tap (`tap: true`) sees records of every stream as
   * they are first delivered to any group, within its credit, at most once,
   * and never holds one; `group` then only names where it is counted.
   */
  connect(id: number, name: string, opts: { readonly group?: string; readonly tap?: boolean } = {}): ConsumerState | undefined {
    const g = this.#gs.get(opts.group ?? DEFAULT_GROUP);
    if (opts.tap === true) {
      const c = this.#taps.add(id, name);
      this.#tapGroup.set(id, opts.group === undefined ? undefined : g);
      if (g !== undefined && opts.group !== undefined) g.taps++;
      return c;
    }
    if (g === undefined) return undefined;
    this.#consumerGroup.set(id, g);
    return g.ledger.add(id, name);
  }

  /** Takes back everything the consumer held; returns how many. */
  disconnect(id: number): number {
    if (this.#taps.remove(id) !== undefined) {
      const g = this.#tapGroup.get(id);
      if (g !== undefined) g.taps--;
      this.#tapGroup.delete(id);
      return 0;
    }
    const g = this.#consumerGroup.get(id);
    if (g === undefined) return 0;
    this.#consumerGroup.delete(id);
    const c = g.ledger.remove(id);
    if (c === undefined) return 0;
    const held = g.inflight.takeAll(c);
    for (const rec of held) g.dispatcher.takeBack(rec);
    if (g.limited) this.#ingest.shed(g);
    return held.length;
  }

  /** A consumer's transport is (not) able to take more now: while not, it is sent nothing and its timeouts do not count against records. */
  setWritable(id: number, writable: boolean): void {
    const c = this.consumer(id);
    if (c !== undefined) c.writable = writable;
  }

  credit(id: number, n: number): void {
    const t = this.#taps.get(id);
    if (t !== undefined) {
      this.#taps.grant(t, n);
      return;
    }
    const g = this.#consumerGroup.get(id);
    const c = g?.ledger.get(id);
    if (g !== undefined && c !== undefined) g.ledger.grant(c, n);
  }

  /** Acks in the consumer's group; returns how many seqs were ignored (unknown, foreign, already acked, a tap's). */
  ack(id: number, seqs: readonly number[]): number {
    const g = this.#consumerGroup.get(id);
    const c = g?.ledger.get(id);
    let ignored = 0;
    for (const seq of seqs) {
      const rec = g === undefined || c === undefined ? undefined : g.inflight.take(c, seq);
      if (rec === undefined || g === undefined) {
        ignored++;
        continue;
      }
      rec.stream.acked++;
      rec.uncommitted = false;
      g.s.acked++;
      g.budget.release(rec);
      g.tier.forgetOnDisk(rec);
    }
    this.#sh.acksIgnored += ignored;
    return ignored;
  }

  /** Returns how many seqs were ignored. */
  nack(id: number, seqs: readonly number[]): number {
    const g = this.#consumerGroup.get(id);
    const c = g?.ledger.get(id);
    let ignored = 0;
    for (const seq of seqs) {
      const rec = g === undefined || c === undefined ? undefined : g.inflight.take(c, seq);
      if (rec === undefined || g === undefined) ignored++;
      else {
        rec.failures++;
        g.dispatcher.takeBack(rec);
      }
    }
    if (g?.limited === true) this.#ingest.shed(g);
    this.#sh.acksIgnored += ignored;
    return ignored;
  }

  /** Takes back deliveries whose ack timeout has passed; returns how many. */
  expire(now: number): number {
    let n = 0;
    for (const g of this.#gs.list) {
      const late = g.inflight.takeExpired(now);
      for (const rec of late) g.dispatcher.takeBack(rec);
      if (late.length > 0 && g.limited) this.#ingest.shed(g);
      n += late.length;
    }
    return n;
  }

  /** Drops waiting records older than their stream's TTL (age clock), in every group; returns how many (a record per group). */
  expireTtl(age: number): number {
    let n = 0;
    for (const g of this.#gs.list) {
      for (const s of g.s.streams.values()) {
        const ttl = s.spec.ttlMs;
        if (ttl <= 0) continue;
        const cutoff = age - ttl;
        const old = (rec: Rec) => rec.born < cutoff;
        for (const rec of s.removeWhere(old)) {
          g.s.forgetBuffered(rec);
          g.budget.discard(rec, 'expired');
          n++;
        }
        for (let head = s.ring.peek(); head !== undefined && old(head); head = s.ring.peek()) {
          g.budget.dropFromRing(s, 'expired');
          n++;
        }
        n += g.tier.expireSpooled(s, cutoff);
      }
    }
    return n;
  }

  /**
   * Decides what to send now, group by group. Within a group consumers are
   * served the most available credit first, each a share of the waiting
   * records in proportion to its credit; records leave most important
   * priority first, round robin between the streams of a priority, oldest
   * tier first within a stream. Taps then get the first deliveries.
   */
  dispatch(now: number): Delivery[] {
    const out: Delivery[] = [];
    for (const g of this.#gs.list) {
      const sent = g.dispatcher.dispatch(now);
      if (sent.length === 0) continue;
      out.push(...sent);
      if (this.#taps.size > 0) this.#offerTaps(sent, out);
    }
    return out;
  }

  /** Taps see each record at most once, at its first delivery to any group, while they have credit. */
  #offerTaps(sent: readonly Delivery[], out: Delivery[]): void {
    const taps = this.#taps.eligible();
    if (taps.length === 0) return;
    const byTap = new Map<ConsumerState, Rec[]>();
    for (const d of sent) {
      for (const rec of d.records) {
        if (rec.attempt !== 1) continue;
        const sh = rec.shared;
        if (sh !== null) {
          if (sh.tapped) continue;
          sh.tapped = true;
        }
        for (const t of taps) {
          if (t.credit <= 0 || !t.writable) continue;
          t.credit--;
          t.sent++;
          let list = byTap.get(t);
          if (list === undefined) byTap.set(t, (list = []));
          list.push(rec);
        }
      }
    }
    for (const [consumer, records] of byTap) out.push({ consumer, records });
  }

  /** Durable mode: records accepted and not yet committed. */
  get uncommitted(): number {
    return this.#ingest.uncommitted;
  }

  /**
   * Durable mode's group commit: every record accepted since the last one
   * that is still owed and not yet on disk is written in one transaction
   * (one row per record, whatever the groups). True when they are all
   * durable now (their sources may be acknowledged); false when the write
   * failed: they stay in memory, not durable, and their sources must not be
   * told they are safe.
   */
  commit(): boolean {
    return this.#ingest.commit(this.#gs.list[0]?.tier);
  }

  /** Deletes (releases) in the spool what was acked or dropped since the last call, in one transaction per group. */
  flushSpool(): void {
    for (const g of this.#gs.list) {
      g.tier.flush();
      if (g.limited) this.#ingest.shed(g); // a bound the failing spool kept from holding
    }
    this.#gs.settle();
    this.#gs.flushRemoved();
  }

  /**
   * At shutdown: writes every record still owed and not yet on disk (rings,
   * taken-back and in-flight records, of every group; one row per record)
   * to the spool, and records the delivery attempts of those that are (one
   * group only). The pipeline must not be used afterwards. Returns how many
   * records were written.
   */
  persist(): number {
    this.flushSpool(); // the group to bit map and released groups first, so the next start reads the rows right
    let n = 0;
    for (const g of this.#gs.list) n += g.tier.persist(() => [...buffered(g), ...g.inflight.values()]);
    return n;
  }

  // ── configuration (reload) ─────────────────────────────────────────────

  /**
   * Applies a new config: every stream's spec (`specFor` answers from it
   * now: priority, ring capacity, policy, replay mode, TTL), the limits set
   * before it (budget, quota: what passes them goes at once, `#fitBounds`), and the
   * groups (`groups()`): a new group starts at the next record, a removed
   * one releases what only it held (its consumers are returned, for the
   * caller to close), a changed selector applies to records ingested
   * afterwards.
   */
  reconfigure(): GroupChanges {
    const changes = this.#gs.apply(this.#opts.groups?.() ?? ALL_STREAMS, this.#streams.values());
    for (const r of changes.removed) for (const id of r.consumers) this.#consumerGroup.delete(id);
    // A group added now starts at the next record: rows a former group of its bit left behind are not its own.
    for (const name of changes.added) this.#gs.tryReleaseBit((this.#gs.get(name) as Group).index);
    this.#gs.settle();
    for (const e of this.#streams.values()) this.#respec(e, e.sourcePriority);
    for (const g of this.#gs.list) if (g.limited) this.#ingest.shed(g);
    this.#fitBounds();
    return changes;
  }

  /**
   * What memory and the spool hold is brought within the bounds a reload
   * set, at once rather than at the next record: rings above their new
   * capacity give their oldest records by their policy, then the budget
   * and the quota make room as for a record more important than any
   * (`MemoryBudget.fitBudget`, `SpoolTier.fitQuota`).
   */
  #fitBounds(): void {
    const groups = this.#gs.list;
    for (const g of groups) for (const lane of g.s.streams.values()) g.budget.fitRing(lane);
    const first = groups[0];
    if (first === undefined) return;
    first.budget.fitBudget();
    first.tier.fitQuota();
  }

  #respec(e: StreamEntry, sourcePriority: number | undefined): void {
    e.spec = this.#opts.specFor(e.name, sourcePriority);
    e.sourcePriority = sourcePriority;
    for (const g of this.#gs.list) {
      const lane = e.lanes[g.index];
      if (lane === undefined) continue;
      const before = lane.priority;
      lane.reconfigure(e.spec, sourcePriority);
      if (lane.priority !== before) g.s.scheduler.reprioritize(lane);
    }
  }

  set ackTimeoutMs(ms: number) {
    this.#limits.ackTimeoutMs = ms;
    for (const g of this.#gs.list) g.dispatcher.ackTimeoutMs = ms;
  }

  set maxCredit(n: number) {
    this.#limits.maxCredit = n;
    this.#taps.maxCredit = n;
    for (const g of this.#gs.list) g.ledger.maxCredit = n;
  }

  set maxAttempts(n: number) {
    this.#limits.maxAttempts = n;
    for (const g of this.#gs.list) g.dispatcher.maxAttempts = n;
  }

  set memoryBudgetBytes(n: number) {
    this.#sh.memoryBudgetBytes = n;
  }

  set reservedShares(shares: Readonly<Record<number, number>>) {
    this.#sh.reservedShares = shares;
  }

  set spoolQuotaBytes(n: number) {
    this.#sh.spoolQuotaBytes = n;
  }

  // ── observation ────────────────────────────────────────────────────────

  /**
   * Pipeline totals; each held record counts once in `heldBytes` and
   * `spoolBytes`. With one group everything is that group's (conservation
   * holds on these totals). With several, `recovered`, `ingested`, `acked`,
   * `dropped` are summed over groups (a record counts once per group), and
   * `buffered`, `bufferedBytes`, `spooled`, `inflight` are the fullest
   * group's; per-group figures are in `groups()`.
   */
  totals(): Totals {
    const sh = this.#sh;
    let recovered = 0;
    let ingested = 0;
    let acked = 0;
    let dropped = 0;
    let buffered = 0;
    let bufferedBytes = 0;
    let spooled = 0;
    let inflight = 0;
    let pendingDeletes = 0;
    let pendingDeleteBytes = 0;
    [pendingDeletes, pendingDeleteBytes] = this.#gs.retiringPending();
    for (const g of this.#gs.list) {
      const s = g.s;
      recovered += s.recovered;
      ingested += s.ingested;
      acked += s.acked;
      dropped += s.dropped;
      buffered = Math.max(buffered, s.buffered);
      bufferedBytes = Math.max(bufferedBytes, s.bufferedBytes);
      spooled = Math.max(spooled, s.spooled);
      inflight = Math.max(inflight, g.inflight.size);
      pendingDeletes += g.tier.pendingDeletes;
      pendingDeleteBytes += g.tier.pendingDeleteBytes;
    }
    return {
      recovered,
      ingested,
      acked,
      dropped,
      buffered,
      bufferedBytes,
      spooled,
      spoolBytes: sh.spoolBytes,
      inflight,
      heldBytes: sh.heldBytes,
      acksIgnored: sh.acksIgnored,
      unselected: sh.unselected,
      spoolFailures: sh.spoolFailures,
      spoolWalRefused: sh.walRefusedDrops,
      lastSpoolError: sh.lastSpoolError,
      spoolFailing: sh.spoolFailing,
      spoolPendingDeletes: pendingDeletes,
      spoolPendingDeleteBytes: pendingDeleteBytes,
    };
  }

  /** Per-group counters, in config order. */
  groups(): GroupTotals[] {
    return this.#gs.list.map((g) => g.totals());
  }

  /** Per (group, stream) counters (forgotten streams under `(forgotten)`); without groups they sum to the per-stream counters. */
  *groupStreams(): IterableIterator<GroupStreamCounters> {
    for (const g of this.#gs.list) yield* g.streamCounters();
  }

  /** A group's lanes (its view of each stream it has records of), for status and tests. */
  *groupLanes(name: string): IterableIterator<Stream> {
    const g = this.#gs.get(name);
    if (g !== undefined) yield* g.s.streams.values();
  }

  /** Taps connected. */
  get taps(): number {
    return this.#taps.size;
  }

  /** The streams: without groups (one group) its lanes, as before groups; with several, a view summed over groups. */
  *streams(): IterableIterator<StreamView> {
    const only = this.#gs.list.length === 1 ? this.#gs.list[0] : undefined;
    if (only !== undefined) {
      yield* only.s.streams.values();
      return;
    }
    for (const e of this.#streams.values()) yield streamView(e);
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
   * waiting, spooled or in flight for any group) and took no record for
   * `idleMs` (age clock), so `maxStreams` bounds live streams, not history.
   * Their counts stay in `forgotten()`. Returns the names forgotten.
   */
  forgetIdle(age: number, idleMs: number): string[] {
    const gone: string[] = [];
    for (const [name, e] of this.#streams) {
      if (!e.idle || age - e.lastIngest < idleMs || this.#opts.configuredStream?.(name) === true) continue;
      this.#streams.delete(name);
      this.#unconfiguredStreams--;
      this.#forgottenCount++;
      this.#forgotten ??= new Stream(0, '(forgotten)', FORGOTTEN_SPEC);
      for (const g of this.#gs.list) {
        const lane = e.lanes[g.index];
        if (lane === undefined) continue;
        addCounters(this.#forgotten, lane);
        g.forget(lane);
      }
      if (this.#gs.list.length > 1) {
        this.#forgotten.ingested += e.ingested - sumLanes(e, (l) => l.ingested);
      }
      gone.push(name);
    }
    return gone;
  }

  /** Consumers (not taps) of every group. */
  *consumers(): IterableIterator<ConsumerState> {
    for (const g of this.#gs.list) yield* g.ledger.values();
  }

  consumer(id: number): ConsumerState | undefined {
    return this.#taps.get(id) ?? this.#consumerGroup.get(id)?.ledger.get(id);
  }

  /** Records sent and not yet acked, group by group, in send order. */
  *inflightRecords(): IterableIterator<Rec> {
    for (const g of this.#gs.list) yield* g.inflight.values();
  }

  /** Records waiting in memory, group by group, stream by stream, oldest tier first. */
  *bufferedRecords(): IterableIterator<Rec> {
    for (const g of this.#gs.list) yield* buffered(g);
  }

  // ── internals: streams ─────────────────────────────────────────────────

  #entry(name: string, sourcePriority: number | undefined, recovering: boolean): StreamEntry | undefined {
    const streams = this.#streams;
    let e = streams.get(name);
    if (e !== undefined) {
      if (e.sourcePriority === undefined && sourcePriority !== undefined) this.#respec(e, sourcePriority);
      return e;
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
    e = new StreamEntry(++this.#streamIds, name, this.#opts.specFor(name, sourcePriority), sourcePriority, configured);
    e.select(this.#gs.list);
    streams.set(name, e);
    return e;
  }
}


function sumLanes(e: StreamEntry, f: (lane: Stream) => number): number {
  let n = 0;
  for (const lane of e.lanes) if (lane !== undefined) n += f(lane);
  return n;
}

