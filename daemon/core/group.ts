/**
 * One consumer group: its lanes (`PipelineState`), scheduler, credit
 * ledger, in-flight table, dispatcher, and its share of the memory budget
 * and the spool tier (the budget and the quota are shared, `SharedState`).
 * Each group has its own queue position, credit, ack timeout, redelivery,
 * attempt count and poison limit; consumers of one group share its records
 * by credit.
 *
 * Invariant (per group, after every pipeline method):
 *   recovered + ingested = acked + dropped + buffered + spooled + inflight
 */
import { CreditLedger } from './credit-ledger.js';
import { Dispatcher } from './dispatcher.js';
import { InflightTable } from './inflight.js';
import { MemoryBudget } from './memory-budget.js';
import { PipelineState, type GroupParts, type SharedState } from './pipeline-state.js';
import type { GroupSpec, GroupStreamCounters, GroupTotals } from './pipeline-types.js';
import { DROP_REASONS, type Rec } from './record.js';
import { SpoolTier } from './spool-tier.js';
import { addCounters, Stream, zeroDrops, type DropCounts } from './stream.js';

/** The group of a pipeline without `groups`. */
export const DEFAULT_GROUP = 'default';
/** Bits of one integer mask in spool rows. */
export const MAX_GROUPS = 31;

export interface GroupLimits {
  readonly maxCredit: number;
  readonly ackTimeoutMs: number;
  readonly maxAttempts: number;
}

export class Group implements GroupParts {
  readonly name: string;
  /** 0..30: the group's bit in spool rows is 1 << index (stable across restarts, kept in the spool). */
  readonly index: number;
  readonly bit: number;
  spec: GroupSpec;
  readonly s: PipelineState;
  readonly budget: MemoryBudget;
  readonly tier: SpoolTier;
  readonly ledger: CreditLedger;
  readonly inflight = new InflightTable();
  readonly dispatcher: Dispatcher;
  /** Taps connected under this group's name (they see every group's first deliveries). */
  taps = 0;
  /** The counters of this group's lanes of forgotten streams. */
  forgotten: Stream | undefined;

  constructor(shared: SharedState, spec: GroupSpec, index: number, limits: GroupLimits) {
    this.name = spec.name;
    this.spec = spec;
    this.index = index;
    this.bit = 2 ** index;
    this.s = new PipelineState(shared, this.bit);
    this.budget = new MemoryBudget(this.s);
    this.tier = new SpoolTier(this.s, this.budget);
    this.budget.attach(this.tier);
    this.ledger = new CreditLedger(limits.maxCredit);
    this.dispatcher = new Dispatcher({
      state: this.s,
      ledger: this.ledger,
      inflight: this.inflight,
      budget: this.budget,
      tier: this.tier,
      ackTimeoutMs: limits.ackTimeoutMs,
      maxAttempts: limits.maxAttempts,
    });
  }

  /** True when the group bounds its backlog. */
  get limited(): boolean {
    return this.spec.maxBacklogRecords !== undefined || this.spec.maxBacklogBytes !== undefined;
  }

  /** Payload bytes waiting for the group, in memory and on disk. */
  backlogBytes(): number {
    let n = 0;
    for (const lane of this.s.streams.values()) n += lane.bufferedBytes + lane.spooledBytes;
    return n;
  }

  /** Keeps the counts of a lane whose stream is forgotten. */
  forget(lane: Stream): void {
    this.s.streams.delete(lane.name);
    this.forgotten ??= new Stream(0, '(forgotten)', lane.spec, undefined, this.bit);
    addCounters(this.forgotten, lane);
  }

  totals(): GroupTotals {
    const s = this.s;
    const droppedBy: DropCounts = zeroDrops();
    let redelivered = 0;
    for (const lane of this.#lanes()) {
      redelivered += lane.redelivered;
      for (const r of DROP_REASONS) droppedBy[r] += lane.dropped[r];
    }
    return {
      name: this.name,
      index: this.index,
      consumers: this.ledger.size,
      taps: this.taps,
      ingested: s.ingested,
      recovered: s.recovered,
      acked: s.acked,
      dropped: s.dropped,
      droppedBy,
      redelivered,
      backlog: s.buffered + s.spooled,
      backlogBytes: this.backlogBytes(),
      inflight: this.inflight.size,
    };
  }

  *streamCounters(): IterableIterator<GroupStreamCounters> {
    for (const lane of this.#lanes()) yield { group: this.name, stream: lane.name, acked: lane.acked, redelivered: lane.redelivered, dropped: lane.dropped };
  }

  *#lanes(): IterableIterator<Stream> {
    yield* this.s.streams.values();
    if (this.forgotten !== undefined) yield this.forgotten;
  }
}

/** A group's records waiting in memory, stream by stream, oldest tier first. */
export function* buffered(g: Group): IterableIterator<Rec> {
  for (const s of g.s.streams.values()) {
    yield* s.retry;
    yield* s.replay;
    yield* s.ring;
  }
}
