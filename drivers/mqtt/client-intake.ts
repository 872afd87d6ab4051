/**
 * The publishes of one embedded-broker client on their way into the
 * pipeline, in the order they arrived, each acknowledged only once it is
 * kept:
 *
 *   offer ──> queue ──ingest──┬─ accepted ──> kept()? ──true──> done()        (aedes writes the PUBACK)
 *                             │                        └false─> refuse
 *                             ├─ blocked ──> held at the head until resume()  (at most maxBlockMs, then refuse)
 *                             └─ dropped / rejected ──> done()              (decided and counted by the daemon)
 *
 *   refuse: done(err) for the head and all that is queued behind it; aedes
 *   closes the connection on an error, so nothing refused is PUBACKed and
 *   the client resends it when it reconnects (MQTT 3.1.1 has no negative
 *   PUBACK; aedes 1.2 speaks only 3.1.1).
 *
 * aedes reads a client's next socket chunk only when every packet of the
 * last one has called back, so holding the head holds back this client
 * alone; other clients go on. `done` calls keep arrival order: they are
 * chained behind the kept() promise of the batch before.
 */
import type { IngestOutcome } from '../../daemon/core/pipeline-types.js';
import type { Route } from './router.js';

/** Why a client was disconnected with its publishes unacknowledged. */
export type RefuseReason = 'blocked_too_long' | 'not_kept' | 'closed';

export type PublishDone = (err?: Error | null) => void;

export interface IntakeHooks {
  readonly ingest: (route: Route, payload: Buffer) => IngestOutcome;
  readonly kept: () => Promise<boolean>;
  /** Counts and logs one refusal (the client is being disconnected). */
  readonly refused: (reason: RefuseReason, detail: string) => void;
  /** Counts a QoS 0 publish whose commit failed (nothing to withhold). */
  readonly lost: (outcome: 'not_kept') => void;
}

interface Pending {
  readonly route: Route;
  readonly payload: Buffer;
  /** QoS > 0: a PUBACK (or PUBREC) waits for `done`. */
  readonly ackable: boolean;
  readonly done: PublishDone;
}

export class ClientIntake {
  readonly #hooks: IntakeHooks;
  readonly #maxBlockMs: number;
  readonly #queue: Pending[] = [];
  /** Set once the client is refused: everything after is refused too. */
  #refusal: Error | undefined;
  #blockTimer: NodeJS.Timeout | undefined;
  /** The PUBACKs of earlier batches, in order. */
  #acks: Promise<void> = Promise.resolve();
  /** Taken this turn, waiting for one kept(). */
  #batch: Pending[] = [];

  constructor(hooks: IntakeHooks, maxBlockMs: number) {
    this.#hooks = hooks;
    this.#maxBlockMs = maxBlockMs;
  }

  get blocked(): boolean {
    return this.#blockTimer !== undefined;
  }

  offer(route: Route, payload: Buffer, ackable: boolean, done: PublishDone): void {
    if (this.#refusal !== undefined) return this.#after(done, this.#refusal);
    this.#queue.push({ route, payload, ackable, done });
    if (this.#queue.length === 1) this.#pump();
  }

  /** There may be room again: offer the held head once more. */
  resume(): void {
    if (this.#blockTimer !== undefined) this.#pump();
  }

  /** Refuses what is queued and everything offered later; what was already taken is still acknowledged once kept. */
  refuse(reason: RefuseReason, detail: string): void {
    if (this.#refusal !== undefined) return;
    this.#flush();
    clearTimeout(this.#blockTimer);
    this.#blockTimer = undefined;
    this.#refusal = new Error(`${reason}: ${detail}`);
    if (reason !== 'closed' || this.#queue.length > 0) this.#hooks.refused(reason, detail);
    for (const p of this.#queue.splice(0)) this.#after(p.done, this.#refusal);
  }

  /** The connection is gone: forget what is queued (aedes no longer waits for it). */
  discard(): void {
    clearTimeout(this.#blockTimer);
    this.#blockTimer = undefined;
    this.#refusal ??= new Error('connection closed');
    this.#queue.length = 0;
    this.#flush();
  }

  /** Resolves once every acknowledgement decided so far has been handed to aedes. */
  settled(): Promise<void> {
    this.#flush();
    return this.#acks;
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0] as Pending;
      const outcome = this.#hooks.ingest(head.route, head.payload);
      if (outcome === 'blocked') {
        this.#blockTimer ??= setTimeout(() => this.refuse('blocked_too_long', `no room within ${this.#maxBlockMs} ms`), this.#maxBlockMs);
        return;
      }
      clearTimeout(this.#blockTimer);
      this.#blockTimer = undefined;
      this.#queue.shift();
      // A record its stream's policy dropped at intake (drop-newest, or less important than
      // everything held), or one the daemon refused (a stream beyond limits.maxStreams, a name
      // beyond limits.maxStreamNameBytes), is acknowledged: that is the daemon's decision,
      // counted once with its reason; refusing it would only make the sensor send it again and
      // again, counted each time, with everything it publishes after it held back.
      this.#take(head);
    }
  }

  /**
   * Publishes taken in one turn (aedes hands over a whole socket read
   * synchronously) share one kept(): the commit that covers the last covers them all.
   */
  #take(p: Pending): void {
    this.#batch.push(p);
    if (this.#batch.length === 1) queueMicrotask(this.#flushBound);
  }

  readonly #flushBound = (): void => this.#flush();

  #flush(): void {
    if (this.#batch.length === 0) return;
    const items = this.#batch;
    this.#batch = [];
    const kept = this.#hooks.kept();
    this.#acks = this.#acks
      .then(() => kept)
      .then(
        (ok) => this.#settle(items, ok),
        () => this.#settle(items, false),
      );
  }

  #settle(items: readonly Pending[], ok: boolean): void {
    if (ok) {
      for (const p of items) p.done(null);
      return;
    }
    const ackable = items.filter((p) => p.ackable);
    for (const p of items) if (!p.ackable) this.#hooks.lost('not_kept');
    if (ackable.length === 0) return;
    this.refuse('not_kept', `the commit covering ${ackable.length} publishes failed`);
    for (const p of items) p.done(p.ackable ? this.#refusal : null);
  }

  /** Calls `done` after the acknowledgements already decided, so the connection closes after them. */
  #after(done: PublishDone, err: Error): void {
    this.#acks = this.#acks.then(() => done(err));
  }
}
