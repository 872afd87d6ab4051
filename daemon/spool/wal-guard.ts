/**
 * Keeps the spool's WAL file small, whatever the spill rate.
 *
 * Why the WAL grew without bound before: SQLite rewinds the WAL (writes it
 * from its start again) only when a writer begins while the WAL is *fully*
 * copied into the database. A PASSIVE checkpoint in the worker copies the
 * frames that were there when it began (it then reports `log ==
 * checkpointed`), but under a sustained spill the daemon appends during
 * every checkpoint, so no write ever found the WAL fully copied: it was
 * never rewound, and each spill made the file longer (1.57 GB after 150 s in
 * the fault suite; 35 MB after 90k rows of 100 bytes in
 * scripts/bench/spool-layout.ts, where checkpoints ran every 4 MiB).
 *
 * What bounds it now (a checkpoint round):
 *  - it starts when the WAL file passes `walCheckpointBytes` (looked at, a
 *    stat call, after every 64 KiB written and `pollMs` after a round
 *    during which more was written), and on schedule; an idle daemon
 *    sets no timer for it (an SD card's Pi sleeps);
 *  - PASSIVE checkpoints first, each copying what the last one left (none
 *    blocks the daemon), until one ran with nothing written meanwhile or
 *    `MAX_PASSES` ran;
 *  - then a TRUNCATE checkpoint: it holds the write lock while it copies
 *    what is left (frames written during the last pass) and syncs, and cuts
 *    the WAL file to zero (waiting at most 100 ms for readers: checkpoint-worker.ts). A spill arriving then waits that long (SQLite's
 *    busy wait, the main connection's 5 s timeout; in practice one fsync);
 *  - a write SQLite refused (a full disk, a file size limit) starts a round
 *    at once, whatever the WAL's size: a WAL that filled the disk gives its
 *    room back only when it is truncated, and waiting for the schedule left
 *    the spool unable to delete or read back for up to `checkpointCron`;
 *  - a round that failed (a full disk: the database cannot grow) or could
 *    not truncate is tried again `pollMs` later, and so on, so checkpoints
 *    resume on their own once there is room again.
 */
import type { Logger } from 'pino';
import type { CheckpointResult, Checkpointer } from './checkpointer.js';
import type { SqliteSpool } from './sqlite-spool.js';
import { WAL_CHECKPOINT_BYTES } from './spool-port.js';

/** PASSIVE checkpoints in a round at most before the TRUNCATE (each copies what the daemon wrote during the last). */
const MAX_PASSES = 2;

export interface WalGuardOptions {
  readonly walCheckpointBytes?: number;
  readonly pollMs?: number;
  /** After a round that truncated the WAL: what a full WAL refused (a delete, a read back) can be tried again now. */
  readonly onTruncated?: () => void;
}

export interface CheckpointRound {
  readonly ok: boolean;
  /** The WAL was fully copied into the database. */
  readonly complete: boolean;
  readonly passes: number;
  readonly truncated: boolean;
  readonly walBytesBefore: number;
  readonly walBytesAfter: number;
  readonly last: CheckpointResult;
}

export class WalGuard {
  readonly #spool: SqliteSpool;
  readonly #checkpointer: Checkpointer;
  readonly #log: Logger | undefined;
  #walCheckpointBytes: number;
  readonly #pollMs: number;
  readonly #onTruncated: (() => void) | undefined;
  /** Armed only while there is something to look at again: a round to retry, or writes made during one. */
  #timer: NodeJS.Timeout | undefined;
  #seenWritten = 0;
  /** The last round failed or did not finish: try again at the next poll. */
  #pending = false;
  #failing = false;
  #round: Promise<CheckpointRound> | undefined;
  #stopped = false;

  /** The WAL size that starts a round: a reload of the quota changes it (the core leaves the WAL twice its share). */
  set walCheckpointBytes(bytes: number) {
    this.#walCheckpointBytes = bytes;
  }

