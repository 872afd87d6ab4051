/**
 * A pipeline and engine in the test process, built as daemon/app.ts builds
 * them (memory spool, silent log), for tests of the consumer endpoints and
 * upstreams that need no daemon process.
 */
import { pino, type Logger } from 'pino';
import { Pipeline } from '../../daemon/core/pipeline.js';
import type { StreamSpec } from '../../daemon/core/stream.js';
import { Engine } from '../../daemon/engine.js';
import { createShellCounters, type ShellCounters } from '../../daemon/observability/counters.js';
import { MemorySpool } from '../../daemon/spool/memory-spool.js';

export const DEFAULT_SPEC: StreamSpec = { priority: 1, capacityRecords: 100_000, capacityBytes: 64 << 20, whenFull: 'spill', replay: 'fifo', backlogShare: 0.2, ttlMs: 0 };

export interface EngineOptions {
  readonly spec?: Partial<StreamSpec>;
  readonly maxCredit?: number;
  readonly ackTimeoutMs?: number;
  readonly maxAttempts?: number;
  readonly memoryBudgetBytes?: number;
}

export interface TestEngine {
  readonly engine: Engine;
  readonly pipeline: Pipeline;
  readonly log: Logger;
  readonly counters: ShellCounters;
  /** The context the consumer endpoints and upstreams take. */
  readonly ctx: { readonly engine: Engine; readonly log: Logger; readonly counters: ShellCounters };
  /** Ingests `payloads` into `stream`; returns their seqs (those accepted). */
  ingest(stream: string, payloads: readonly string[]): number[];
  stop(): void;
}

export function startEngine(opts: EngineOptions = {}): TestEngine {
  const spec = { ...DEFAULT_SPEC, ...opts.spec };
  const ackTimeoutMs = opts.ackTimeoutMs ?? 30_000;
  const pipeline = new Pipeline({
    memoryBudgetBytes: opts.memoryBudgetBytes ?? 256 << 20,
    maxStreams: 64,
    maxCredit: opts.maxCredit ?? 10_000,
    ackTimeoutMs,
    maxAttempts: opts.maxAttempts ?? 10,
    specFor: () => spec,
    spool: new MemorySpool(),
  });
  const log = pino({ level: 'silent' });
  const engine = new Engine(pipeline, { log, now: () => performance.now(), wallNow: () => Date.now(), ageNow: () => performance.now() });
  engine.start(ackTimeoutMs);
  const counters = createShellCounters();
  return {
    engine,
    pipeline,
    log,
    counters,
    ctx: { engine, log, counters },
    ingest: (stream, payloads) => {
      const seqs: number[] = [];
      for (const p of payloads) {
        const seq = pipeline.nextSeq;
        if (engine.ingest(stream, Buffer.from(p)) === 'accepted') seqs.push(seq);
      }
      return seqs;
    },
    stop: () => engine.stop(),
  };
}
