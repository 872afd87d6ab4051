/**
 * The global memory budget: what every record in memory (waiting or in
 * flight) costs against `memoryBudgetBytes`, per priority and in all, the
 * reserved shares of the budget, and how room is made (eviction of the least
 * important ring records, then of replay and taken-back records). Also the
 * drops of records held in memory, since a drop releases their cost.
 *
 * One per group; the budget itself is shared (`SharedState`): a record that
 * several groups hold in memory is charged once, while any of its group
 * copies is in memory (`SharedRec.refs`). Eviction looks across every
 * group: the least important, oldest ring record of any group leaves first;
 * when groups share it, it is the head of each of their rings, so it leaves
 * them one after the other and its memory is freed with the last.
 *
 * Invariant: heldBytes <= memoryBudgetBytes; no record leaves memory for a
 * less important one.
 */
import type { DropReason, Rec } from './record.js';
import type { GroupParts, PipelineState } from './pipeline-state.js';
import type { SpoolTier } from './spool-tier.js';
import type { Stream } from './stream.js';
import type { SpoolPort } from '../spool/spool-port.js';

/**
 * Who room is made for: a record arriving from a source, one arriving for a
 * `block` stream (it waits rather than make a record as important leave), or
 * a backlog coming back from disk.
 */
export type RoomFor = 'newcomer' | 'blocking' | 'backlog';

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
    const sh = rec.shared;
    if (sh !== null && sh.refs++ > 0) return;
    const cost = rec.cost;
    const s = this.#s;
    s.heldBytes += cost;
    s.heldByPrio.set(rec.prio, (s.heldByPrio.get(rec.prio) ?? 0) + cost);
  }

  release(rec: Rec): void {
    const sh = rec.shared;
    if (sh !== null && --sh.refs > 0) return;
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
   * one more important than `prio`, and no ring record is dropped while a
   * less important one waits in memory (it leaves first). While the spool cannot be written, a
   * less important record is dropped (`spool_full`) but, for a `newcomer`,
   * one of the same priority stays for the consumers: the newcomer is
   * refused instead. Room for a backlog coming back from disk (older than
   * every ring record of its stream, so FIFO cannot go on without it) is
   * made by dropping the ring's oldest. At one priority `block` streams
   * neither give nor take: their records never leave memory for a newcomer
   * as important, and their newcomers wait (`blocking`) rather than make
   * others' records leave. Returns false when that is not enough.
   */
  makeRoom(cost: number, prio: number, roomFor: RoomFor = 'newcomer'): boolean {
    if (cost > this.#s.memoryBudgetBytes) return false;
    while (!this.fits(cost, prio)) if (!this.#evictOne(prio, roomFor)) return false;
    return true;
  }

  /**
   * After a reload lowered the budget: records leave memory in `makeRoom`'s
   * order, as for a backlog of the most important priority (anything
   * waiting may go), until what is held fits. What is in flight stays: the
   * budget may stay passed by it until its acks.
   */
  fitBudget(): void {
    const s = this.#s;
    while (s.heldBytes > s.memoryBudgetBytes) if (!this.#evictOne(0, 'backlog')) return;
  }

  /** A ring above the bounds a reload gave it: its oldest records leave by its policy (spilled, else dropped as `overflow`). */
  fitRing(lane: Stream): void {
    while (lane.ring.overBounds) {
      if (lane.spec.whenFull !== 'spill') this.dropFromRing(lane, 'overflow');
      else if (!this.#tier.spill(lane, this.#s.spillBatch)) this.dropFromRing(lane, 'spool_full');
    }
  }

  /** One step of making room for priority `prio`: false when nothing more may leave. */
  #evictOne(prio: number, roomFor: RoomFor): boolean {
    const newcomer = roomFor !== 'backlog';
    const c = this.#evictionCandidate(newcomer ? prio : -1);
    if (c === undefined || c.lane.priority < prio) return this.#evictWaiting(prio, roomFor);
    const { g, lane } = c;
    if (roomFor === 'blocking' && lane.priority === prio) return false;
    // Without a spool, spill drops the oldest as overflow.
    const spills = lane.spec.whenFull === 'spill' && this.#s.spool !== undefined;
    if (spills && g.tier.spill(lane, this.#s.spillBatch)) return true;
    // The ring's head would be dropped: less important records waiting in memory (read back from
    // the spool, taken back) leave first.
    if (this.#evictWaiting(lane.priority + 1, roomFor)) return true;
    if (!spills) g.budget.dropFromRing(lane, 'overflow');
    else {
      if (newcomer && lane.priority === prio) return false;
      g.budget.dropFromRing(lane, 'spool_full');
    }
    return true;
  }

  /** The ring whose head goes first, across groups: least important level, then oldest seq (`block` streams of priority `spare` kept). */
  #evictionCandidate(spare: number): { readonly g: GroupParts; readonly lane: Stream; readonly head: Rec } | undefined {
    let best: { g: GroupParts; lane: Stream; head: Rec } | undefined;
    for (const g of this.#s.shared.groups) {
      const lane = g.s.scheduler.evictionCandidate(spare);
      if (lane === undefined) continue;
      const head = lane.ring.peek() as Rec; // the candidate is a ring with a record
      if (best === undefined || lane.priority > best.lane.priority || (lane.priority === best.lane.priority && head.seq < best.head.seq)) best = { g, lane, head };
    }
    return best;
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
   * drops it, without a spool or the `spill` policy); for a newcomer, at its
   * own priority never a `block` stream's, and nothing for a `blocking` one.
   */
  #evictWaiting(prio: number, roomFor: RoomFor): boolean {
    let victim: Stream | undefined;
    let owner: GroupParts | undefined;
    for (const g of this.#s.shared.groups) {
      for (const s of g.s.streams.values()) {
        if (s.priority < prio || s.replay.length + s.retry.length === 0) continue;
        if (s.priority === prio && (roomFor === 'blocking' || (roomFor === 'newcomer' && s.spec.whenFull === 'block'))) continue;
        if (victim === undefined || s.priority > victim.priority) {
          victim = s;
          owner = g;
        }
      }
    }
    if (victim === undefined || owner === undefined) return false;
    return owner.budget.evictWaitingOf(victim);
  }

  /** Writes a record's delivery count (and failed deliveries) for its group (the attempt column with one group, the group's own with several). */
  #saveAttempt(rec: Rec): boolean {
    const st = this.#s;
    try {
      const spool = st.spool as SpoolPort;
      if (st.shared.multi) spool.setGroupAttempts([{ seq: rec.seq, bit: st.bit, attempt: rec.attempt, failures: rec.failures }]);
      else spool.setAttempts([{ seq: rec.seq, attempt: rec.attempt, failures: rec.failures }]);
      return true;
    } catch (err) {
      this.#s.shared.spoolFailed(err);
      return false;
    }
  }

  /** Moves one group's replay records, or one taken-back record, of `victim` out of memory. */
  evictWaitingOf(victim: Stream): boolean {
    const st = this.#s;
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
      if (!this.#saveAttempt(rec)) return false;
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
    // Written with its delivery count (several groups: this group's, in the same transaction).
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
