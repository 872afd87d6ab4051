/**
 * Loss notices: tells connected consumers, per stream and reason, how many
 * records were dropped and when, as
 *
 *   {"type":"loss","stream":"s","reason":"overflow","count":N,"from":MS,"to":MS}
 *
 * a compatible extension of protocol v1 (consumers ignore unknown types).
 * The source of truth is the per-stream drop counters the core keeps
 * (`stream.dropped[reason]`, the same numbers as
 * `spillway_records_dropped_total`); they are read every `intervalMs` and the
 * deltas kept in a bounded ledger (loss-ledger.ts) until some consumer is
 * connected. Every consumer that said hello gets each notice, in both
 * connection modes; a notice is information, never acked.
 */
import type { Logger } from 'pino';
import { DROP_REASONS } from '../core/record.js';
import type { Engine } from '../engine.js';
import type { LossNoticesConfig } from './config.js';
import { LossLedger, type DropReading, type LossNotice } from './loss-ledger.js';

/** Something that can send a daemon message to every consumer connected through it. */
export interface NoticeTarget {
  /** Returns how many consumers got it; with `group`, only that group's consumers (and taps) are sent it. */
  broadcast(text: string, group?: string): number;
}

export interface LossNoticesContext {
  readonly engine: Engine;
  readonly log: Logger;
  readonly targets: readonly NoticeTarget[];
  /** Monotonic ms (the gap between two notices of a stream); default performance.now. */
  readonly now?: () => number;
  /** Wall-clock ms (`from` and `to`); default Date.now. */
  readonly wallNow?: () => number;
}

export function encodeLoss(n: LossNotice, group?: string): string {
  const g = group === undefined ? '' : `,"group":${JSON.stringify(group)}`;
  return `{"type":"loss","stream":${JSON.stringify(n.stream)},"reason":"${n.reason}","count":${n.count},"from":${n.from},"to":${n.to}${g}}`;
}

/** The ledger keys losses by one string: the group and the stream, apart by a NUL (neither holds one). */
const SEP = '\u0000';
const groupStream = (group: string, stream: string) => `${group}${SEP}${stream}`;
/** A key without a group is the ledger's own fold of many streams ("*"): it goes to everyone. */
function split(key: string): { group: string | undefined; stream: string } {
  const i = key.indexOf(SEP);
  return i < 0 ? { group: undefined, stream: key } : { group: key.slice(0, i), stream: key.slice(i + 1) };
}

export class LossNotices {
  readonly #cfg: LossNoticesConfig;
  readonly #ctx: LossNoticesContext;
  readonly #now: () => number;
  readonly #wallNow: () => number;
  readonly #ledger: LossLedger;
  #timer: NodeJS.Timeout | undefined;

  constructor(cfg: LossNoticesConfig, ctx: LossNoticesContext) {
    this.#cfg = cfg;
    this.#ctx = ctx;
    this.#now = ctx.now ?? (() => performance.now());
    this.#wallNow = ctx.wallNow ?? (() => Date.now());
    this.#ledger = new LossLedger({ maxPendingEntries: cfg.maxPendingEntries, minGapMs: cfg.intervalMs }, this.#wallNow());
  }

  get pendingEntries(): number {
    return this.#ledger.pendingEntries;
  }

  async start(): Promise<void> {
    if (!this.#cfg.enabled || this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.tick(), this.#cfg.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One reading of the counters, then whatever is due goes to every connected consumer. */
  tick(): void {
    this.#ledger.observe(this.#readings(), this.#wallNow());
    for (const notice of this.#ledger.take(this.#now())) {
      // Each group hears of its own losses (a record two groups held and dropped counts for each).
      const { group, stream } = split(notice.stream);
      const text = encodeLoss({ ...notice, stream }, group);
      let reached = 0;
      for (const t of this.#ctx.targets) reached += t.broadcast(text, group);
      if (reached === 0) this.#ledger.putBack(notice);
      else this.#ctx.log.debug({ event: 'loss_notice', ...notice, stream, group, consumers: reached }, 'loss notice sent');
    }
  }

  *#readings(): IterableIterator<DropReading> {
    for (const c of this.#ctx.engine.pipeline.groupStreams()) {
      for (const reason of DROP_REASONS) {
        const total = c.dropped[reason];
        if (total > 0) yield { stream: groupStream(c.group, c.stream), reason, total };
      }
    }
  }
}

/** `consumers.lossNotices`, sent through every target (the listener, the dialers). */
export function createLossNotices(cfg: LossNoticesConfig, ctx: LossNoticesContext): LossNotices {
  return new LossNotices(cfg, ctx);
}
