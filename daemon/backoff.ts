/**
 * Reconnect delays for every outgoing connection (MQTT and serial sources,
 * dial mode, the MQTT upstream, the reference client): exponential from
 * `initialMs`, capped at `maxMs`, with "equal jitter" (a uniform pick in the upper half of the step)
 * so that a fleet of gateways whose uplink came back does not reconnect in
 * step. Pure: the caller passes the attempt number (0 for the first retry)
 * and a random number in [0, 1).
 */
export interface BackoffConfig {
  readonly initialMs: number;
  readonly maxMs: number;
}

export function backoffDelay(attempt: number, cfg: BackoffConfig, random: number): number {
  // 2 ** 30 is far past any cap; the clamp keeps the product finite.
  const step = Math.min(cfg.maxMs, cfg.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(step / 2 + (step / 2) * random);
}
