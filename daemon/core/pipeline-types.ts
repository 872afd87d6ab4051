/**
 * The types of the pipeline's public API: its options, what `ingest`
 * answers, a delivery and the totals. Re-exported by `pipeline.ts`, where
 * callers import them from.
 */
import type { ConsumerState } from './credit-ledger.js';
import type { Rec } from './record.js';
import type { StreamSpec } from './stream.js';
import type { SpoolPort } from '../spool/spool-port.js';

export interface PipelineOptions {
  readonly memoryBudgetBytes: number;
  readonly maxStreams: number;
  readonly maxCredit: number;
  readonly ackTimeoutMs: number;
  /** Deliveries a record gets; when the last one fails it is dropped as `poison`. */
  readonly maxAttempts: number;
  /**
   * The spec of a stream from its name and the priority its source sets
   * (an MQTT subscription's, a serial port's), if any. Asked when a stream
   * is first seen and again by `reconfigure`.
   */
  readonly specFor: (name: string, sourcePriority?: number) => StreamSpec;
  /** Streams named in the config: always given room, outside `maxStreams`, and never forgotten. */
  readonly configuredStream?: (name: string) => boolean;
  /** Longer stream names (UTF-8 bytes) are rejected: every name is a metric label. */
  readonly maxStreamNameBytes?: number;
  /** The first seq to hand out (seq continues across restarts). */
  readonly firstSeq?: number;
  /** The spool; without one, `spill` behaves as `drop-oldest`. */
  readonly spool?: SpoolPort;
  readonly spoolQuotaBytes?: number;
  /** Durable mode: every record is written to the spool as it is ingested. */
  readonly durable?: boolean;
  /** Records moved to the spool per spill (one transaction). */
  readonly spillBatchRecords?: number;
  /** Records read back from the spool at a time. */
  readonly replayBatchRecords?: number;
  /** Share of the memory budget reserved for a priority: others cannot use it. */
  readonly reservedShares?: Readonly<Record<number, number>>;
}

/**
 * `accepted`: the record waits (in memory, or on disk). `dropped`: it became
 * a record and was dropped at once (counted). `rejected`: it never became a
 * record (too many streams); the caller counts it. `blocked`: its stream's
 * policy is `block` and there is no room: the source must hold it back and
 * offer it again when the engine says there is room.
 */
export type IngestOutcome = 'accepted' | 'dropped' | 'rejected' | 'blocked';

/** Why `ingest` rejected a payload (`Pipeline.rejection`): counted by the caller in spillway_input_rejected_total. */
export const REJECTIONS = ['too_many_streams', 'stream_name_too_long'] as const;
export type Rejection = (typeof REJECTIONS)[number];

export interface Delivery {
  readonly consumer: ConsumerState;
  readonly records: Rec[];
}

export interface Totals {
  readonly recovered: number;
  readonly ingested: number;
  readonly acked: number;
  readonly dropped: number;
  readonly buffered: number;
  readonly bufferedBytes: number;
  readonly spooled: number;
  readonly spoolBytes: number;
  readonly inflight: number;
  readonly heldBytes: number;
  readonly acksIgnored: number;
  /** Spool operations that failed (full disk, I/O error) since start. */
  readonly spoolFailures: number;
  /** True from a failed spool operation until a later write succeeds (full disk: until space is free again). */
  readonly spoolFailing: boolean;
  /** Rows of acked or dropped records still to delete from the spool, and their bytes. */
  readonly spoolPendingDeletes: number;
  readonly spoolPendingDeleteBytes: number;
}
