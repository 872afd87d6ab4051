/**
 * What `loss` notices still owe consumers: a pure ledger, no timers, no
 * sockets; the shell (loss-notices.ts) feeds it counter readings and sends
 * what it hands out.
 *
 *   readings (per stream and reason, the running drop total)
 *        │  delta since the previous reading, spanning (previous reading, now]
 *        ▼
 *   pending: one aggregate per stream+reason, merged while unsent
 *        │  at most `maxPendingEntries`; beyond, a reason's drops fold into stream "*"
 *        ▼
 *   take(now): at most one notice per stream, and per stream at most one per `minGapMs`
 *
 * Bounds: pending ≤ maxPendingEntries + one "*" entry per reason; the last
 * totals are one number per stream+reason that ever dropped (streams are
 * bounded by `limits.maxStreams`).
 */
import type { DropReason } from '../core/record.js';

export interface LossNotice {
  readonly stream: string;
  readonly reason: DropReason;
  readonly count: number;
  /** Wall-clock ms: the drops happened after `from` and no later than `to`. */
  readonly from: number;
  readonly to: number;
}

export interface DropReading {
  readonly stream: string;
  readonly reason: DropReason;
  /** The stream's running total for this reason. */
  readonly total: number;
}

export interface LossLedgerOptions {
  readonly maxPendingEntries: number;
  /** Least time between two notices for one stream (monotonic ms). */
  readonly minGapMs: number;
}

/** The stream name of the catch-all aggregate once `maxPendingEntries` is reached. */
export const FOLDED_STREAM = '*';

const keyOf = (stream: string, reason: DropReason) => `${reason}\u0000${stream}`;

export class LossLedger {
  readonly #opts: LossLedgerOptions;
  readonly #totals = new Map<string, number>();
  readonly #pending = new Map<string, { stream: string; reason: DropReason; count: number; from: number; to: number }>();
  readonly #lastSent = new Map<string, number>();
  #lastReadingAt: number;

  /** `startedAt`: wall-clock ms when the counters were zero (the daemon's start). */
  constructor(opts: LossLedgerOptions, startedAt: number) {
    this.#opts = opts;
    this.#lastReadingAt = startedAt;
  }

  get pendingEntries(): number {
    return this.#pending.size;
  }

  /** Takes one reading of every counter at wall-clock `now`; what grew since the last reading becomes pending. */
  observe(readings: Iterable<DropReading>, now: number): void {
    const from = this.#lastReadingAt;
    for (const { stream, reason, total } of readings) {
      const key = keyOf(stream, reason);
      const delta = total - (this.#totals.get(key) ?? 0);
      if (delta <= 0) continue;
      this.#totals.set(key, total);
      this.#add({ stream, reason, count: delta, from, to: now });
    }
    this.#lastReadingAt = now;
  }

  /** The notices due at monotonic `now`: at most one per stream (its oldest), none for a stream told less than `minGapMs` ago. They leave the ledger. */
  take(now: number): LossNotice[] {
    for (const [stream, at] of this.#lastSent) if (now - at >= this.#opts.minGapMs) this.#lastSent.delete(stream);
    const oldest = new Map<string, string>();
    for (const [key, p] of this.#pending) {
      if (this.#lastSent.has(p.stream)) continue;
      const seen = oldest.get(p.stream);
      if (seen === undefined || p.from < (this.#pending.get(seen)?.from ?? Infinity)) oldest.set(p.stream, key);
    }
    const out: LossNotice[] = [];
    for (const [stream, key] of oldest) {
      const p = this.#pending.get(key);
      if (p === undefined) continue;
      this.#pending.delete(key);
      this.#lastSent.set(stream, now);
      out.push({ ...p });
    }
    return out;
  }

  /** A notice nobody received (every consumer left meanwhile) goes back, merged with anything newer. */
  putBack(notice: LossNotice): void {
    this.#add({ ...notice });
  }

  #add(n: { stream: string; reason: DropReason; count: number; from: number; to: number }): void {
    let key = keyOf(n.stream, n.reason);
    if (!this.#pending.has(key) && this.#pending.size >= this.#opts.maxPendingEntries) {
      key = keyOf(FOLDED_STREAM, n.reason);
      n.stream = FOLDED_STREAM;
    }
    const p = this.#pending.get(key);
    if (p === undefined) {
      this.#pending.set(key, n);
      return;
    }
    p.count += n.count;
    p.from = Math.min(p.from, n.from);
    p.to = Math.max(p.to, n.to);
  }
}
