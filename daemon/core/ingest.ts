/**
 * Taking a record from a source into every group that selects its stream:
 * each group's lane makes room by the stream's policy for that group only
 * (drop-oldest / drop-newest drop for that group, spill moves that group's
 * oldest to disk, block refuses before a seq is spent), the shared memory
 * budget makes room once, and the record is held once (`SharedRec`) with a
 * copy per group. A group whose backlog passes its `maxBacklogRecords` /
 * `maxBacklogBytes` then sheds its own oldest, least important records
 * (`lagging`). Durable mode's group commit lives here too (it writes what
 * ingest accepted).
 *
 * Invariant: a record's copies all have one seq; each group that selects
 * the stream counts it ingested once, and dropped at most once.
 */
import type { Group } from './group.js';
import type { SharedState } from './pipeline-state.js';
import type { RoomFor } from './memory-budget.js';
import type { IngestOutcome } from './pipeline-types.js';
import { Rec, RECORD_OVERHEAD_BYTES as RECORD_COST, SharedRec, type DropReason } from './record.js';
import type { SpoolTier } from './spool-tier.js';
import type { StreamEntry } from './stream-registry.js';
import type { Stream, StreamSpec } from './stream.js';

/** A group's lane that does not take a new record, why, and (for a spill refused) whether for the WAL; unset: as the last spill was. */
type Refusal = [Group, Stream, DropReason, boolean?];

export class Ingest {
  readonly #sh: SharedState;
  readonly #durable: boolean;
  /** Durable mode: the group copies of the records accepted since the last group commit. */
  #uncommitted: Rec[] = [];
  #uncommittedRecords = 0;

  constructor(shared: SharedState, durable: boolean) {
    this.#sh = shared;
    this.#durable = durable;
  }

  get uncommitted(): number {
    return this.#uncommittedRecords;
  }

  ingest(e: StreamEntry, groups: readonly Group[], payload: Uint8Array, ts: number, age: number): IngestOutcome {
    if (groups.length === 1) {
      const g = groups[0] as Group;
      if ((e.mask & g.bit) !== 0) return this.#ingestOne(e, g, e.lane(g), payload, ts, age);
    }
    return this.#ingestShared(e, groups, payload, ts, age);
  }

  /** One group selects the stream (no groups configured): as before groups. */
  #ingestOne(e: StreamEntry, g: Group, stream: Stream, payload: Uint8Array, ts: number, age: number): IngestOutcome {
    const st = g.s;
    const size = payload.length;

    // 1. The stream's own ring: make room by its policy (block refuses before a seq is spent).
    while (stream.ring.wouldOverflowBy(size)) {
      const policy = stream.spec.whenFull;
      if (policy === 'block') return 'blocked';
      if (stream.ring.length === 0 || policy === 'drop-newest') return this.#dropAtIngest(e, [[g, stream, 'overflow']], payload, ts, age);
      if (policy === 'drop-oldest') g.budget.dropFromRing(stream, 'overflow');
      else if (!g.tier.spill(stream, st.spillBatch)) return this.#dropAtIngest(e, [[g, stream, 'spool_full']], payload, ts, age);
    }

    // 2. The global memory budget: the least important, oldest ring record leaves memory.
    const cost = size + RECORD_COST;
    st.spillRefused = false;
    st.shared.walRefused = false;
    if (!g.budget.makeRoom(cost, stream.priority, roomFor(stream.spec.whenFull))) {
      if (stream.spec.whenFull === 'block') return 'blocked';
      if (stream.spec.whenFull === 'spill' && stream.ring.length === 0 && st.spool !== undefined) {
        // Nothing less important is held: this one goes straight to disk.
        const rec = this.#newRecord(e, g, stream, this.#seq(e), payload, ts, age);
        return g.tier.spillRecords(stream, [rec]) ? 'accepted' : 'dropped';
      }
      return this.#dropAtIngest(e, [[g, stream, st.spoolFailing || st.spillRefused ? 'spool_full' : 'overflow']], payload, ts, age);
    }

    const rec = this.#newRecord(e, g, stream, this.#seq(e), payload, ts, age);
    this.#keep(g, stream, rec);
    // Durable: written by the next group commit, before the source is acknowledged.
    if (this.#durable) this.#uncommittedRecords++;
    if (g.limited) this.shed(g);
    return 'accepted';
  }

