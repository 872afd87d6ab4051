/**
 * One stream: its ring of fresh records, its queue of records taken back for
 * redelivery, and its counters.
 *
 * Records taken back (nack, ack timeout, disconnect) wait in `retry`, sorted
 * by seq and served before the ring: they go "back to the queue, ahead of
 * newer records of their stream" (spec/PROTOCOL.md). Both are "buffered".
 */
import { DROP_REASONS, type DropReason, type Rec } from './record.js';
import { Ring } from './ring.js';

/** What to do with a record that does not fit its stream's ring. */
export const WHEN_FULL = ['drop-oldest', 'drop-newest'] as const;
// Seam: `spill` (move the oldest to the SQLite spool) and `block` (refuse the
// record so the source holds it back) join this union with the spool and the
// source backpressure; the pipeline's switch on it is exhaustive.
export type WhenFull = (typeof WHEN_FULL)[number];

export interface StreamSpec {
  readonly priority: number;
  readonly capacityRecords: number;
  readonly capacityBytes: number;
  readonly whenFull: WhenFull;
}

export type DropCounts = Record<DropReason, number>;

export class Stream {
  readonly id: number;
  readonly name: string;
  spec: StreamSpec;
  ring: Ring<Rec>;
  readonly retry: Rec[] = [];
  retryBytes = 0;
  /** True while the stream sits in the scheduler's queue for its priority. */
  scheduled = false;

  ingested = 0;
  acked = 0;
  redelivered = 0;
  spilled = 0;
  readonly dropped: DropCounts = zeroDrops();

  constructor(id: number, name: string, spec: StreamSpec) {
    this.id = id;
    this.name = name;
    this.spec = spec;
    this.ring = new Ring<Rec>(spec.capacityRecords, spec.capacityBytes);
  }

  get priority(): number {
    return this.spec.priority;
  }

  /** Records waiting in memory to be sent. */
  get waiting(): number {
    return this.retry.length + this.ring.length;
  }

  get bufferedBytes(): number {
    return this.retryBytes + this.ring.bytes;
  }

  /** The oldest waiting record, without taking it. */
  peekOldest(): Rec | undefined {
    const r = this.retry[0];
    const f = this.ring.peek();
    if (r === undefined) return f;
    if (f === undefined) return r;
    return r.seq < f.seq ? r : f;
  }

  /** Takes the next record to deliver: taken-back records first. */
  takeNext(): Rec | undefined {
    const r = this.retry.shift();
    if (r !== undefined) {
      this.retryBytes -= r.size;
      return r;
    }
    return this.ring.shift();
  }

  /** Takes the oldest waiting record (to evict it). */
  takeOldest(): Rec | undefined {
    const oldest = this.peekOldest();
    if (oldest === undefined) return undefined;
    if (oldest === this.retry[0]) {
      this.retry.shift();
      this.retryBytes -= oldest.size;
      return oldest;
    }
    return this.ring.shift();
  }

  /** Puts a record taken back from a consumer into seq order. */
  putBack(rec: Rec): void {
    const q = this.retry;
    let i = q.length;
    if (i === 0 || (q[i - 1] as Rec).seq < rec.seq) q.push(rec);
    else {
      let lo = 0;
      while (lo < i) {
        const mid = (lo + i) >>> 1;
        if ((q[mid] as Rec).seq < rec.seq) lo = mid + 1;
        else i = mid;
      }
      q.splice(lo, 0, rec);
    }
    this.retryBytes += rec.size;
  }
}

export function zeroDrops(): DropCounts {
  const out = {} as DropCounts;
  for (const r of DROP_REASONS) out[r] = 0;
  return out;
}
