/**
 * The dispatcher: which waiting record goes to which consumer now, and what
 * happens to a delivery that failed (queued again, or dropped as `poison`
 * after `maxAttempts`). Consumers get a share of the waiting records in
 * proportion to their available credit; records leave most important
 * priority first, round robin between the streams of a priority, oldest tier
 * first within a stream.
 *
 * Invariants: for each consumer sent <= granted and inflight <= maxCredit;
 * first deliveries of a fifo stream leave in increasing seq; no record
 * leaves while a more important one waits.
 */
import type { ConsumerState, CreditLedger } from './credit-ledger.js';
import type { InflightTable } from './inflight.js';
import type { MemoryBudget } from './memory-budget.js';
import type { PipelineState } from './pipeline-state.js';
import type { Delivery } from './pipeline-types.js';
import type { Rec } from './record.js';
import type { SpoolTier } from './spool-tier.js';
import type { Stream } from './stream.js';

export interface DispatcherParts {
  readonly state: PipelineState;
  readonly ledger: CreditLedger;
  readonly inflight: InflightTable;
  readonly budget: MemoryBudget;
  readonly tier: SpoolTier;
  readonly ackTimeoutMs: number;
  readonly maxAttempts: number;
}

export class Dispatcher {
  readonly #s: PipelineState;
  readonly #ledger: CreditLedger;
  readonly #inflight: InflightTable;
  readonly #budget: MemoryBudget;
  readonly #tier: SpoolTier;
  ackTimeoutMs: number;
  /** Deliveries a record gets; when the last one fails it is dropped as `poison`. */
  maxAttempts: number;

  constructor(parts: DispatcherParts) {
    this.#s = parts.state;
    this.#ledger = parts.ledger;
    this.#inflight = parts.inflight;
    this.#budget = parts.budget;
    this.#tier = parts.tier;
    this.ackTimeoutMs = parts.ackTimeoutMs;
    this.maxAttempts = parts.maxAttempts;
  }

  /**
   * Decides what to send now (see the module header for the order). With
   * fewer records waiting than credit open, shares follow deficit round
   * robin: every eligible consumer is owed its part of what waits in
   * proportion to its available credit, the fraction carried to the next
   * dispatch, so a small grant is served in proportion even when records
   * trickle in one at a time.
   */
  dispatch(now: number): Delivery[] {
    const out: Delivery[] = [];
    const st = this.#s;
    if (st.buffered + st.spooled === 0) return out;
    const deadline = now + this.ackTimeoutMs;
    // Deliveries in send order, so the records of a stream leave in seq order across consumers too.
    let last: Delivery | undefined;
    const send = (c: ConsumerState, n: number): number => {
      let sent = 0;
      for (; sent < n; sent++) {
        const rec = this.#takeNext();
        if (rec === undefined) break;
        this.#send(rec, c, deadline);
        if (last?.consumer !== c) {
          last = { consumer: c, records: [] };
          out.push(last);
        }
        last.records.push(rec);
      }
      c.deficit -= sent;
      return sent;
    };
    const eligible = this.#ledger.eligible();
    if (eligible.length === 0) return out;
    const waiting = st.buffered + st.spooled;
    let total = 0;
    for (const c of eligible) total += this.#ledger.available(c);
    if (waiting >= total) {
      // Enough for everyone: every consumer gets all its credit allows.
      for (const c of eligible) {
        const avail = this.#ledger.available(c);
        const sent = send(c, avail);
        c.deficit = 0;
        if (sent < avail) break; // nothing more can be taken now
      }
      return out;
    }
    // Fewer records than credit: each consumer is owed waiting * its credit / all credit, the
    // fraction carried to the next dispatch (deficit round robin), so over time every consumer
    // gets its share however the records trickle in. What the whole parts leave goes one each
    // to the consumers owed the most.
    const plan = new Map<ConsumerState, number>();
    let planned = 0;
    for (const c of eligible) {
      const avail = this.#ledger.available(c);
      c.deficit = Math.max(-1, Math.min(avail, c.deficit + (waiting * avail) / total));
      const n = Math.min(avail, Math.max(0, Math.floor(c.deficit)));
      plan.set(c, n);
      planned += n;
    }
    for (let rest = waiting - planned; rest > 0; rest--) {
      let owed: ConsumerState | undefined;
      for (const c of eligible) {
        const n = plan.get(c) as number;
        if (n >= this.#ledger.available(c)) continue;
        if (owed === undefined || c.deficit - n > owed.deficit - (plan.get(owed) as number)) owed = c;
      }
      if (owed === undefined) break;
      plan.set(owed, (plan.get(owed) as number) + 1);
    }
    for (const c of eligible) {
      const n = plan.get(c) as number;
      if (n > 0 && send(c, n) < n) break; // nothing more can be taken now
    }
    return out;
  }

  /**
   * A delivery came back (nack, timeout, disconnect): queue it again, or drop
   * it as poison once `maxAttempts` deliveries failed because of it.
   */
  takeBack(rec: Rec): void {
    if (rec.failures >= this.maxAttempts) {
      this.#budget.discard(rec, 'poison');
      return;
    }
    rec.stream.putBack(rec);
    this.#s.buffered++;
    this.#s.bufferedBytes += rec.size;
    this.#s.scheduler.enqueue(rec.stream);
  }

  #takeNext(): Rec | undefined {
    const scheduler = this.#s.scheduler;
    let stalled: Set<Stream> | undefined;
    for (;;) {
      const stream = scheduler.peek();
      if (stream === undefined) return undefined;
      if (stream.needsLoad && !this.#tier.load(stream)) {
        // Its backlog cannot come into memory now (memory holds only more
        // important records). Streams of the same priority may go on; a less
        // important one may not, nor may we go round in circles.
        stalled ??= new Set();
        stalled.add(stream);
        scheduler.rotate(stream);
        const next = scheduler.peek();
        if (next === undefined || stalled.has(next) || next.priority > stream.priority) return undefined;
        continue;
      }
      const rec = stream.takeNext();
      scheduler.rotate(stream);
      if (rec === undefined) continue;
      this.#s.forgetBuffered(rec);
      return rec;
    }
  }

  #send(rec: Rec, c: ConsumerState, deadline: number): void {
    rec.attempt++;
    if (rec.attempt > 1) rec.stream.redelivered++;
    this.#ledger.consume(c);
    this.#inflight.add(rec, c, deadline);
  }
}