  /** Several groups: each lane makes room for itself, the budget once, one shared record with a copy per group. */
  #ingestShared(e: StreamEntry, groups: readonly Group[], payload: Uint8Array, ts: number, age: number): IngestOutcome {
    const size = payload.length;
    const spec = e.spec;
    if (this.#fastShared(e, groups, payload, ts, age)) return 'accepted';
    const selecting = groups.filter((g) => (e.mask & g.bit) !== 0);
    if (selecting.length === 0) {
      // No group selects the stream: nobody is owed it. Counted (and logged by the engine), not silent.
      this.#seq(e);
      this.#sh.unselected++;
      return 'accepted';
    }
    if (spec.whenFull === 'block' && selecting.some((g) => e.lane(g).ring.wouldOverflowBy(size))) return 'blocked';

    // 1. Each group's lane: make room by the policy, for that group only.
    const takers: Array<[Group, Stream]> = [];
    // Each with whether its spill was refused for the WAL (step 2 measures the budget's own).
    const refused: Refusal[] = [];
    for (const g of selecting) {
      const lane = e.lane(g);
      let reason: DropReason | undefined;
      while (reason === undefined && lane.ring.wouldOverflowBy(size)) {
        if (lane.ring.length === 0 || spec.whenFull === 'drop-newest') reason = 'overflow';
        else if (spec.whenFull === 'drop-oldest') g.budget.dropFromRing(lane, 'overflow');
        else if (!g.tier.spill(lane, this.#sh.spillBatch)) reason = 'spool_full';
      }
      if (reason === undefined) takers.push([g, lane]);
      else refused.push([g, lane, reason, reason === 'spool_full' && this.#sh.walRefused]);
    }
    if (takers.length === 0) return this.#dropAtIngest(e, refused, payload, ts, age);

    // 2. The shared memory budget, once.
    const first = takers[0] as [Group, Stream];
    this.#sh.spillRefused = false;
    this.#sh.walRefused = false;
    if (!first[0].budget.makeRoom(size + RECORD_COST, spec.priority, roomFor(spec.whenFull))) {
      if (spec.whenFull === 'block') return 'blocked';
      const reason: DropReason = this.#sh.spoolFailing || this.#sh.spillRefused ? 'spool_full' : 'overflow';
      if (spec.whenFull === 'spill' && this.#sh.spool !== undefined && takers.every(([, lane]) => lane.ring.length === 0)) {
        // Nothing less important is held: one row, owed by every group that took it.
        const recs = this.#copies(e, takers, refused, payload, ts, age);
        const [g0, lane0] = first;
        if (!g0.tier.spillRecords(lane0, [recs[0] as Rec])) {
          for (let i = 1; i < takers.length; i++) (takers[i] as [Group, Stream])[0].s.drop(recs[i] as Rec, 'spool_full');
          return 'dropped';
        }
        for (let i = 1; i < takers.length; i++) {
          const [g, lane] = takers[i] as [Group, Stream];
          g.tier.spilledElsewhere(lane, recs[i] as Rec);
        }
        return 'accepted';
      }
      return this.#dropAtIngest(e, [...takers.map(([g, lane]): Refusal => [g, lane, reason]), ...refused], payload, ts, age);
    }

    // 3. One record, a copy per group, charged once.
    const recs = this.#copies(e, takers, refused, payload, ts, age);
    for (let i = 0; i < takers.length; i++) {
      const [g, lane] = takers[i] as [Group, Stream];
      const rec = recs[i] as Rec;
      this.#keep(g, lane, rec);
    }
    if (this.#durable) this.#uncommittedRecords++;
    for (const [g] of takers) if (g.limited) this.shed(g);
    return 'accepted';
  }

  /** The common case, without allocating more than the record: every lane that selects the stream has room, and so has the budget. */
  #fastShared(e: StreamEntry, groups: readonly Group[], payload: Uint8Array, ts: number, age: number): boolean {
    const size = payload.length;
    let n = 0;
    let owers = 0;
    for (const g of groups) {
      if ((e.mask & g.bit) === 0) continue;
      if (e.lane(g).ring.wouldOverflowBy(size)) return false;
      n++;
      owers |= g.bit;
    }
    const g0 = groups[0];
    if (n === 0 || g0 === undefined || !g0.budget.fits(size + RECORD_COST, e.spec.priority)) return false;
    const seq = this.#seq(e);
    const sh = n > 1 ? new SharedRec(owers) : null;
    for (const g of groups) {
      if ((e.mask & g.bit) === 0) continue;
      const lane = e.lane(g);
      const rec = this.#newRecord(e, g, lane, seq, payload, ts, age);
      if (sh !== null) {
        rec.shared = sh;
        sh.recs.push(rec);
      }
      this.#keep(g, lane, rec);
    }
    if (this.#durable) this.#uncommittedRecords++;
    for (const g of groups) if ((owers & g.bit) !== 0 && g.limited) this.shed(g);
    return true;
  }

  /** Makes the copies of a new record for the groups that take it, and counts it dropped for those that refused it. */
  #copies(e: StreamEntry, takers: ReadonlyArray<[Group, Stream]>, refused: readonly Refusal[], payload: Uint8Array, ts: number, age: number): Rec[] {
    const seq = this.#seq(e);
    let owers = 0;
    for (const [g] of takers) owers |= g.bit;
    const sh = takers.length > 1 ? new SharedRec(owers) : null;
    const recs: Rec[] = [];
    for (const [g, lane] of takers) {
      const rec = this.#newRecord(e, g, lane, seq, payload, ts, age);
      rec.shared = sh;
      sh?.recs.push(rec);
      recs.push(rec);
    }
    for (const [g, lane, reason, wal] of refused) g.s.drop(this.#newRecord(e, g, lane, seq, payload, ts, age), reason, wal);
    return recs;
  }

  /** Spends a seq on a new record of the stream. */
  #seq(e: StreamEntry): number {
    e.ingested++;
    return this.#sh.nextSeq++;
  }

  /** A record taken by a group's lane: held against the budget, waiting for its durable commit, queued. */
  #keep(g: Group, lane: Stream, rec: Rec): void {
    g.budget.hold(rec);
    if (this.#durable) {
      rec.uncommitted = true;
      this.#uncommitted.push(rec);
    }
    this.#enqueue(g, lane, rec);
  }

  #enqueue(g: Group, lane: Stream, rec: Rec): void {
    lane.ring.push(rec);
    g.s.buffered++;
    g.s.bufferedBytes += rec.size;
    g.s.scheduler.enqueue(lane);
  }

  #newRecord(e: StreamEntry, g: Group, lane: Stream, seq: number, payload: Uint8Array, ts: number, age: number): Rec {
    const rec = new Rec(seq, lane, lane.priority, ts, age, payload);
    lane.ingested++;
    g.s.ingested++;
    return rec;
  }

  /** The record becomes a record and is dropped at once, for each group given. */
  #dropAtIngest(e: StreamEntry, drops: readonly Refusal[], payload: Uint8Array, ts: number, age: number): IngestOutcome {
    const seq = this.#seq(e);
    for (const [g, lane, reason, wal] of drops) g.s.drop(this.#newRecord(e, g, lane, seq, payload, ts, age), reason, wal);
    return 'dropped';
  }

  /** True when a record of `size` bytes would be taken by the stream now, by every group that selects it. */
  hasRoom(e: StreamEntry, groups: readonly Group[], size: number): boolean {
    for (const g of groups) {
      const lane = e.lanes[g.index];
      if ((e.mask & g.bit) !== 0 && lane !== undefined && lane.ring.wouldOverflowBy(size)) return false;
    }
    return this.fits(groups, size, e.spec.priority);
  }

  /** True when the memory budget has room for a record of `size` bytes at `priority` now, without evicting anything. */
  fits(groups: readonly Group[], size: number, priority: number): boolean {
    const g0 = groups[0];
    return g0 === undefined || g0.budget.fits(size + RECORD_COST, priority);
  }

  /** Durable mode's group commit (see `Pipeline.commit`). */
  commit(tier: SpoolTier | undefined): boolean {
    const batch = this.#uncommitted;
    if (batch.length === 0) return true;
    this.#uncommitted = [];
    this.#uncommittedRecords = 0;
    const owed = batch.filter((r) => r.uncommitted);
    for (const r of batch) r.uncommitted = false;
    return tier === undefined ? true : tier.commit(owed);
  }

  /** Drops the group's own oldest, least important waiting records until its backlog is within its bounds (after ingest, recovery, reload). */
  shed(g: Group): void {
    const maxRecords = g.spec.maxBacklogRecords ?? Infinity;
    const maxBytes = g.spec.maxBacklogBytes ?? Infinity;
    let bytes = maxBytes === Infinity ? 0 : g.backlogBytes();
    while (g.s.buffered + g.s.spooled > maxRecords || bytes > maxBytes) {
      // The least important lane that can give one up (a lane only on a failing spool cannot).
      const lanes = [...g.s.streams.values()].filter((l) => l.waiting > 0).sort((a, b) => b.priority - a.priority);
      let shed = false;
      for (const lane of lanes) {
        const before = lane.bufferedBytes + lane.spooledBytes;
        if (!this.#shedOne(g, lane)) continue;
        bytes -= before - (lane.bufferedBytes + lane.spooledBytes);
        shed = true;
        break;
      }
      if (!shed) return;
    }
  }

  /** Drops one record of the lane for its group (`lagging`), oldest tier first; false when it could not. */
  #shedOne(g: Group, lane: Stream): boolean {
    for (const [list, key] of [
      [lane.retry, 'retryBytes'],
      [lane.replay, 'replayBytes'],
    ] as const) {
      const rec = list.shift();
      if (rec === undefined) continue;
      lane[key] -= rec.size;
      g.s.forgetBuffered(rec);
      g.budget.discard(rec, 'lagging');
      return true;
    }
    while (lane.spooled > 0) {
      const before = lane.spooled;
      const n = g.tier.dropSpooled(lane, 1, 'lagging');
      // One shed, or the backlog's rows found gone from the spool (counted lost): the caller looks at the bound again.
      if (n > 0 || lane.spooled < before) return true;
      if (n < 0) break; // the spool fails: the newest in memory go instead, so the bound holds
      // 0: an empty span passed over; the next one may give one
    }
    if (lane.ring.length === 0) return false;
    g.budget.dropFromRing(lane, 'lagging');
    return true;
  }
}

/** A `block` stream's newcomer waits rather than make a record as important leave memory. */
function roomFor(policy: StreamSpec['whenFull']): RoomFor {
  return policy === 'block' ? 'blocking' : 'newcomer';
}
