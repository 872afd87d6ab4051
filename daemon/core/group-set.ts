/**
 * The live groups of a pipeline and their bits in spool rows: which bit a
 * group gets (its own from the spool file, kept across restarts; else one no
 * live group uses and no row of a removed group still carries), adding and
 * removing groups on reload, and releasing the rows of groups no longer
 * configured (at start, or once a failing spool works again).
 *
 * Invariants: live groups have distinct bits; a bit in `#staleBits` (a
 * removed group whose rows are not released yet) is given to no group; the
 * spool's name to bit map is rewritten only after the rows of groups it
 * names and the config does not are released.
 */
import { Group, buffered, MAX_GROUPS, type GroupLimits } from './group.js';
import type { SharedState } from './pipeline-state.js';
import type { GroupChanges, GroupSpec } from './pipeline-types.js';
import type { StreamEntry } from './stream-registry.js';
import { SPOOL_ROW_OVERHEAD_BYTES } from '../spool/spool-port.js';

export class GroupSet {
  readonly #sh: SharedState;
  readonly #limits: GroupLimits;
  /** The live groups, in config order. */
  #groups: Group[] = [];
  readonly #byName = new Map<string, Group>();
  #releasedAtStart: Array<{ group: string; records: number }> = [];
  /** The group to bit map is not written yet (at start, or the spool failed): written by `settle`. */
  #bitsDirty = true;
  /** Removed groups whose pending spool deletes could not be flushed yet (spool failing). */
  #retiring: Group[] = [];
  /** Bits of removed groups whose rows are not released yet: retried by `flushRemoved`, not reused meanwhile. */
  #staleBits = 0;

  constructor(shared: SharedState, limits: GroupLimits) {
    this.#sh = shared;
    this.#limits = limits;
  }

  get list(): readonly Group[] {
    return this.#groups;
  }

  get(name: string): Group | undefined {
    return this.#byName.get(name);
  }

  /** Groups no longer configured whose records the spool held at start, released by `settle`. */
  get releasedAtStart(): ReadonlyArray<{ readonly group: string; readonly records: number }> {
    return this.#releasedAtStart;
  }

  /** Pending spool deletes of removed groups (records, bytes). */
  retiringPending(): [number, number] {
    let n = 0;
    let bytes = 0;
    for (const g of this.#retiring) {
      n += g.tier.pendingDeletes;
      bytes += g.tier.pendingDeleteBytes;
    }
    return [n, bytes];
  }

