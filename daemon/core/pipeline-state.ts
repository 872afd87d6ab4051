/**
 * The state the pipeline's parts share: the streams and their scheduler, the
 * spool port, the limits a reload may change, and the counters behind
 * `Pipeline.totals()`. Plain fields, no logic beyond the two counting steps
 * every part uses; `Pipeline`, `MemoryBudget` and `SpoolTier` each take it
 * explicitly.
 *
 * The counters balance after every pipeline method:
 *   recovered + ingested = acked + dropped + buffered + spooled + inflight
 */
import type { DropReason, Rec } from './record.js';
import { Scheduler } from './scheduler.js';
import type { Stream } from './stream.js';
import type { SpoolPort } from '../spool/spool-port.js';

export interface PipelineStateOptions {
  readonly spool: SpoolPort | undefined;
  readonly memoryBudgetBytes: number;
  readonly spoolQuotaBytes: number;
  readonly reservedShares: Readonly<Record<number, number>>;
  readonly spillBatchRecords: number;
  readonly replayBatchRecords: number;
  readonly firstSeq: number;
}

export class PipelineState {
  readonly streams = new Map<string, Stream>();
  readonly scheduler = new Scheduler();
  /** The spool; without one, `spill` behaves as `drop-oldest`. */
  readonly spool: SpoolPort | undefined;
  /** Records moved to the spool per spill (one transaction). */
  readonly spillBatch: number;
  /** Records read back from the spool at a time. */
  readonly replayBatch: number;
  memoryBudgetBytes: number;
  spoolQuotaBytes: number;
  reservedShares: Readonly<Record<number, number>>;
  /** The seq the next accepted record gets (seq continues across restarts). */
  nextSeq: number;

  recovered = 0;
  ingested = 0;
  acked = 0;
  dropped = 0;
  buffered = 0;
  bufferedBytes = 0;
  spooled = 0;
  /** Bytes on disk (payload + row overhead), against the quota. */
  spoolBytes = 0;
  /** Cost of every record in memory, waiting or in flight, against the budget. */
  heldBytes = 0;
  readonly heldByPrio = new Map<number, number>();
  acksIgnored = 0;
  /** Spool operations that failed (full disk, I/O error) since start. */
  spoolFailures = 0;
  /** True from a failed spool operation until a later write succeeds. */
  spoolFailing = false;

  constructor(o: PipelineStateOptions) {
    this.spool = o.spool;
    this.memoryBudgetBytes = o.memoryBudgetBytes;
    this.spoolQuotaBytes = o.spoolQuotaBytes;
    this.reservedShares = o.reservedShares;
    this.spillBatch = o.spillBatchRecords;
    this.replayBatch = o.replayBatchRecords;
    this.nextSeq = o.firstSeq;
  }

  /** A record left the waiting tiers in memory (taken, dropped, spilled). */
  forgetBuffered(rec: Rec): void {
    this.buffered--;
    this.bufferedBytes -= rec.size;
  }

  /** Counts a drop of a record not in memory. */
  drop(rec: Rec, reason: DropReason): void {
    rec.stream.dropped[reason]++;
    this.dropped++;
  }
}
