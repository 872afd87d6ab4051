/**
 * Scheduled spool work (node-cron, never overlapping): the WAL checkpoint in
 * the worker thread (and early ones when the WAL grows: wal-guard.ts), the
 * TTL sweep, returning free pages to the file system so the file does not
 * grow without bound, and a periodic stats line.
 *
 * node-cron follows the wall clock; a jump (a Pi without RTC getting NTP
 * time) may skip or bunch runs, which is harmless here: every job is
 * idempotent, and TTL ages come from the age clock, not from the schedule.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Engine } from '../engine.js';
import type { Checkpointer } from './checkpointer.js';
import type { SqliteSpool } from './sqlite-spool.js';
import { walShare } from './spool-port.js';
import { WalGuard } from './wal-guard.js';

/** Free pages one reclaim round hands back (a scheduled run does one, `fitDisk` as many as there are). */
const RECLAIM_PAGES = 2_000;

export interface MaintenanceOptions {
  readonly checkpointCron: string;
  readonly reclaimCron: string;
  readonly ttlCron: string;
  readonly statsCron: string;
  /** The spool's quota: the WAL is checkpointed once it takes its share (`walShare`). */
  readonly quotaBytes: number;
}

export class Maintenance {
  readonly #tasks: ScheduledTask[] = [];
  readonly #spool: SqliteSpool;
  readonly #wal: WalGuard;
  readonly #engine: Engine;
  readonly #log: Logger;

  constructor(opts: MaintenanceOptions, spool: SqliteSpool, checkpointer: Checkpointer, engine: Engine, log: Logger) {
    this.#spool = spool;
    // Under heavy spill the WAL grows fast: the guard checkpoints early, not only on schedule.
    // After a truncate the core retries at once what a full WAL refused, not at its next event.
    this.#wal = new WalGuard(spool, checkpointer, log, { walCheckpointBytes: walShare(opts.quotaBytes), onTruncated: () => engine.kick() });
    this.#engine = engine;
    this.#log = log;
    const every = (name: string, expr: string, job: () => unknown) =>
      this.#tasks.push(
        cron.schedule(expr, () => this.#run(name, job), { name: `spillway-${name}`, noOverlap: true, suppressMissedWarning: true, unref: true, logger: this.#cronLogger(name) } as Parameters<typeof cron.schedule>[2]),
      );
    every('checkpoint', opts.checkpointCron, () => this.checkpoint());
    every('reclaim', opts.reclaimCron, () => this.reclaim());
    every('ttl', opts.ttlCron, () => this.#engine.expireTtl());
    every('stats', opts.statsCron, () => this.stats());
  }

  /** A reloaded quota: the WAL is checkpointed once it takes the new quota's share. */
  set quotaBytes(bytes: number) {
    this.#wal.walCheckpointBytes = walShare(bytes);
  }

  /** Nothing written since the last one: no checkpoint, and no worker thread started for it. Logged by the guard. */
  async checkpoint(): Promise<void> {
    await this.#wal.checkpoint();
    this.#spool.saveOwed();
  }

  reclaim(): void {
    const pages = this.#spool.reclaim(RECLAIM_PAGES);
    if (pages > 0) this.#log.debug({ event: 'spool_reclaim', pages }, 'returned free spool pages to the file system');
  }

  /**
   * After the quota was lowered (a reload, or a start with a lower one):
   * the rows that went for it leave their pages in the file and their
   * deletes in the WAL, which a write counts against the quota. Every free
   * page goes back to the file system and the WAL is checkpointed and cut
   * back now, on the main thread (a one-off), not at the next rounds.
   */
  fitDisk(): void {
    let pages = 0;
    void this.#run('reclaim', () => {
      for (let n = RECLAIM_PAGES; n === RECLAIM_PAGES; pages += n) n = this.#spool.reclaim(RECLAIM_PAGES);
      this.#spool.truncateWal();
    });
    if (pages > 0) this.#log.info({ event: 'spool_reclaim', pages }, `returned ${pages} free spool pages to the file system`);
    this.#engine.kick();
  }

  stats(): void {
    const t = this.#engine.pipeline.totals();
    const files = this.#spool.fileBytes();
    this.#log.info(
      {
        event: 'stats',
        ingested: t.ingested,
        acked: t.acked,
        dropped: t.dropped,
        buffered: t.buffered,
        spooled: t.spooled,
        inflight: t.inflight,
        consumers: this.#engine.consumerCount,
        heldBytes: t.heldBytes,
        spoolFileBytes: files.db,
        walBytes: files.wal,
        spoolBytesEstimated: t.spoolBytes,
      },
      'stats',
    );
  }

  stop(): void {
    this.#wal.stop();
    for (const t of this.#tasks) void t.destroy();
    this.#tasks.length = 0;
  }

  /** node-cron's own messages (a run skipped because the last one still runs) as JSON log lines, not console text. */
  #cronLogger(job: string) {
    const log = this.#log;
    return {
      info: (msg: string) => log.info({ event: 'maintenance_cron', job }, msg),
      warn: (msg: string) => log.warn({ event: 'maintenance_cron', job }, msg),
      error: (msg: string | Error) => log.error({ event: 'maintenance_cron', job, err: String(msg) }, 'node-cron error'),
      debug: (msg: string | Error) => log.debug({ event: 'maintenance_cron', job }, String(msg)),
    };
  }

  async #run(name: string, job: () => unknown): Promise<void> {
    try {
      await job();
    } catch (err) {
      this.#log.error({ event: 'maintenance_failed', job: name, err: (err as Error).message }, 'spool maintenance job failed');
    }
  }
}
