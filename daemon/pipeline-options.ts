/**
 * Config → the core's options: the one place that says how a config becomes
 * a `Pipeline` (the daemon builds its pipeline with it, and so do the tests
 * that need a pipeline shaped like the daemon's).
 *
 * `config` is read on every call of `specFor`, so a reload (which swaps what
 * it returns) reaches streams on `Pipeline.reconfigure()`.
 */
import { declaredGroups, selects } from '../config/groups.js';
import type { Config } from '../config/schema.js';
import type { GroupSpec, PipelineOptions } from './core/pipeline.js';
import type { StreamSpec } from './core/stream.js';

export function pipelineOptions(config: () => Config, rest: Partial<PipelineOptions> = {}): PipelineOptions {
  const c = config();
  return {
    memoryBudgetBytes: c.limits.memoryBudgetBytes,
    maxStreams: c.limits.maxStreams,
    maxCredit: c.consumers.maxCredit,
    ackTimeoutMs: c.consumers.ackTimeoutMs,
    maxAttempts: c.consumers.maxAttempts,
    specFor: (name, sourcePriority) => streamSpec(config(), name, sourcePriority),
    configuredStream: (name) => Object.hasOwn(config().streams, name),
    maxStreamNameBytes: c.limits.maxStreamNameBytes,
    spoolQuotaBytes: c.spool.quotaBytes,
    durable: c.durability === 'durable',
    spillBatchRecords: c.spool.spillBatchRecords,
    replayBatchRecords: c.spool.replayBatchRecords,
    reservedShares: reservedShares(c),
    // Without a `groups` key: one group `default` selecting every stream (plain v1). Read again on reload.
    groups: () => groupSpecs(config()),
    ...rest,
  };
}

/** A stream's spec: the defaults, the priority its source sets, then `streams.<name>` (own keys only). */
export function streamSpec(config: Config, name: string, sourcePriority?: number): StreamSpec {
  return {
    ...config.streamDefaults,
    ...(sourcePriority === undefined ? {} : { priority: sourcePriority }),
    ...(Object.hasOwn(config.streams, name) ? config.streams[name] : {}),
  };
}

/** `groups` as the core takes them: a name, a selector over stream names, the backlog bounds. */
export function groupSpecs(config: Config): GroupSpec[] {
  return declaredGroups(config.groups).map(([name, g]) => ({
    name,
    selects: (stream: string) => selects(g, stream),
    ...(g.maxBacklogRecords === undefined ? {} : { maxBacklogRecords: g.maxBacklogRecords }),
    ...(g.maxBacklogBytes === undefined ? {} : { maxBacklogBytes: g.maxBacklogBytes }),
  }));
}

/** `limits.reservedShares` keyed by priority number. */
export function reservedShares(config: Config): Record<number, number> {
  return Object.fromEntries(Object.entries(config.limits.reservedShares).map(([p, share]) => [Number(p), share]));
}
