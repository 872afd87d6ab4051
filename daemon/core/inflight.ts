/**
 * Records sent and not yet acked, by seq.
 *
 * A Map keeps insertion order, and a record is (re)inserted when it is sent
 * with `deadline = now + ackTimeoutMs`; with one ack timeout and a
 * non-decreasing clock, deadlines are therefore sorted in iteration order and
 * `takeExpired()` stops at the first record still in time. A reload that
 * shortens the timeout breaks that order: until the table is empty again the
 * sweep then looks at every record.
 */
import type { ConsumerState } from './credit-ledger.js';
import type { Rec } from './record.js';

/**
 * Whether a delivery that ended without an answer (its ack timeout passed,
 * or the consumer left) failed because of the record, and so counts toward
 * `maxAttempts` (docs/PROTOCOL.md, "Poison"). It did when the consumer was
 * reading past it: it could take more (writable) and acked or nacked a
 * record sent to it after this one. At a consumer that was not (stuck with
 * its send buffer full, or stalled at or before this record) the consumer
 * failed, not the record: forgiven, as often as it happens at that one
 * consumer, and at any number of consumers that stay connected (workers
 * whose own downstream is down). It counts when it also failed unread at
 * another consumer and one of the two left while its socket was being read
 * (`left`, writable): a record that makes consumers die, wherever it goes.
 */
export function failedByRecord(rec: Rec, holder: ConsumerState, left: boolean): boolean {
  if (holder.writable && holder.answeredUpTo > rec.sentAs) return true;
  const died = left && holder.writable;
  const before = rec.forgiven;
  rec.forgiven = died ? -holder.id : holder.id;
  return before !== 0 && Math.abs(before) !== holder.id && (died || before < 0);
}

export class InflightTable {
  readonly #bySeq = new Map<number, Rec>();
  /** Deadlines are in iteration order (none was added before the latest one since the table was empty). */
  #ordered = true;
  #lastDeadline = 0;

  get size(): number {
    return this.#bySeq.size;
  }

  add(rec: Rec, holder: ConsumerState, deadline: number): void {
    rec.holder = holder;
    rec.sentAs = holder.sent;
    rec.deadline = deadline;
    if (this.#bySeq.size === 0) this.#ordered = true;
    else if (deadline < this.#lastDeadline) this.#ordered = false;
    this.#lastDeadline = deadline;
    rec.stream.inflight++;
    this.#bySeq.set(rec.seq, rec);
  }

  /** The holder acked or nacked it: removes and returns the record if `holder` holds it; else undefined (unknown, foreign or already acked). */
  take(holder: ConsumerState, seq: number): Rec | undefined {
    const rec = this.#bySeq.get(seq);
    if (rec === undefined || rec.holder !== holder) return undefined;
    this.#bySeq.delete(seq);
    if (rec.sentAs > holder.answeredUpTo) holder.answeredUpTo = rec.sentAs;
    holder.inflight--;
    rec.stream.inflight--;
    rec.holder = null;
    return rec;
  }

  /**
   * Removes and returns every record `holder` holds, in send order (it
   * left), each counted as failed by the record or not (`failedByRecord`).
   */
  takeAll(holder: ConsumerState): Rec[] {
    const out: Rec[] = [];
    if (holder.inflight === 0) return out;
    for (const rec of this.#bySeq.values()) {
      if (rec.holder !== holder) continue;
      this.#bySeq.delete(rec.seq);
      rec.holder = null;
      rec.stream.inflight--;
      if (failedByRecord(rec, holder, true)) rec.failures++;
      out.push(rec);
    }
    holder.inflight = 0;
    return out;
  }

  /**
   * Removes and returns the records whose deadline has passed, each counted
   * as failed by the record or not (`failedByRecord`).
   */
  takeExpired(now: number): Rec[] {
    const out: Rec[] = [];
    for (const rec of this.#bySeq.values()) {
      if (rec.deadline > now) {
        if (this.#ordered) break;
        continue;
      }
      this.#bySeq.delete(rec.seq);
      rec.stream.inflight--;
      if (rec.holder !== null) {
        rec.holder.inflight--;
        if (failedByRecord(rec, rec.holder, false)) rec.failures++;
      }
      rec.holder = null;
      out.push(rec);
    }
    return out;
  }

  values(): IterableIterator<Rec> {
    return this.#bySeq.values();
  }
}
