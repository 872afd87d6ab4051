/**
 * Records sent and not yet acked, by seq.
 *
 * A Map keeps insertion order, and a record is (re)inserted when it is sent
 * with `deadline = now + ackTimeoutMs`; with one ack timeout and a
 * non-decreasing clock, deadlines are therefore sorted in iteration order and
 * `expired()` stops at the first record still in time. (After a reload that
 * shortens the timeout a few records may be taken back one sweep late.)
 */
import type { ConsumerState } from './credit-ledger.js';
import type { Rec } from './record.js';

export class InflightTable {
  readonly #bySeq = new Map<number, Rec>();

  get size(): number {
    return this.#bySeq.size;
  }

  add(rec: Rec, holder: ConsumerState, deadline: number): void {
    rec.holder = holder;
    rec.deadline = deadline;
    rec.stream.inflight++;
    this.#bySeq.set(rec.seq, rec);
  }

  /** Removes and returns the record if `holder` holds it; else undefined (unknown, foreign or already acked). */
  take(holder: ConsumerState, seq: number): Rec | undefined {
    const rec = this.#bySeq.get(seq);
    if (rec === undefined || rec.holder !== holder) return undefined;
    this.#bySeq.delete(seq);
    holder.inflight--;
    rec.stream.inflight--;
    rec.holder = null;
    return rec;
  }

  /**
   * Removes and returns every record `holder` holds, in send order (it left).
   * Leaving while reading counts as a failed delivery of each; leaving stuck does not.
   */
  takeAll(holder: ConsumerState): Rec[] {
    const out: Rec[] = [];
    if (holder.inflight === 0) return out;
    for (const rec of this.#bySeq.values()) {
      if (rec.holder !== holder) continue;
      this.#bySeq.delete(rec.seq);
      rec.holder = null;
      rec.stream.inflight--;
      if (holder.writable) rec.failures++;
      out.push(rec);
    }
    holder.inflight = 0;
    return out;
  }

  /**
   * Removes and returns the records whose deadline has passed. A timeout at
   * a consumer that was reading counts as a failed delivery; at one that is
   * stuck (not writable) it does not.
   */
  takeExpired(now: number): Rec[] {
    const out: Rec[] = [];
    for (const rec of this.#bySeq.values()) {
      if (rec.deadline > now) break;
      this.#bySeq.delete(rec.seq);
      rec.stream.inflight--;
      if (rec.holder !== null) {
        rec.holder.inflight--;
        if (rec.holder.writable) rec.failures++;
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
