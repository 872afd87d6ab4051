/**
 * Whether the pipeline is making progress, for the systemd watchdog, and the
 * one-line STATUS= text sent on the same tick.
 *
 * The watchdog must not be fed while the daemon is wedged: an event loop that
 * is blocked stops the ticks by itself, but a dispatcher that has stopped
 * sending while the loop still turns is only visible from the figures. The
 * rule (a pure function of the previous state, a sample and `now`):
 *
 *   waiting = 0                         idle by design: nothing to send
 *   sendable = 0                        idle by design: consumers gave no credit
 *                                       (backpressure, or no consumer at all)
 *   moved changed since the last sample progressing
 *   otherwise                           stalled since the last movement;
 *                                       progressing while stalledMs < stallMs
 *
 * Shutdown stops sending with records waiting and credit open: stop the
 * watchdog (`SdNotify.stopping()` does) before `engine.stopSending()`.
 */
import type { Pipeline } from '../core/pipeline.js';

/** What the pipeline looks like at one tick. */
export interface ProgressSample {
  /** Records waiting to be sent: buffered + spooled. */
  readonly waiting: number;
  /** Records the consumers may be sent now: the sum of min(credit, maxCredit - inflight). */
  readonly sendable: number;
  /**
   * A figure that changes whenever a record moves (sent, acked, dropped):
   * acked + dropped + the deliveries of the connected consumers.
   * Compared for equality only, so it need not be monotonic.
   */
  readonly moved: number;
}

export interface ProgressState {
  readonly moved: number;
  /** `now` of the last sample that moved or was idle by design. */
  readonly since: number;
}

export interface ProgressVerdict {
  readonly state: ProgressState;
  readonly progressing: boolean;
  /** How long records have waited with credit open and nothing moving (0 when not stalled). */
  readonly stalledMs: number;
}

export function judgeProgress(prev: ProgressState | undefined, sample: ProgressSample, now: number, stallMs: number): ProgressVerdict {
  const idle = sample.waiting === 0 || sample.sendable === 0;
  if (prev === undefined || idle || sample.moved !== prev.moved) {
    return { state: { moved: sample.moved, since: now }, progressing: true, stalledMs: 0 };
  }
  const stalledMs = Math.max(0, now - prev.since);
  return { state: prev, progressing: stalledMs < stallMs, stalledMs };
}

/** What the watch reads of the pipeline (a fake in tests). */
export type WatchedPipeline = Pick<Pipeline, 'totals' | 'consumers'>;

export interface PipelineWatchOptions {
  readonly pipeline: WatchedPipeline;
  /** consumers.maxCredit in force (SIGHUP may change it): a consumer's in-flight cap. */
  readonly maxCredit: () => number;
  /** limits.memoryBudgetBytes in force, for STATUS=. */
  readonly memoryBudgetBytes: () => number;
  /** Records waiting with credit open and nothing moving for this long = not progressing (health.stallSeconds; SIGHUP may change it). */
  readonly stallMs: () => number;
  /** Monotonic ms. */
  readonly now: () => number;
}

/**
 * The pipeline as the watchdog sees it: `progressing()` and `status()` are
 * the callbacks of `SdNotify.startWatchdog`, and keep the state between ticks.
 */
export class PipelineWatch {
  readonly #opts: PipelineWatchOptions;
  #state: ProgressState | undefined;
  #stalledMs = 0;

  constructor(opts: PipelineWatchOptions) {
    this.#opts = opts;
  }

  /** Takes a sample and judges it; called once per watchdog tick. */
  readonly progressing = (): boolean => {
    const { sample } = this.#figures();
    const verdict = judgeProgress(this.#state, sample, this.#opts.now(), this.#opts.stallMs());
    this.#state = verdict.state;
    this.#stalledMs = verdict.stalledMs;
    return verdict.progressing;
  };

  /** The STATUS= line; `stalled N s` as of the last `progressing()`. */
  readonly status = (): string => formatStatus(this.#figures().status);

  #figures(): { sample: ProgressSample; status: StatusFigures } {
    const t = this.#opts.pipeline.totals();
    const maxCredit = this.#opts.maxCredit();
    let sendable = 0;
    let sent = 0;
    let consumers = 0;
    for (const c of this.#opts.pipeline.consumers()) {
      consumers++;
      if (c.writable) sendable += Math.max(0, Math.min(c.credit, maxCredit - c.inflight));
      sent += c.sent;
    }
    return {
      sample: { waiting: t.buffered + t.spooled, sendable, moved: t.acked + t.dropped + sent },
      status: {
        buffered: t.buffered,
        spooled: t.spooled,
        spoolBytes: t.spoolBytes,
        inflight: t.inflight,
        heldBytes: t.heldBytes,
        memoryBudgetBytes: this.#opts.memoryBudgetBytes(),
        consumers,
        sendable,
        stalledMs: this.#stalledMs,
      },
    };
  }
}

/** The figures of the STATUS= line. */
export interface StatusFigures {
  readonly buffered: number;
  readonly spooled: number;
  readonly spoolBytes: number;
  readonly inflight: number;
  readonly heldBytes: number;
  readonly memoryBudgetBytes: number;
  readonly consumers: number;
  readonly sendable: number;
  /** > 0 while records wait with credit open and nothing moves. */
  readonly stalledMs?: number;
}

/**
 * e.g. `buffered 1200, in flight 40, memory 1.2/32.0 MiB; spooled 0 (0.0 MiB); consumers 2, credit 960`.
 * One line, well under the few hundred characters `systemctl status` shows.
 */
export function formatStatus(f: StatusFigures): string {
  const mib = (n: number) => (n / 1_048_576).toFixed(1);
  const line =
    `buffered ${f.buffered}, in flight ${f.inflight}, memory ${mib(f.heldBytes)}/${mib(f.memoryBudgetBytes)} MiB; ` +
    `spooled ${f.spooled} (${mib(f.spoolBytes)} MiB); consumers ${f.consumers}, credit ${f.sendable}`;
  const stalled = f.stalledMs ?? 0;
  return stalled > 0 ? `stalled ${Math.round(stalled / 1000)} s: ${line}` : line;
}
