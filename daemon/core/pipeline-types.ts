/**
 * The types of the pipeline's public API: its options, what `ingest`
 * answers, a delivery and the totals. Re-exported by `pipeline.ts`, where
 * callers import them from.
 */
import type { ConsumerState } from './credit-ledger.js';
import type { Rec } from './record.js';
import type { DropCounts, StreamSpec } from './stream.js';
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
  /**
   * The consumer groups (at most 31), read at construction and by
   * `reconfigure()`; absent = one group `default` selecting every stream.
   */
  readonly groups?: () => ReadonlyArray<GroupSpec>;
}

/** One destination: every record of the streams it selects is delivered to it, whatever other groups do. */
export interface GroupSpec {
  readonly name: string;
  /** Asked when a stream is first seen and again by `reconfigure` (applies to records ingested afterwards). */
  readonly selects: (stream: string) => boolean;
  /** Beyond these, the group's own oldest, least important waiting records are dropped for it (`lagging`). */
  readonly maxBacklogRecords?: number;
  readonly maxBacklogBytes?: number;
}

/** A group's counters: recovered + ingested = acked + dropped + backlog + inflight at every quiet moment. */
export interface GroupTotals {
  readonly name: string;
  /** The group's bit index in spool rows (stable across restarts). */
  readonly index: number;
  readonly consumers: number;
  readonly taps: number;
  /** Records the group selects, taken from sources / found in the spool at start. */
  readonly ingested: number;
  readonly recovered: number;
  readonly acked: number;
  readonly dropped: number;
  readonly droppedBy: DropCounts;
  readonly redelivered: number;
  /** Records selected by the group that wait for it (in memory or on disk): not acked, not dropped, not in flight. */
  readonly backlog: number;
  readonly backlogBytes: number;
  readonly inflight: number;
}

/** Per (group, stream) counters, for labelled metrics. */
export interface GroupStreamCounters {
  readonly group: string;
  readonly stream: string;
  readonly acked: number;
  readonly redelivered: number;
  readonly dropped: DropCounts;
}

/**
 * What `Pipeline.streams()` shows of a stream. Without groups it is the
 * stream's `Stream` itself; with several groups the counters are summed
 * over the groups (a drop counts once per group), `ingested` and `spilled`
 * count records once, and the tiers (`buffered`, `spooled`, `ring`) are the
 * fullest group's.
 */
export interface StreamView {
  readonly id: number;
  readonly name: string;
  readonly priority: number;
  readonly spec: StreamSpec;
  readonly ring: { readonly length: number; readonly bytes: number; readonly capacityRecords: number; readonly capacityBytes: number };
  readonly buffered: number;
  readonly bufferedBytes: number;
  readonly spooled: number;
  readonly spooledBytes: number;
  readonly ingested: number;
  readonly acked: number;
  readonly redelivered: number;
  readonly spilled: number;
  readonly dropped: DropCounts;
}

/** What `reconfigure()` changed in the groups. */
export interface GroupChanges {
  readonly added: readonly string[];
  /** Removed groups: their consumers (ids; the caller closes them) and the records released that only they held. */
  readonly removed: ReadonlyArray<{ readonly name: string; readonly consumers: readonly number[]; readonly released: number }>;
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
  /** Records of streams no group selects, discarded at ingest (not in any group's counters). */
  readonly unselected: number;
  /** Spool operations that failed (full disk, I/O error) since start. */
  readonly spoolFailures: number;
  /** Records dropped as `spool_full` because the WAL, waiting for its checkpoint, left no room under the quota. */
  readonly spoolWalRefused: number;
  /** What the last of them said ('' before any). */
  readonly lastSpoolError: string;
  /** True from a failed spool operation until a later write succeeds (full disk: until space is free again). */
  readonly spoolFailing: boolean;
  /** Rows of acked or dropped records still to delete from the spool, and their bytes. */
  readonly spoolPendingDeletes: number;
  readonly spoolPendingDeleteBytes: number;
}
