/**
 * The shell around the pure core: it feeds the pipeline from sources and
 * consumers, carries out its dispatch decisions, runs the ack-timeout sweep,
 * tells blocked sources when there is room again, reserves seq blocks, and
 * turns drop counters into rate-limited log lines.
 *
 * Work is coalesced: any number of ingests, credits and acks in one turn of
 * the event loop lead to one `dispatch()` and one spool flush (the deletes of
 * acked records, in one transaction) in `setImmediate`, so records leave in
 * batches rather than a frame per record.
 *
 * Durable mode's group commit: records accepted in one turn (or within
 * `groupCommitMs`) are written in one transaction before the turn
 * dispatches, and `committed()` resolves for all of them at once; sources
 * acknowledge their producers only then. With `synchronous: full` that is
 * one fsync for every record of the batch, one fsync at a time, each
 * covering what arrived while the last one ran (see `#doCommit`).
 */
import type { Logger } from 'pino';
import type { GroupChanges, IngestOutcome, Pipeline } from './core/pipeline.js';
import type { Rec } from './core/record.js';
import { DROP_REASONS, type DropReason } from './core/record.js';

/** Where the engine sends a consumer's records (a WebSocket session, say). */
export interface ConsumerSink {
  deliver(records: readonly Rec[]): void;
  /** The consumer's group went away (a reload removed it): say so and close. */
  groupRemoved?(group: string): void;
}

export interface EngineContext {
  readonly log: Logger;
  /** Monotonic ms, for deadlines. */
  readonly now: () => number;
  /** Wall-clock ms since the epoch, for record timestamps (it may jump). */
  readonly wallNow: () => number;
  /** Age clock: wall-clock ms at start plus monotonic time since; never jumps within a run (TTL). */
  readonly ageNow: () => number;
  /** Called before a seq is handed out, so it is reserved on disk first. */
  readonly reserveSeq?: (next: number) => void;
  /** Durable mode: how long a group commit waits for more records (0: the next turn). */
  readonly groupCommitMs?: number;
  /**
   * Durable mode with `synchronous: full`: makes the commits so far durable
   * (the spool's `syncWal`), off the event loop; a commit's sources hear true
   * only once it resolves true.
   */
  readonly syncCommit?: () => Promise<boolean>;
  /** Idle streams are forgotten after this long (0: never); read at every sweep, so a reload reaches it. */
  readonly streamIdleMs?: () => number;
}

/** A group commit not yet done: everyone waiting on it hears the one outcome. */
interface PendingCommit {
  readonly promise: Promise<boolean>;
  readonly resolve: (ok: boolean) => void;
}

const KEPT = Promise.resolve(true);

/** The longest a group commit waits for the producers an fdatasync released (`full`). */
const MAX_HOLD_MS = 10;

/** How often drops are summarised in the log. */
const DROP_REPORT_MS = 5_000;

export class Engine {
  readonly #p: Pipeline;
  readonly #ctx: EngineContext;
  readonly #sinks = new Map<number, ConsumerSink>();
  #nextConsumerId = 1;
  #dispatchQueued = false;
  #frozen = false;
  #sending = true;
  /** The ack-timeout sweep: armed only while something is in flight (an idle daemon sets no timer for it). */
  #sweep: NodeJS.Timeout | undefined;
  #sweepMs = 1_000;
  #report: NodeJS.Timeout | undefined;
  readonly #reported = new Map<string, number>();
  #reportedSpoolFailures = 0;
  #reportedUnselected = 0;
  #reportedWalRefused = 0;
  readonly #idle = new Set<() => void>();
  /** Streams that refused a record (`block`), with the size refused. */
  readonly #blocked = new Map<string, number>();
  #onRoom: (() => void) | undefined;
  #commit: PendingCommit | undefined;
  #commitTimer: NodeJS.Timeout | undefined;
  /** `full`: a commit's fdatasync is running; what arrives meanwhile waits for it and is committed as one. */
  #syncing = false;
  /** After an fdatasync released its producers: the next commit waits for this many records, until `#holdTimer` fires. */
  #awaiting = 0;
  #holdTimer: NodeJS.Timeout | undefined;

  constructor(pipeline: Pipeline, ctx: EngineContext) {
    this.#p = pipeline;
    this.#ctx = ctx;
  }

  get pipeline(): Pipeline {
    return this.#p;
  }

