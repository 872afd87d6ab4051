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
   * Decides what to send now (see the module header for the order). Shares
   * follow deficit round robin: in each round every eligible consumer is owed
   * a share of what waits in proportion to its available credit, fractions
   * carrying over to later rounds and turns, so a small grant is served in
   * proportion even when records trickle in one at a time.
   */
  dispatch(now: number): Delivery[] {
    const out: Delivery[] = [];
    const st = this.#s;
    if (st.buffered + st.spooled === 0) return out;
    const deadline = now + this.ackTimeoutMs;
    // Deliveries in send order (a consumer served in two rounds gets two), so
    // the records of a stream leave in seq order across consumers too.
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
    for (let eligible = this.#ledger.eligible(); eligible.length > 0; eligible = this.#ledger.eligible()) {
      const waiting = st.buffered + st.spooled;
      if (waiting === 0) break;
      let total = 0;
      for (const c of eligible) total += this.#ledger.available(c);
      const round = Math.min(waiting, total);
      let sentInRound = 0;
      let ranOut = false;
      for (const c of eligible) {
        const avail = this.#ledger.available(c);
        c.deficit = Math.min(avail, c.deficit + (round * avail) / total);
        const n = Math.floor(c.deficit);
        if (n === 0) continue;
        const sent = send(c, n);
        sentInRound += sent;
        if (sent < n) {
          ranOut = true; // nothing more can be sent now
          break;
        }
      }
      if (ranOut) break;
      if (sentInRound === 0) {
        // Every share is below one record: the consumer owed the most gets the next one.
        let owed = eligible[0] as ConsumerState;
        for (const c of eligible) if (c.deficit > owed.deficit) owed = c;
        if (send(owed, 1) === 0) break;
      }
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
