/**
 * One stream as one group sees it (its lane): where the group's waiting
 * records of the stream are, oldest tier first, and its counters. Without
 * groups (one group `default`) a lane is the stream.
 *
 *   retry      records taken back (nack, ack timeout, disconnect), by seq;
 *              "back to the queue, ahead of newer records" (docs/PROTOCOL.md)
 *   replay     records read back from the spool, oldest first
 *   backlog    records only on disk, in spans of seqs (after, upto]
 *   ring       fresh records in memory, newer than every span
 *
 * Spilling takes the oldest ring records, so everything on disk is older
 * than the ring and the stream stays FIFO across tiers. A span holds every
 * record of the stream in its seq range that is only on disk: a spill
 * extends the last span unless a ring record left in between (live-first,
 * or the backlog ran empty), in which case it opens a new one; so in
 * durable mode, where the spool also holds records that are in memory, a
 * span never covers one that is still in memory. It can cover the row of
 * one that left memory without it (TTL while the spool refused deletes):
 * a read passes over rows whose delete waits, and a range delete applies
 * the pending deletes first. `retry`, `replay` and `ring` are
 * "buffered"; the backlog is "spooled".
 */
import { DROP_REASONS, type DropReason, type Rec } from './record.js';
import { Ring } from './ring.js';

/** What to do with a record that does not fit its stream's ring. */
export const WHEN_FULL = ['spill', 'drop-oldest', 'drop-newest', 'block'] as const;
export type WhenFull = (typeof WHEN_FULL)[number];

/** The order a stream's backlog (spooled records) is sent in. */
export const REPLAY_MODES = ['fifo', 'live-first'] as const;
export type ReplayMode = (typeof REPLAY_MODES)[number];

export interface StreamSpec {
  readonly priority: number;
  readonly capacityRecords: number;
  readonly capacityBytes: number;
  readonly whenFull: WhenFull;
  readonly replay: ReplayMode;
  /** live-first: share of deliveries given to the backlog while fresh records wait (0..1). */
  readonly backlogShare: number;
  /** Records older than this are dropped as `expired`; 0 = kept until delivered. */
  readonly ttlMs: number;
}

export type DropCounts = Record<DropReason, number>;

export class Stream {
  readonly id: number;
  readonly name: string;
  /** The name as a JSON string, computed once for the wire encoder (the hot path). */
  readonly quotedName: string;
  spec: StreamSpec;
  readonly ring: Ring<Rec>;
  readonly retry: Rec[] = [];
  retryBytes = 0;
  readonly replay: Rec[] = [];
  replayBytes = 0;
  /** Seq ranges (after, upto] of the records only on disk, oldest first. */
  readonly spans: Span[] = [];
  #ringTakenSinceSpill = true;
  /** Records only on disk, and their payload bytes. */
  spooled = 0;
  spooledBytes = 0;
  /** live-first bookkeeping: deliveries from the backlog and from the ring. */
  #fromBacklog = 0;
  #fromRing = 0;
  /** True while the stream sits in the scheduler's queue for its priority. */
  scheduled = false;
  /** Records of the stream sent and not yet acked. */
  inflight = 0;
  /** Age-clock ms of the last record taken from a source (idle streams are forgotten). */
  lastIngest = 0;

  ingested = 0;
  acked = 0;
  redelivered = 0;
  spilled = 0;
  readonly dropped: DropCounts = zeroDrops();

  /** The priority the stream's source sets, if any (kept to recompute the spec on reload). */
  sourcePriority: number | undefined;

  /** The bit of the lane's group in spool rows' `owers`. */
  readonly bit: number;

  constructor(id: number, name: string, spec: StreamSpec, sourcePriority?: number, bit = 1) {
    this.id = id;
    this.bit = bit;
    this.name = name;
    this.quotedName = JSON.stringify(name);
    this.spec = spec;
    this.sourcePriority = sourcePriority;
    this.ring = new Ring<Rec>(spec.capacityRecords, spec.capacityBytes);
  }

  /** A new spec (config reload); the ring keeps its records. */
  reconfigure(spec: StreamSpec, sourcePriority: number | undefined): void {
    this.spec = spec;
    this.sourcePriority = sourcePriority;
    this.ring.resize(spec.capacityRecords, spec.capacityBytes);
  }

  get priority(): number {
    return this.spec.priority;
  }

  /** Records waiting in memory. */
  get buffered(): number {
    return this.retry.length + this.replay.length + this.ring.length;
  }

  get bufferedBytes(): number {
    return this.retryBytes + this.replayBytes + this.ring.bytes;
  }

  /** Records waiting to be sent, in memory or on disk. */
  get waiting(): number {
    return this.buffered + this.spooled;
  }

  /** True when the next record to send from the backlog must be read from disk first. */
  get needsLoad(): boolean {
    return this.retry.length === 0 && this.replay.length === 0 && this.spooled > 0 && !this.#ringFirst();
  }

