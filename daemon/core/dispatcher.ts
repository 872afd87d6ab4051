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

  /** Decides what to send now (see the module header for the order). */
  dispatch(now: number): Delivery[] {
    const out: Delivery[] = [];
    const st = this.#s;
    if (st.buffered + st.spooled === 0) return out;
    const deadline = now + this.ackTimeoutMs;
    let eligible = this.#ledger.eligible();
    let progress = true;
    while (eligible.length > 0 && progress) {
      progress = false;
      let total = 0;
      for (const c of eligible) total += this.#ledger.available(c);
      const waiting = st.buffered + st.spooled;
      for (const c of eligible) {
        const avail = this.#ledger.available(c);
        let n = Math.min(avail, Math.ceil((waiting * avail) / total));
        let delivery: Delivery | undefined;
        for (; n > 0; n--) {
          const rec = this.#takeNext();
          if (rec === undefined) break;
          this.#send(rec, c, deadline);
          if (delivery === undefined) {
            delivery = out.find((d) => d.consumer === c) ?? { consumer: c, records: [] };
            if (delivery.records.length === 0) out.push(delivery);
          }
          delivery.records.push(rec);
          progress = true;
        }
      }
      eligible = this.#ledger.eligible();
    }
    return out;
  }

  /** A delivery failed (nack, timeout, disconnect): queue it again, or drop it as poison. */
  takeBack(rec: Rec): void {
    if (rec.attempt >= this.maxAttempts) {
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