  constructor(spool: SqliteSpool, checkpointer: Checkpointer, log: Logger | undefined, opts: WalGuardOptions = {}) {
    this.#spool = spool;
    this.#checkpointer = checkpointer;
    this.#log = log;
    this.#walCheckpointBytes = opts.walCheckpointBytes ?? WAL_CHECKPOINT_BYTES;
    this.#seenWritten = spool.writtenBytes;
    this.#pollMs = opts.pollMs ?? 250;
    this.#onTruncated = opts.onTruncated;
    spool.onGrowth((failed) => {
      // A refused write: the WAL may be what fills the disk, and only a truncate gives its room back.
      if (failed) {
        if (this.#pending) return; // the last round failed or did not truncate: its retry is armed
        this.#pending = true;
      }
      this.#poll();
    });
  }

  /** The last checkpoint round failed (and is being retried). */
  get failing(): boolean {
    return this.#failing;
  }

  /** Runs a checkpoint round now (a call during one shares it); undefined when there is nothing to do. */
  checkpoint(force = false): Promise<CheckpointRound> | undefined {
    if (this.#round !== undefined) return this.#round;
    const wal = this.#spool.walBytes();
    if (wal === 0 || (!force && !this.#pending && this.#spool.writtenBytes === this.#seenWritten && wal <= this.#walCheckpointBytes)) return undefined;
    this.#round = this.#run(wal).finally(() => (this.#round = undefined));
    return this.#round;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Runs from the spool's write path and a timer: it must never throw into either. */
  #poll(): void {
    if (this.#round !== undefined || this.#stopped) return;
    const written = this.#spool.writtenBytes;
    if (written === this.#seenWritten && !this.#pending) return;
    try {
      if (this.#pending || this.#spool.walBytes() > this.#walCheckpointBytes) void this.checkpoint(true);
    } catch (err) {
      // stat of the WAL or starting the worker failed (EIO, EMFILE): a failed round, retried at the next poll.
      this.#pending = true;
      this.#pollLater();
      this.#report({ ok: false, complete: false, passes: 0, truncated: false, walBytesBefore: 0, walBytesAfter: 0, last: { ok: false, error: (err as Error).message } });
    }
  }

  #pollLater(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#poll();
    }, this.#pollMs);
    this.#timer.unref();
  }

  async #run(walBytesBefore: number): Promise<CheckpointRound> {
    let passes = 0;
    let last: CheckpointResult;
    let complete = false;
    do {
      const writtenBefore = this.#spool.writtenBytes;
      last = await this.#checkpointer.checkpoint('PASSIVE');
      passes++;
      complete = last.ok && last.busy === 0 && last.log === last.checkpointed && this.#spool.writtenBytes === writtenBefore;
    } while (last.ok && !complete && passes < MAX_PASSES);
    let truncated = false;
    if (last.ok) {
      this.#seenWritten = this.#spool.writtenBytes;
      last = await this.#checkpointer.checkpoint('TRUNCATE');
      truncated = last.ok && last.busy === 0;
      complete = truncated;
    }
    this.#pending = !truncated;
    let walBytesAfter = -1;
    try {
      walBytesAfter = this.#spool.walBytes();
    } catch {
      // The size is only reported (-1: unknown); the round's outcome stands.
    }
    const round: CheckpointRound = { ok: last.ok, complete, passes, truncated, walBytesBefore, walBytesAfter, last };
    this.#report(round);
    if (truncated && !this.#stopped) this.#onTruncated?.();
    if (this.#pending || this.#spool.writtenBytes !== this.#seenWritten) this.#pollLater();
    return round;
  }

  #report(r: CheckpointRound): void {
    if (this.#stopped) return; // a round cut short by the stop (the worker is terminated): nothing to say
    const fields = { passes: r.passes, complete: r.complete, truncated: r.truncated, walBytesBefore: r.walBytesBefore, walBytesAfter: r.walBytesAfter, busy: r.last.busy, log: r.last.log, checkpointed: r.last.checkpointed };
    if (!r.ok) {
      // Once per failing spell (a full disk fails every retry): WARN, nothing is lost by it.
      if (!this.#failing) this.#log?.warn({ event: 'spool_checkpoint_failed', err: r.last.error, ...fields }, 'spool checkpoint failed (disk full or I/O error); retrying until it works');
      this.#failing = true;
      return;
    }
    if (this.#failing) this.#log?.warn({ event: 'spool_checkpoint_recovered', ...fields }, 'spool checkpoints work again');
    else this.#log?.debug({ event: 'spool_checkpoint', ...fields }, 'spool checkpoint');
    this.#failing = false;
  }
}
