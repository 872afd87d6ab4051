/**
 * A small ring of samples the daemon keeps for the status page's charts:
 * one sample every `intervalMs` (admin.chartSampleSeconds, 5 s by default),
 * enough of them for CHART_SPAN_MS (15 minutes: 181 samples at 5 s). A
 * sample holds cumulative counters and fills, so a rate is the difference
 * of two samples over their time apart; nothing is reset.
 *
 *   delivered = acked + inflight + redelivered   (grows by one per send,
 *   first or repeated: an ack moves a record from inflight to acked, a
 *   take-back leaves inflight and its redelivery comes back in both)
 */
import type { Pipeline } from '../core/pipeline.js';

/** What the charts cover. */
export const CHART_SPAN_MS = 15 * 60_000;

export interface Sample {
  /** Wall-clock ms. */
  readonly at: number;
  readonly ingested: number;
  readonly delivered: number;
  readonly acked: number;
  readonly dropped: number;
  /** Records held now: waiting in memory, only on disk, sent and not yet acked. */
  readonly buffered: number;
  readonly spooled: number;
  readonly inflight: number;
  /** 0..1: the fullest stream ring (records or bytes), held bytes / memory budget, spool bytes / quota. */
  readonly ringFill: number;
  readonly memoryFill: number;
  readonly spoolFill: number;
  /** What waits for each group (spillway_group_backlog_records), by name. */
  readonly backlog: Readonly<Record<string, number>>;
}

export interface SampleInputs {
  readonly memoryBudgetBytes: number;
  readonly spoolQuotaBytes: number;
  readonly at: number;
}

export function takeSample(pipeline: Pick<Pipeline, 'totals' | 'streams' | 'groups'>, inputs: SampleInputs): Sample {
  const t = pipeline.totals();
  let redelivered = 0;
  let ringFill = 0;
  for (const s of pipeline.streams()) {
    redelivered += s.redelivered;
    const { ring } = s;
    ringFill = Math.max(ringFill, ring.length / ring.capacityRecords, ring.bytes / ring.capacityBytes);
  }
  return {
    at: inputs.at,
    ingested: t.ingested,
    delivered: t.acked + t.inflight + redelivered,
    acked: t.acked,
    dropped: t.dropped,
    buffered: t.buffered,
    spooled: t.spooled,
    inflight: t.inflight,
    ringFill: Math.min(1, ringFill),
    memoryFill: inputs.memoryBudgetBytes > 0 ? Math.min(1, t.heldBytes / inputs.memoryBudgetBytes) : 0,
    spoolFill: inputs.spoolQuotaBytes > 0 ? Math.min(1, t.spoolBytes / inputs.spoolQuotaBytes) : 0,
    backlog: Object.fromEntries(pipeline.groups().map((g) => [g.name, g.backlog])),
  };
}

/** The last `capacity` samples, oldest first. */
export class SampleRing {
  readonly capacity: number;
  readonly #items: Sample[] = [];
  #head = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError(`capacity ${capacity}: expected an integer of at least 2`);
    this.capacity = capacity;
  }

  /** Samples kept to cover CHART_SPAN_MS at one per `intervalMs` (both ends included). */
  static forInterval(intervalMs: number): SampleRing {
    return new SampleRing(Math.ceil(CHART_SPAN_MS / intervalMs) + 1);
  }

  push(sample: Sample): void {
    if (this.#items.length < this.capacity) this.#items.push(sample);
    else {
      this.#items[this.#head] = sample;
      this.#head = (this.#head + 1) % this.capacity;
    }
  }

  list(): Sample[] {
    return [...this.#items.slice(this.#head), ...this.#items.slice(0, this.#head)];
  }
}
