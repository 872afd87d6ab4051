/**
 * Reopen delays: exponential from `initialMs`, capped at `maxMs`, with
 * "equal jitter" (a uniform pick in the upper half of the step) so that
 * many gateways replugged at once do not retry in step. Pure: the caller
 * passes the attempt number and a random number in [0, 1).
 */
/** Delays of a reconnect loop, in ms. */
export interface BackoffConfig {
  readonly initialMs: number;
  readonly maxMs: number;
}

export function backoffDelay(attempt: number, cfg: BackoffConfig, random: number): number {
  // 2 ** 30 is far past any cap; the clamp keeps the product finite.
  const step = Math.min(cfg.maxMs, cfg.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(step / 2 + (step / 2) * random);
}
