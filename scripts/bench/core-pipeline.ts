/**
 * The Pipelines the in-process benches drive, all with one stream (`bench`)
 * and a memory budget that never binds. Stream specs come from the config
 * schema so fields added there get their defaults here too.
 *  - `benchPipeline`: no spool, a ring big enough that nothing is dropped
 *    (the core benches);
 *  - `spoolPipeline`: a spool and the `spill` policy, a ring of the size
 *    asked (the spool benches: spill, replay, durable, stall).
 */
import { streamSpecSchema } from '../../config/schema.js';
import { Pipeline, type PipelineOptions } from '../../daemon/core/pipeline.js';
import type { SpoolPort } from '../../daemon/spool/spool-port.js';
import { MiB } from './stats.js';

const STREAM = 'bench';

const BASE = {
  memoryBudgetBytes: 4096 * MiB,
  maxStreams: 16,
  maxCredit: 10_000,
  ackTimeoutMs: 30_000,
  maxAttempts: 10,
} as const satisfies Partial<PipelineOptions>;

/** `groups` groups g0, g1, ... each selecting every stream (1: the plain v1 path, one group `default`). */
export function groupNames(groups: number): string[] {
  return groups === 1 ? ['default'] : Array.from({ length: groups }, (_, i) => `g${i}`);
}

const groupOptions = (groups: number): Partial<PipelineOptions> =>
  groups === 1 ? {} : { groups: () => groupNames(groups).map((name) => ({ name, selects: () => true })) };

export function benchPipeline(capacityRecords: number, groups = 1): Pipeline {
  const spec = streamSpecSchema.parse({ priority: 1, capacityRecords, capacityBytes: 1024 * MiB, whenFull: 'drop-newest' });
  return new Pipeline({ ...BASE, specFor: () => spec, ...groupOptions(groups) });
}

export interface SpoolPipelineOptions {
  readonly spool: SpoolPort;
  readonly capacityRecords: number;
  /** Records per spill transaction and per read-back (the daemon's default is 256 for both). */
  readonly batchRecords: number;
  readonly durable?: boolean;
  /** Groups selecting every stream (default 1). */
  readonly groups?: number;
}

export function spoolPipeline(o: SpoolPipelineOptions): Pipeline {
  const spec = streamSpecSchema.parse({ priority: 1, capacityRecords: o.capacityRecords, capacityBytes: 1024 * MiB, whenFull: 'spill' });
  return new Pipeline({
    ...BASE,
    specFor: () => spec,
    spool: o.spool,
    durable: o.durable ?? false,
    spillBatchRecords: o.batchRecords,
    replayBatchRecords: o.batchRecords,
    ...groupOptions(o.groups ?? 1),
  });
}

/** One record into the bench stream; `ts` is its receive time (no TTL, so its age is 0). */
export function ingest(p: Pipeline, payload: Uint8Array, ts: number): void {
  const outcome = p.ingest(STREAM, payload, ts, 0);
  if (outcome !== 'accepted') throw new Error(`bench record not accepted: ${outcome}`);
}
