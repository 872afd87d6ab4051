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

/**
 * Whether a delivery that ended without an answer (its ack timeout passed,
 * or the consumer left) failed because of the record, and so counts toward
 * `maxAttempts` (docs/PROTOCOL.md, "Poison"). It did when the consumer was
 * reading: it could take more (writable) and answered, acking or nacking,
 * something after the record was sent. At a consumer that was not reading
 * (stuck, its send buffer full, or silent) the consumer failed, not the
 * record: forgiven, as often as it happens at that consumer. A record that
 * then fails unread at another consumer counts: it fails wherever it goes.
 */
export function failedByRecord(rec: Rec, holder: ConsumerState): boolean {
  if (holder.writable && holder.answers > rec.heldSince) return true;
  const elsewhere = rec.forgivenBy !== 0 && rec.forgivenBy !== holder.id;
  rec.forgivenBy = holder.id;
  return elsewhere;
}

export class InflightTable {
  readonly #bySeq = new Map<number, Rec>();

  get size(): number {
    return this.#bySeq.size;
  }

  add(rec: Rec, holder: ConsumerState, deadline: number): void {
    rec.holder = holder;
    rec.heldSince = holder.answers;
    rec.deadline = deadline;
    rec.stream.inflight++;
    this.#bySeq.set(rec.seq, rec);
  }

  /** The holder acked or nacked it: removes and returns the record if `holder` holds it; else undefined (unknown, foreign or already acked). */
  take(holder: ConsumerState, seq: number): Rec | undefined {
    const rec = this.#bySeq.get(seq);
    if (rec === undefined || rec.holder !== holder) return undefined;
    this.#bySeq.delete(seq);
    holder.answers++;
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
      if (failedByRecord(rec, holder)) rec.failures++;
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
      if (rec.deadline > now) break;
      this.#bySeq.delete(rec.seq);
      rec.stream.inflight--;
      if (rec.holder !== null) {
        rec.holder.inflight--;
        if (failedByRecord(rec, rec.holder)) rec.failures++;
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
