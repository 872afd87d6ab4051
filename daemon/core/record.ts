/**
 * A record and the vocabulary of its outcomes.
 *
 * Every record the pipeline accepts ends in exactly one outcome: acked by a
 * consumer, or dropped with a `DropReason` (docs/PROTOCOL.md, guarantee 2).
 */
import type { ConsumerState } from './credit-ledger.js';
import type { Stream } from './stream.js';

/**
 * `corrupt`: owed records that could not be salvaged from a damaged spool at
 * start (counted once, as recovered and dropped, so conservation holds).
 * `lagging`: dropped for one group only, whose backlog passed its
 * `maxBacklogRecords` / `maxBacklogBytes` (other groups keep the record).
 */
export const DROP_REASONS = ['overflow', 'spool_full', 'expired', 'poison', 'corrupt', 'lagging'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/**
 * Estimated heap cost of one record beyond its payload bytes: the Rec object,
 * the Buffer view and its share of a pool slab. Measured by `npm run bench`
 * (core-heap.ts: 365.8 bytes of heap and array buffers per buffered 100-byte
 * record, 2026-12-02); used for the memory budget.
 */
export const RECORD_OVERHEAD_BYTES = 266;

/** `Rec.forgiven` of a record read back from the spool that some earlier delivery failed unread (at a consumer not known, that did not die). */
export const FORGIVEN_UNKNOWN = Number.MAX_SAFE_INTEGER;

export class Rec {
  readonly seq: number;
  readonly stream: Stream;
  /**
   * The stream's priority at ingest, fixed: it keys the reserved shares'
   * accounting (`heldByPrio`), so a record is released where it was charged.
   * What is sent, kept or made room for goes by the stream's priority now
   * (`stream.priority`: a reload may change it).
   */
  readonly prio: number;
  /** Receive time, ms since the epoch (wall clock, for consumers). */
  readonly ts: number;
  /** Age-clock ms at ingest (monotonic within a run; for TTL). */
  readonly born: number;
  readonly payload: Uint8Array;
  /** Payload bytes: what the ring's `capacityBytes` counts. */
  readonly size: number;
  /** Deliveries so far; the next delivery is `attempt + 1`. */
  attempt = 0;
  /**
   * Deliveries that failed because of the record (`failedByRecord` in
   * inflight.ts): nacks, ack timeouts and departures of a consumer that was
   * reading past it, and unread failures at two consumers of which one left
   * holding it while its socket was read (died of it).
   * When it reaches `maxAttempts` the record is dropped as `poison`. Kept in
   * the spool with the record (per group), so a spill or a restart keeps it.
   */
  failures = 0;
  /** While in flight: its place among the deliveries to its holder (`ConsumerState.sent` once sent). */
  sentAs = 0;
  /**
   * The consumer that last failed this record without reading it, so was
   * forgiven (inflight.ts, `failedByRecord`): its id, negated when it left
   * while its socket was read (it may have died of this record); 0: none;
   * FORGIVEN_UNKNOWN: read back from the spool after a delivery that did
   * not count (which consumer is not kept on disk). One number: a field
   * costs every record 8 bytes.
   */
  forgiven = 0;
  /** Durable mode: accepted and not yet covered by a group commit. */
  uncommitted = false;
  /** The consumer holding it while in flight, else null. */
  holder: ConsumerState | null = null;
  /** Monotonic ms after which an unacked delivery is taken back. */
  deadline = 0;
  /** True while a copy is in the spool (durable mode, or read back from it) that this record's group owes. */
  onDisk = false;
  /**
   * With several groups: what the group copies of one ingested record share
   * (one payload, one charge against the memory budget, one spool row).
   * Null when the record has one owner (one group), as without groups.
   */
  shared: SharedRec | null = null;

  constructor(seq: number, stream: Stream, prio: number, ts: number, born: number, payload: Uint8Array) {
    this.seq = seq;
    this.stream = stream;
    this.prio = prio;
    this.ts = ts;
    this.born = born;
    this.payload = payload;
    this.size = payload.length;
  }

  /** What the record costs against the global memory budget. */
  get cost(): number {
    return this.size + RECORD_OVERHEAD_BYTES;
  }
}

/**
 * One ingested record as several groups hold it: each group has its own
 * `Rec` (its delivery state, in its own tiers) over the same payload.
 *
 * Invariants: `refs` = the group copies in memory (the budget is charged
 * once, while refs > 0); `owers` = the bits of the groups that have neither
 * acked nor dropped it (a group whose copy went to disk keeps its bit), so a
 * spool row written for it carries `owers`, and when `owers` reaches 0 every
 * bit of that row has been released.
 */
export class SharedRec {
  refs = 0;
  owers: number;
  /** The group copies made at ingest (to mark them on disk when the row is written). */
  readonly recs: Rec[] = [];
  /** True once a tap was offered it (taps see a record at most once). */
  tapped = false;

  constructor(owers: number) {
    this.owers = owers;
  }
}