  /**
   * Takes the next record to deliver: taken-back records first, then the
   * backlog (loaded into `replay` by the caller when `needsLoad`), then the
   * ring; live-first streams serve the ring first and give the backlog its
   * share of deliveries.
   */
  takeNext(): Rec | undefined {
    const r = this.retry.shift();
    if (r !== undefined) {
      this.retryBytes -= r.size;
      return r;
    }
    if (this.#ringFirst()) return this.#fromRingNext();
    const b = this.replay.shift();
    if (b !== undefined) {
      this.replayBytes -= b.size;
      this.#fromBacklog++;
      return b;
    }
    if (this.spooled > 0) return undefined; // the caller loads the backlog first
    return this.#fromRingNext();
  }

  /** Records the seqs (first..last, oldest ring records) just moved to disk. */
  addSpilled(first: number, last: number): void {
    // Extend the last spill only if no ring record left since: then no record
    // of the stream has a seq between the two (everything in flight or taken
    // back is older than the ring).
    const tail = this.spans[this.spans.length - 1];
    if (tail !== undefined && tail.spill && !this.#ringTakenSinceSpill && tail.upto < first) tail.upto = last;
    else this.addSpan(first - 1, last, true);
    this.#ringTakenSinceSpill = false;
  }

  /** Adds a span of records moved to disk out of order (a taken-back record), keeping spans sorted. */
  addSpan(after: number, upto: number, spill = false): void {
    let i = this.spans.length;
    while (i > 0 && (this.spans[i - 1] as Span).after > after) i--;
    this.spans.splice(i, 0, { after, upto, spill });
  }

  /**
   * Hands the replay records back to the backlog (memory is short): they are
   * still on disk, and every record of the stream in their seq range is
   * among them, so they become a span again, ahead of the others.
   */
  giveBackReplay(): Rec[] {
    const back = this.replay.splice(0);
    this.replayBytes = 0;
    if (back.length > 0) this.addSpan((back[0] as Rec).seq - 1, (back[back.length - 1] as Rec).seq);
    return back;
  }

  /** Records that the backlog was read (or deleted) up to `seq` in its first span. */
  advance(seq: number): void {
    const head = this.spans[0];
    if (head === undefined) return;
    head.after = seq;
    if (head.after >= head.upto) this.spans.shift();
  }

  #fromRingNext(): Rec | undefined {
    const rec = this.ring.shift();
    if (rec !== undefined) {
      this.#fromRing++;
      this.#ringTakenSinceSpill = true;
    }
    return rec;
  }

  /** Puts a record taken back from a consumer into seq order. */
  putBack(rec: Rec): void {
    insertBySeq(this.retry, rec);
    this.retryBytes += rec.size;
  }

  /** Adds records read back from disk (oldest first, all newer than what replay holds). */
  addReplay(recs: readonly Rec[]): void {
    for (const rec of recs) {
      this.replay.push(rec);
      this.replayBytes += rec.size;
    }
  }

  /** Removes records from the retry and replay tiers that `drop` says to (TTL). */
  removeWhere(drop: (rec: Rec) => boolean): Rec[] {
    const gone: Rec[] = [];
    for (const [list, key] of [
      [this.retry, 'retryBytes'],
      [this.replay, 'replayBytes'],
    ] as const) {
      for (let i = list.length - 1; i >= 0; i--) {
        const rec = list[i] as Rec;
        if (!drop(rec)) continue;
        list.splice(i, 1);
        this[key] -= rec.size;
        gone.push(rec);
      }
    }
    return gone;
  }

  /** live-first: serve the ring unless the backlog is owed its share. */
  #ringFirst(): boolean {
    if (this.spec.replay !== 'live-first' || this.ring.length === 0) return false;
    const total = this.#fromBacklog + this.#fromRing;
    return this.#fromBacklog >= this.spec.backlogShare * (total + 1);
  }
}

/** Seqs (after, upto] of a stream that are only on disk. `spill`: made by a spill (it may grow). */
export interface Span {
  after: number;
  upto: number;
  readonly spill: boolean;
}

function insertBySeq(q: Rec[], rec: Rec): void {
  let hi = q.length;
  if (hi === 0 || (q[hi - 1] as Rec).seq < rec.seq) {
    q.push(rec);
    return;
  }
  let lo = 0;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((q[mid] as Rec).seq < rec.seq) lo = mid + 1;
    else hi = mid;
  }
  q.splice(lo, 0, rec);
}

/** Adds a stream's counters into `into` (a forgotten stream's counts stay on /metrics). */
export function addCounters(into: Stream, from: Stream): void {
  into.ingested += from.ingested;
  into.acked += from.acked;
  into.redelivered += from.redelivered;
  into.spilled += from.spilled;
  for (const r of DROP_REASONS) into.dropped[r] += from.dropped[r];
}

export function zeroDrops(): DropCounts {
  const out = {} as DropCounts;
  for (const r of DROP_REASONS) out[r] = 0;
  return out;
}
