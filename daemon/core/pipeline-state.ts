/**
 * The state the pipeline's parts share, in two layers:
 *
 *   SharedState     one per pipeline: the spool port, the limits a reload may
 *                   change, the memory held and the spool bytes (each record
 *                   counted once), the seq counter, and the groups (for the
 *                   choices made across them: which record leaves memory or
 *                   the spool first).
 *   PipelineState   one per group: its streams (its lanes: a `Stream` per
 *                   stream it selects, with its tiers) and their scheduler,
 *                   and the counters behind its totals. Shared fields are
 *                   reached through it, so the parts written for one group
 *                   (`MemoryBudget`, `SpoolTier`, `Dispatcher`) read the same.
 *
 * Plain fields, no logic beyond the two counting steps every part uses.
 *
 * The counters of each group balance after every pipeline method:
 *   recovered + ingested = acked + dropped + buffered + spooled + inflight
 */
import type { MemoryBudget } from './memory-budget.js';
import type { DropReason, Rec } from './record.js';
import { Scheduler } from './scheduler.js';
import type { SpoolTier } from './spool-tier.js';
import type { Stream } from './stream.js';
import { SpoolError, type SpoolPort } from '../spool/spool-port.js';

export interface PipelineStateOptions {
  readonly spool: SpoolPort | undefined;
  readonly memoryBudgetBytes: number;
  readonly spoolQuotaBytes: number;
  readonly reservedShares: Readonly<Record<number, number>>;
  readonly spillBatchRecords: number;
  readonly replayBatchRecords: number;
  readonly firstSeq: number;
}

/** What the other groups' parts expose for the choices made across groups. */
export interface GroupParts {
  readonly s: PipelineState;
  readonly budget: MemoryBudget;
  readonly tier: SpoolTier;
}

export class SharedState {
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
  /** Bytes on disk (payload + row overhead), against the quota; a row shared by groups counts once. */
  spoolBytes = 0;
  /** Cost of every record in memory, waiting or in flight, against the budget; a record shared by groups counts once. */
  heldBytes = 0;
  readonly heldByPrio = new Map<number, number>();
  acksIgnored = 0;
  /** Records of streams no group selects: taken from the source (it was told they are safe) and held by no one. */
  unselected = 0;
  /** Spool operations that failed (full disk, I/O error) since start. */
  spoolFailures = 0;
  /** What the last failed spool operation said (the reserve, ENOSPC, EFBIG, busy...): the shell logs it. */
  lastSpoolError = '';
  /** True from a failed spool operation until a later write succeeds (or a delete or release, with room: `spoolWorked`). */
  spoolFailing = false;
  /** A spill was refused (quota, full disk) since the caller last cleared it: what gives way instead is `spool_full`. */
  spillRefused = false;
  /** The last spool write was refused because the WAL, waiting for its checkpoint, left no room under the quota (spool-tier.ts). */
  walRefused = false;
  /** Records dropped as `spool_full` because of that: the checkpoints fall behind the spill (a slow card, a loaded machine). */
  walRefusedDrops = 0;
  /** The highest seq written to the spool since start (a write of older ones goes between rows: spool-port.ts `walFrames`). */
  lastWrittenSeq = 0;
  /** The groups, live ones only (for choices across them). */
  groups: GroupParts[] = [];
  /**
   * True while more than one group is configured: spool rows are then
   * released bit by bit (a row goes when no group owes it); with one group a
   * release is a plain delete, as before groups.
   */
  multi = false;

  constructor(o: PipelineStateOptions) {
    this.spool = o.spool;
    this.memoryBudgetBytes = o.memoryBudgetBytes;
    this.spoolQuotaBytes = o.spoolQuotaBytes;
    this.reservedShares = o.reservedShares;
    this.spillBatch = o.spillBatchRecords;
    this.replayBatch = o.replayBatchRecords;
    this.nextSeq = o.firstSeq;
  }

  /** Counts a failed spool operation (the shell reports it on /healthz and in the log); rethrows what is not a spool error. */
  spoolFailed(err: unknown): void {
    if (!(err instanceof SpoolError)) throw err;
    this.spoolFailures++;
    this.spoolFailing = true;
    this.lastSpoolError = err.message;
  }

  /**
   * A delete or release went through: while the spool was failing, it is
   * healthy again if the disk would take a write too (/healthz is 200 after a
   * full disk is cleared and drained without waiting for a spill; a disk
   * that only takes deletes, kept for them by the reserve, stays failing).
   */
  spoolWorked(spool: SpoolPort): void {
    if (this.spoolFailing && spool.hasRoom()) this.spoolFailing = false;
  }
}

export class PipelineState {
  readonly shared: SharedState;
  /** The group's bit in spool rows' `owers` (1 << its index). */
  readonly bit: number;
  /** The group's lanes, by stream name. */
  readonly streams = new Map<string, Stream>();
  readonly scheduler = new Scheduler();

  recovered = 0;
  ingested = 0;
  acked = 0;
  dropped = 0;
  buffered = 0;
  bufferedBytes = 0;
  spooled = 0;

  constructor(shared: SharedState, bit: number) {
    this.shared = shared;
    this.bit = bit;
  }

  get spool(): SpoolPort | undefined {
    return this.shared.spool;
  }
  get spillBatch(): number {
    return this.shared.spillBatch;
  }
  get replayBatch(): number {
    return this.shared.replayBatch;
  }
  get memoryBudgetBytes(): number {
    return this.shared.memoryBudgetBytes;
  }
  get spoolQuotaBytes(): number {
    return this.shared.spoolQuotaBytes;
  }
  get reservedShares(): Readonly<Record<number, number>> {
    return this.shared.reservedShares;
  }
  get heldByPrio(): Map<number, number> {
    return this.shared.heldByPrio;
  }
  get heldBytes(): number {
    return this.shared.heldBytes;
  }
  set heldBytes(n: number) {
    this.shared.heldBytes = n;
  }
  get spoolBytes(): number {
    return this.shared.spoolBytes;
  }
  set spoolBytes(n: number) {
    this.shared.spoolBytes = n;
  }
  get nextSeq(): number {
    return this.shared.nextSeq;
  }
  set nextSeq(n: number) {
    this.shared.nextSeq = n;
  }
  get spoolFailing(): boolean {
    return this.shared.spoolFailing;
  }
  set spoolFailing(b: boolean) {
    this.shared.spoolFailing = b;
  }
  get spillRefused(): boolean {
    return this.shared.spillRefused;
  }
  set spillRefused(b: boolean) {
    this.shared.spillRefused = b;
  }

  /** A record left the waiting tiers in memory (taken, dropped, spilled). */
  forgetBuffered(rec: Rec): void {
    this.buffered--;
    this.bufferedBytes -= rec.size;
  }

  /**
   * Counts a drop of a record not in memory; the group is done with it (a row
   * written later is not owed by it, and a durable commit still to come does
   * not write its copy: delivered before a commit that failed, it may leave
   * before the next). `walRefused`: the spill that would have made room was
   * refused for the WAL (by default, the last one was).
   */
  drop(rec: Rec, reason: DropReason, walRefused = this.shared.walRefused): void {
    rec.uncommitted = false;
    const sh = rec.shared;
    if (sh !== null) sh.owers &= ~this.bit;
    rec.stream.dropped[reason]++;
    this.dropped++;
    if (reason === 'spool_full' && walRefused) this.shared.walRefusedDrops++;
  }
}
