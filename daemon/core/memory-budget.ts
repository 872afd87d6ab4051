/**
 * The global memory budget: what every record in memory (waiting or in
 * flight) costs against `memoryBudgetBytes`, per priority and in all, the
 * reserved shares of the budget, and how room is made (eviction of the least
 * important ring records, then of replay and taken-back records). Also the
 * drops of records held in memory, since a drop releases their cost.
 *
 * Invariant: heldBytes <= memoryBudgetBytes; no record leaves memory for a
 * less important one.
 */
import type { DropReason, Rec } from './record.js';
import type { PipelineState } from './pipeline-state.js';
import type { SpoolTier } from './spool-tier.js';
import type { Stream } from './stream.js';
import type { SpoolPort } from '../spool/spool-port.js';

export class MemoryBudget {
  readonly #s: PipelineState;
  #tier!: SpoolTier;

  constructor(state: PipelineState) {
    this.#s = state;
  }

  /** Wires the spool tier (the two call each other: eviction spills, loading makes room). */
  attach(tier: SpoolTier): void {
    this.#tier = tier;
  }

  hold(rec: Rec): void {
    const cost = rec.cost;
    const s = this.#s;
    s.heldBytes += cost;
    s.heldByPrio.set(rec.prio, (s.heldByPrio.get(rec.prio) ?? 0) + cost);
  }

  release(rec: Rec): void {
    const cost = rec.cost;
    const s = this.#s;
    s.heldBytes -= cost;
    s.heldByPrio.set(rec.prio, (s.heldByPrio.get(rec.prio) ?? 0) - cost);
  }

  /** True when `cost` more bytes of priority `prio` fit, counting what other priorities keep reserved. */
  fits(cost: number, prio: number): boolean {
    const s = this.#s;
    let reservedForOthers = 0;
    for (const [p, share] of Object.entries(s.reservedShares)) {
      const q = Number(p);
      if (q !== prio) reservedForOthers += Math.max(0, share * s.memoryBudgetBytes - (s.heldByPrio.get(q) ?? 0));
    }
    return s.heldBytes + cost + reservedForOthers <= s.memoryBudgetBytes;
  }

  /**
   * Frees memory for `cost` bytes of priority `prio`: the least important
   * stream's oldest ring records leave first (spilled if its policy is
   * `spill`, else dropped as `overflow`), then records read back from the
   * spool (released: they are still on disk), then taken-back records; never
   * one more important than `prio`. While the spool cannot be written, a
   * less important record is dropped (`spool_full`) but, for a `newcomer`,
   * one of the same priority stays for the consumers: the newcomer is
   * refused instead. Room for a backlog coming back from disk (older than
   * every ring record of its stream, so FIFO cannot go on without it) is
   * made by dropping the ring's oldest. Returns false when that is not enough.
   */
  makeRoom(cost: number, prio: number, newcomer = true): boolean {
    const s = this.#s;
    if (cost > s.memoryBudgetBytes) return false;
    while (!this.fits(cost, prio)) {
      const victim = s.scheduler.evictionCandidate();
      const head = victim?.ring.peek();
      if (victim !== undefined && head !== undefined && head.prio >= prio) {
        if (victim.spec.whenFull !== 'spill' || s.spool === undefined) this.dropFromRing(victim, 'overflow');
        else if (!this.#tier.spill(victim, s.spillBatch)) {
          if (newcomer && head.prio === prio) return false;
          this.dropFromRing(victim, 'spool_full');
        }
        continue;
      }
      if (!this.#evictWaiting(prio)) return false;
    }
    return true;
  }

  /** Drops a record held in memory (no longer buffered nor in flight). */
  discard(rec: Rec, reason: DropReason): void {
    rec.uncommitted = false;
    this.release(rec);
    this.#tier.forgetOnDisk(rec);
    this.#s.drop(rec, reason);
  }

  dropFromRing(stream: Stream, reason: DropReason): void {
    const victim = stream.ring.shift();
    if (victim === undefined) return;
    this.#s.forgetBuffered(victim);
    this.discard(victim, reason);
  }

  /**
   * The last resort of `makeRoom`, so a backlog can always come back into
   * memory: the least important stream (at `prio` or below) gives back its
   * replay records to the spool, or moves one taken-back record there (or
   * drops it, without a spool or the `spill` policy).
   */
  #evictWaiting(prio: number): boolean {
    const st = this.#s;
    let victim: Stream | undefined;
    for (const s of st.streams.values()) {
      if (s.priority < prio || s.replay.length + s.retry.length === 0) continue;
      if (victim === undefined || s.priority > victim.priority) victim = s;
    }
    if (victim === undefined) return false;
    if (victim.replay.length > 0) {
      const back = victim.giveBackReplay();
      let bytes = 0;
      for (const rec of back) {
        bytes += rec.size;
        st.forgetBuffered(rec);
        this.release(rec);
      }
      victim.spooled += back.length;
      victim.spooledBytes += bytes;
      st.spooled += back.length;
      return true;
    }
    const rec = victim.retry[0] as Rec;
    const spill = st.spool !== undefined && victim.spec.whenFull === 'spill';
    if (spill && rec.onDisk) {
      // Already on disk: its delivery count must be right there before memory lets it go.
      try {
        (st.spool as SpoolPort).setAttempts([{ seq: rec.seq, attempt: rec.attempt }]);
      } catch (err) {
        this.#tier.spoolFailed(err);
        return false;
      }
    }
    victim.retry.shift();
    victim.retryBytes -= rec.size;
    st.forgetBuffered(rec);
    this.release(rec);
    if (!spill) {
      this.#tier.forgetOnDisk(rec);
      st.drop(rec, 'overflow');
      return true;
    }
    if (!rec.onDisk && !this.#tier.writeOne(rec)) {
      st.drop(rec, 'spool_full');
      return true;
    }
    victim.addSpan(rec.seq - 1, rec.seq);
    victim.spooled++;
    victim.spooledBytes += rec.size;
    st.spooled++;
    st.scheduler.enqueue(victim);
    return true;
  }
}
