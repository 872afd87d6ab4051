/**
 * A rate limit for per-frame log lines: at most `perWindow` lines per
 * `windowMs`; what is held back is counted and reported with the first line
 * of the next window. Pure: the caller passes `now`.
 */
export interface LogBudgetOptions {
  readonly perWindow: number;
  readonly windowMs: number;
}

export type LogDecision = { readonly log: false } | { readonly log: true; readonly suppressed: number };

export class LogBudget {
  readonly #opts: LogBudgetOptions;
  #windowStart = Number.NEGATIVE_INFINITY;
  #used = 0;
  #suppressed = 0;

  constructor(opts: LogBudgetOptions) {
    this.#opts = opts;
  }

  take(now: number): LogDecision {
    if (now - this.#windowStart >= this.#opts.windowMs) {
      this.#windowStart = now;
      this.#used = 0;
    }
    if (this.#used >= this.#opts.perWindow) {
      this.#suppressed++;
      return { log: false };
    }
    this.#used++;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return { log: true, suppressed };
  }
}
