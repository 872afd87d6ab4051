/**
 * The Pipeline both core benches drive: one stream (`bench`), no spool, a
 * ring big enough that nothing is dropped, and a memory budget that never
 * binds. Stream specs come from the config schema so fields added there get
 * their defaults here too.
 */
import { streamSpecSchema } from '../../config/schema.js';
import { Pipeline } from '../../daemon/core/pipeline.js';
import { MiB } from './stats.js';

const STREAM = 'bench';

export function benchPipeline(capacityRecords: number): Pipeline {
  const spec = streamSpecSchema.parse({ priority: 1, capacityRecords, capacityBytes: 1024 * MiB, whenFull: 'drop-newest' });
  return new Pipeline({
    memoryBudgetBytes: 4096 * MiB,
    maxStreams: 16,
    maxCredit: 10_000,
    ackTimeoutMs: 30_000,
    maxAttempts: 10,
    specFor: () => spec,
  });
}

/** One record into the bench stream; `ts` is its receive time (no TTL, so its age is 0). */
export function ingest(p: Pipeline, payload: Uint8Array, ts: number): void {
  const outcome = p.ingest(STREAM, payload, ts, 0);
  if (outcome !== 'accepted') throw new Error(`bench record not accepted: ${outcome}`);
}