  /** Streams that refused a record under `whenFull: block` and have no room for it yet (their sources are held back). */
  get blockedStreams(): number {
    return this.#blocked.size;
  }

  get consumerCount(): number {
    return this.#sinks.size;
  }

  start(ackTimeoutMs: number): void {
    this.#sweepMs = Math.max(10, Math.min(1_000, Math.floor(ackTimeoutMs / 4)));
    this.#report = setInterval(() => {
      this.reportDrops();
      this.#forgetIdle();
    }, DROP_REPORT_MS);
    this.#report.unref();
  }

  stop(): void {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    clearInterval(this.#report);
    this.reportDrops();
  }

  /** Durable mode: records accepted and waiting for their group commit. */
  get commitPending(): boolean {
    return this.#commit !== undefined;
  }

  // ── sources ────────────────────────────────────────────────────────────

  ingest(stream: string, payload: Uint8Array, priority?: number): IngestOutcome {
    this.#ctx.reserveSeq?.(this.#p.nextSeq);
    const outcome = this.#p.ingest(stream, payload, this.#ctx.wallNow(), this.#ctx.ageNow(), priority);
    if (outcome === 'accepted') {
      if (this.#commit === undefined && this.#p.uncommitted > 0) this.#openCommit();
      // While its commit waits for an fdatasync, a record leaves with the turn of that commit, not a turn of its own.
      if (!this.#waitsForSync()) this.#scheduleDispatch();
    } else if (outcome === 'blocked') this.#blocked.set(stream, payload.length);
    return outcome;
  }

  /**
   * Resolves once every record accepted so far is kept as the durability mode
   * requires: at once in memory mode; in durable mode when the group commit
   * covering it is done (true) or failed (false: do not acknowledge the
   * source). Sources acknowledge (PUBACK) only after this resolves true.
   */
  committed(): Promise<boolean> {
    return this.#commit?.promise ?? KEPT;
  }

  /**
   * Applies a reloaded config to the pipeline (`specFor` and the groups
   * answer from it now). Consumers of a group the reload removed are told
   * and closed; what only that group held is released (returned, counted).
   */
  reconfigure(): GroupChanges {
    const changes = this.#p.reconfigure();
    for (const g of changes.removed) {
      for (const id of g.consumers) {
        const sink = this.#sinks.get(id);
        this.#sinks.delete(id);
        sink?.groupRemoved?.(g.name);
      }
      this.#ctx.log.warn({ event: 'group_removed', group: g.name, consumers: g.consumers.length, released: g.released }, `group ${g.name} removed by a reload: ${g.released} records only it held were released`);
    }
    for (const name of changes.added) this.#ctx.log.info({ event: 'group_added', group: name }, `group ${name} added: it starts at the next record`);
    this.#scheduleDispatch();
    return changes;
  }

  /** Schedules a turn (after a reload or a WAL truncate: room may have appeared, priorities changed). */
  kick(): void {
    this.#scheduleDispatch();
  }

  /** Called (at most once per turn) when a stream that blocked a source has room again. */
  onRoom(listener: () => void): void {
    this.#onRoom = listener;
  }

  /** Drops waiting records older than their TTL; the turn after also retries spool deletes that failed. */
  expireTtl(): number {
    const n = this.#p.expireTtl(this.#ctx.ageNow());
    this.#scheduleDispatch();
    return n;
  }

  // ── consumers ──────────────────────────────────────────────────────────

  /**
   * A consumer joins a group (default `default`), or taps every stream.
   * Undefined when the group is not declared.
   */
  attach(name: string, sink: ConsumerSink, joins: { readonly group?: string; readonly tap?: boolean } = {}): number | undefined {
    const id = this.#nextConsumerId++;
    if (this.#p.connect(id, name, joins) === undefined) return undefined;
    this.#sinks.set(id, sink);
    return id;
  }

  /**
   * A consumer's transport cannot take more now (its send buffer is above
   * `consumers.maxBufferedBytes`): it is sent nothing until it is writable
   * again, and its ack timeouts meanwhile do not count as failed attempts.
   */
  setWritable(id: number, writable: boolean): void {
    this.#p.setWritable(id, writable);
    if (writable) this.#scheduleDispatch();
  }

  detach(id: number): void {
    if (!this.#sinks.delete(id)) return;
    const taken = this.#p.disconnect(id);
    if (taken > 0) this.#ctx.log.debug({ consumer: id, records: taken }, 'consumer left holding records; they will be redelivered');
    this.#scheduleDispatch();
    this.#checkIdle();
  }

  credit(id: number, n: number): void {
    this.#p.credit(id, n);
    this.#scheduleDispatch();
  }

  ack(id: number, seqs: readonly number[]): void {
    this.#p.ack(id, seqs);
    this.#scheduleDispatch();
    this.#checkIdle();
  }

  nack(id: number, seqs: readonly number[]): void {
    this.#p.nack(id, seqs);
    this.#scheduleDispatch();
  }

  // ── shutdown ───────────────────────────────────────────────────────────

  /** Stops sending records; acks are still taken. */
  stopSending(): void {
    this.#sending = false;
  }

  /**
   * After the pipeline was persisted: nothing more touches it or the spool.
   * A group commit still open is not done: its sources hear false (the
   * records are in the spool now, but intake has closed; producers resend).
   */
  freeze(): void {
    this.#sending = false;
    this.#frozen = true;
    clearTimeout(this.#commitTimer);
    clearTimeout(this.#holdTimer);
    this.#commit?.resolve(false);
    this.#commit = undefined;
  }

  /** Resolves when nothing is in flight, or when `signal` aborts. */
  async inflightDrained(signal: AbortSignal): Promise<void> {
    if (this.#p.totals().inflight === 0 || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#idle.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#idle.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Logs what was dropped since the last report: WARN, or ERROR for priority
   * 0; and spool operations that failed since, with what the last one said.
   */
  reportDrops(): void {
    const t = this.#p.totals();
    if (t.spoolFailures > this.#reportedSpoolFailures) {
      const count = t.spoolFailures - this.#reportedSpoolFailures;
      this.#reportedSpoolFailures = t.spoolFailures;
      this.#ctx.log.warn({ event: 'spool_failing', count, total: t.spoolFailures, err: t.lastSpoolError }, `spool operations failing: ${t.lastSpoolError}`);
    }
    if (t.spoolWalRefused > this.#reportedWalRefused) {
      const count = t.spoolWalRefused - this.#reportedWalRefused;
      this.#reportedWalRefused = t.spoolWalRefused;
      this.#ctx.log.warn({ event: 'spool_wal_behind', count, total: t.spoolWalRefused }, 'records dropped (spool_full): the spool WAL, waiting for its checkpoint, left no room under spool.quotaBytes');
    }
    if (t.unselected > this.#reportedUnselected) {
      const count = t.unselected - this.#reportedUnselected;
      this.#reportedUnselected = t.unselected;
      this.#ctx.log.warn({ event: 'records_unselected', count, total: t.unselected }, 'records discarded: their streams are selected by no group (groups.<name>.streams)');
    }
    for (const s of this.#p.streams()) {
      for (const reason of DROP_REASONS) {
        const key = `${s.id}:${reason}`;
        const total = s.dropped[reason];
        const delta = total - (this.#reported.get(key) ?? 0);
        if (delta === 0) continue;
        this.#reported.set(key, total);
        const fields = { event: 'records_dropped', stream: s.name, priority: s.priority, reason, count: delta, total };
        if (s.priority === 0) this.#ctx.log.error(fields, dropMessage(reason));
        else this.#ctx.log.warn(fields, dropMessage(reason));
      }
    }
  }

  // ── internals ──────────────────────────────────────────────────────────

  #scheduleDispatch(): void {
    if (this.#dispatchQueued) return;
    this.#dispatchQueued = true;
    setImmediate(() => {
      this.#dispatchQueued = false;
      this.#turn();
    });
  }

  #openCommit(): void {
    let resolve!: (ok: boolean) => void;
    const promise = new Promise<boolean>((r) => (resolve = r));
    this.#commit = { promise, resolve };
    const window = this.#ctx.groupCommitMs ?? 0;
    if (window > 0) {
      this.#commitTimer = setTimeout(() => {
        this.#commitTimer = undefined;
        this.#scheduleDispatch();
      }, window);
    }
  }

  /**
   * Writes the records accepted since the last commit in one transaction and
   * tells their sources. With `full` one fdatasync runs at a time, and two
   * things make each cover as many records as it can (it costs the same for
   * one record or twenty):
   *  - what arrives while it runs is written in one transaction when it
   *    ends, not one a turn;
   *  - the producers it releases mostly send again at once (sensors that
   *    wait for each PUBACK): the next commit waits for as many records as
   *    it released, but never longer than that fdatasync took (rounded up
   *    to a timer's millisecond, at most `MAX_HOLD_MS`), so a hold costs at
   *    most one fdatasync's time when nobody comes.
   */
  #doCommit(): void {
    const pending = this.#commit;
    if (pending === undefined || this.#frozen || this.#waitsForSync()) return;
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    this.#commit = undefined;
    const released = this.#p.uncommitted;
    const ok = this.#p.commit();
    const sync = this.#ctx.syncCommit;
    if (!ok || sync === undefined) return this.#committed(pending, ok);
    // The loop goes on taking records (the next group commit) while the disk syncs this one.
    this.#syncing = true;
    const began = this.#ctx.now();
    void sync().then((synced) => {
      this.#syncing = false;
      if (!this.#frozen) this.#hold(released, this.#ctx.now() - began);
      this.#committed(pending, synced);
    });
  }

  /** After an fdatasync: the next commit waits for the producers it releases (see `#doCommit`). */
  #hold(released: number, syncMs: number): void {
    this.#awaiting = this.#p.uncommitted + released;
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = undefined;
      this.#scheduleDispatch();
    }, Math.min(MAX_HOLD_MS, Math.max(1, Math.ceil(syncMs))));
  }

  /** `full`: the next commit waits for the running fdatasync, or for the producers the last one released. */
  #waitsForSync(): boolean {
    return this.#syncing || (this.#holdTimer !== undefined && this.#p.uncommitted < this.#awaiting);
  }

  #committed(pending: { resolve: (ok: boolean) => void }, ok: boolean): void {
    if (!ok) this.#ctx.log.warn({ event: 'commit_failed' }, 'durable commit failed (disk full or I/O error): its producers are not acknowledged and will resend');
    pending.resolve(ok);
  }

  /** One coalesced turn: commit (durable), send what credit allows, delete what was acked, wake blocked sources. */
  #turn(): void {
    if (this.#frozen) return;
    if (this.#commit !== undefined && this.#commitTimer === undefined) this.#doCommit();
    if (this.#sending) {
      const deliveries = this.#p.dispatch(this.#ctx.now());
      for (const d of deliveries) this.#sinks.get(d.consumer.id)?.deliver(d.records);
      if (deliveries.length > 0 && this.#sweep === undefined) {
        this.#sweep = setInterval(() => this.#expire(), this.#sweepMs);
        this.#sweep.unref();
      }
    }
    this.#p.flushSpool();
    if (this.#blocked.size > 0) {
      let freed = false;
      for (const [stream, size] of this.#blocked) {
        if (!this.#p.hasRoom(stream, size)) continue;
        this.#blocked.delete(stream);
        freed = true;
      }
      // Sources re-offer what they hold; one still without room blocks again.
      if (freed) this.#onRoom?.();
    }
  }

  #forgetIdle(): void {
    const idleMs = this.#ctx.streamIdleMs?.() ?? 0;
    if (idleMs <= 0) return;
    const gone = this.#p.forgetIdle(this.#ctx.ageNow(), idleMs);
    if (gone.length > 0) this.#ctx.log.debug({ event: 'streams_forgotten', streams: gone.slice(0, 20), count: gone.length }, 'idle streams forgotten');
  }

  #expire(): void {
    if (this.#p.expire(this.#ctx.now()) > 0) {
      this.#scheduleDispatch();
      this.#checkIdle();
    }
    // Nothing in flight: nothing can time out until the next delivery arms the sweep again.
    if (this.#p.totals().inflight === 0) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }

  #checkIdle(): void {
    if (this.#idle.size === 0 || this.#p.totals().inflight > 0) return;
    for (const done of [...this.#idle]) done();
  }
}

function dropMessage(reason: DropReason): string {
  switch (reason) {
    case 'overflow':
      return 'records dropped: buffer or memory budget full';
    case 'spool_full':
      return 'records dropped: spool full';
    case 'expired':
      return 'records dropped: older than the stream TTL';
    case 'poison':
      return 'records dropped: delivery failed too many times';
    case 'corrupt':
      return 'records lost: unreadable in a damaged spool';
    case 'lagging':
      return 'records dropped for a group: its backlog passed maxBacklogRecords/maxBacklogBytes';
    default: {
      const never: never = reason;
      return String(never);
    }
  }
}