  /** Flushes removed groups' pending deletes, then releases their bits. */
  flushRemoved(): void {
    for (const g of this.#retiring) g.tier.flush();
    this.#retiring = this.#retiring.filter((g) => g.tier.pendingDeletes > 0);
    if (this.#staleBits === 0) return;
    for (let i = 0; i < MAX_GROUPS; i++) {
      if ((this.#staleBits & 2 ** i) === 0 || this.#retiring.some((g) => g.index === i)) continue;
      try {
        this.#releaseBit(i);
        this.#staleBits &= ~(2 ** i);
      } catch (err) {
        this.#sh.spoolFailed(err);
        return;
      }
    }
  }

  apply(specs: ReadonlyArray<GroupSpec>, entries: Iterable<StreamEntry>): GroupChanges {
    if (specs.length > MAX_GROUPS) throw new RangeError(`at most ${MAX_GROUPS} groups, got ${specs.length}`);
    // Walked once per removed group and once more below: an iterator would be spent by the first.
    const streams = [...entries];
    const wanted = new Map(specs.map((g) => [g.name, g]));
    // Read before anything changes: a spool that fails here leaves the groups as they were.
    const known = this.#knownBits(specs.some((g) => !this.#byName.has(g.name)));
    const removed: Array<{ name: string; consumers: number[]; released: number }> = [];
    for (const g of [...this.#groups]) if (!wanted.has(g.name)) removed.push(this.#remove(g, streams));
    const added: string[] = [];
    for (const spec of specs) {
      const g = this.#byName.get(spec.name);
      if (g !== undefined) {
        g.spec = spec;
        continue;
      }
      // Its bit from the spool if it has one; else one no live group uses and no row of a group no longer configured carries.
      const used = new Set(this.#groups.map((x) => x.index));
      for (const [n, i] of known) if (n !== spec.name) used.add(i);
      for (let i = 0; i < MAX_GROUPS; i++) if ((this.#staleBits & 2 ** i) !== 0) used.add(i);
      let index = known.get(spec.name);
      if (index === undefined || used.has(index)) {
        index = 0;
        while (used.has(index)) index++;
      }
      if (index >= MAX_GROUPS) {
        index = lowestFree(this.#groups);
        this.tryReleaseBit(index);
      }
      const group = new Group(this.#sh, spec, index, this.#limits);
      this.#groups.push(group);
      this.#byName.set(spec.name, group);
      added.push(spec.name);
    }
    // Config order.
    this.#groups = specs.map((s) => this.#byName.get(s.name) as Group);
    this.#sh.groups = this.#groups;
    this.#sh.multi = this.#groups.length > 1;
    for (const e of streams) e.select(this.#groups);
    if (added.length > 0 || removed.length > 0) this.#bitsDirty = true;
    return { added, removed };
  }

  /**
   * The spool's group to bit map, for groups being added: once written
   * (`settle`) it is the live groups' own; before that (at start, or while
   * the spool failed) it is read from the spool. When it cannot be read, a
   * new group's bit cannot be chosen (it might be that of an earlier run's
   * group whose rows are not released yet, and their release would then take
   * the new group's rows): the change is refused, nothing changed.
   */
  #knownBits(adding: boolean): ReadonlyMap<string, number> {
    const spool = this.#sh.spool;
    if (!adding || spool === undefined || !this.#bitsDirty) return new Map(this.#groups.map((g) => [g.name, g.index]));
    try {
      return spool.groupBits();
    } catch (err) {
      this.#sh.spoolFailed(err);
      throw new Error(`groups not changed: the spool's group map cannot be read (${(err as Error).message})`, { cause: err });
    }
  }

  /** A group leaves: what only it held is released (its bits in the spool too); returns its consumers and how many records. */
  #remove(g: Group, streams: Iterable<StreamEntry>): { name: string; consumers: number[]; released: number } {
    const consumers = [...g.ledger.values()].map((c) => c.id);
    const released = g.s.buffered + g.s.spooled + g.inflight.size;
    for (const rec of [...buffered(g), ...g.inflight.values()]) {
      g.budget.release(rec);
      // Not owed by this group any more: a durable commit still to come must not write its copy.
      rec.uncommitted = false;
      if (rec.shared !== null) rec.shared.owers &= ~g.bit;
    }
    g.tier.flush();
    const spool = this.#sh.spool;
    if (g.tier.pendingDeletes > 0) {
      // Its deletes first (their bytes are already off the quota), then its bits: both when the spool works again.
      this.#retiring.push(g);
      this.#staleBits |= g.bit;
    } else if (spool !== undefined) {
      try {
        const gone = spool.releaseGroups(g.bit);
        this.#sh.spoolBytes -= gone.freed.payloadBytes + gone.freed.records * SPOOL_ROW_OVERHEAD_BYTES;
        this.#sh.spoolWorked(spool);
      } catch (err) {
        this.#sh.spoolFailed(err); // its bits stay until a later flush (or the next start) releases them
        this.#staleBits |= g.bit;
      }
    }
    for (const e of streams) e.lanes[g.index] = undefined;
    this.#byName.delete(g.name);
    this.#groups = this.#groups.filter((x) => x !== g);
    this.#sh.groups = this.#groups;
    return { name: g.name, consumers, released };
  }

  /** Rows carrying a bit of a group no longer configured: released (at start, or when the bit is reused). */
  #releaseBit(index: number): number {
    const spool = this.#sh.spool;
    if (spool === undefined) return 0;
    const gone = spool.releaseGroups(2 ** index);
    this.#sh.spoolBytes -= gone.freed.payloadBytes + gone.freed.records * SPOOL_ROW_OVERHEAD_BYTES;
    this.#sh.spoolWorked(spool);
    return gone.records;
  }

  tryReleaseBit(index: number): void {
    try {
      this.#releaseBit(index);
    } catch (err) {
      this.#sh.spoolFailed(err);
    }
  }

  /**
   * Once, before the spool is used for groups: rows of groups the spool
   * knows and the config no longer has are released, then the configured
   * groups' bits are written to the spool (retried by `flushSpool` while the
   * spool fails).
   */
  settle(): void {
    const spool = this.#sh.spool;
    if (spool === undefined || !this.#bitsDirty) return;
    try {
      for (const [name, index] of spool.groupBits()) {
        // Live groups keep theirs; a removed group's bits wait for its deletes (the stale bits, below in `flushSpool`).
        if (this.#byName.get(name)?.index === index || (this.#staleBits & 2 ** index) !== 0) continue;
        const records = this.#releaseBit(index);
        if (records > 0) this.#releasedAtStart.push({ group: name, records });
      }
    } catch (err) {
      this.#sh.spoolFailed(err);
      return;
    }
    try {
      spool.setGroupBits(new Map(this.#groups.map((g) => [g.name, g.index])));
      this.#bitsDirty = false;
    } catch (err) {
      this.#sh.spoolFailed(err); // still dirty: written by a later flush
    }
  }
}

/** The lowest index no live group uses. */
function lowestFree(groups: readonly Group[]): number {
  let i = 0;
  while (groups.some((g) => g.index === i)) i++;
  return i;
}
