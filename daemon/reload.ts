/**
 * What a config reload (SIGHUP) may change live: the key paths that differ
 * between the running config and the new one, and which of them only a
 * restart can apply (then the reload is refused whole; daemon/app.ts applies
 * the rest).
 */

/** Keys a reload applies live; any other change needs a restart. */
export const LIVE_KEYS = [
  'log.level',
  'limits.memoryBudgetBytes',
  'limits.reservedShares',
  'limits.maxPayloadBytes',
  'limits.streamIdleSeconds',
  'streamDefaults',
  'streams',
  'consumers.tokens',
  'consumers.helloTimeoutMs',
  'consumers.maxCredit',
  'consumers.ackTimeoutMs',
  'consumers.maxAttempts',
  'consumers.maxBatchRecords',
  'consumers.maxBufferedBytes',
  'consumers.stuckTimeoutMs',
  'spool.quotaBytes',
  'shutdown.drainTimeoutMs',
  'health.stallSeconds',
  'health.uplinkDownSeconds',
  'groups',
];

/** Key paths whose values differ between two configs (array items as `key.0`). */
export function changedKeys(a: unknown, b: unknown, prefix = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';
  if (!isObj(a) || !isObj(b) || Array.isArray(a) !== Array.isArray(b)) return Object.is(a, b) ? [] : [prefix];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) => changedKeys(a[k], b[k], prefix === '' ? k : `${prefix}.${k}`));
}

/** The changed keys a reload cannot apply: neither a live key nor below one. */
export function restartKeys(changed: readonly string[]): string[] {
  return changed.filter((key) => !LIVE_KEYS.some((live) => key === live || key.startsWith(`${live}.`)));
}
