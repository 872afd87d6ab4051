/**
 * The spool tier: records on disk. Spilling ring records to the spool within
 * the disk quota (the least important stream's oldest rows give way first),
 * single durable writes, reading a stream's backlog back into memory, counting
 * a backlog lost when it cannot be read, deleting acked and dropped rows in
 * one transaction per flush, and taking over / writing out what is owed at
 * start and at shutdown.
 *
 * One per group (its lanes' backlogs, its pending deletes); the quota and
 * the rows are shared. A row is written once for every group that owes the
 * record (`owers`); with several groups a group's release clears its bit
 * and the row is deleted with the last one (`SpoolPort.release*`). Then
 * `spoolBytes` follows the rows actually deleted: at once when the core
 * knows the release is the last (`SharedRec.owers` reached 0, or a copy read
 * back that only this group owed), else when the flush reports them.
 *
 * Invariants: spoolBytes <= spoolQuotaBytes; a spooled record is never
 * dropped for a more important one; every row not on disk any more is
 * counted (dropped, or taken back into memory) for each group that owed it.
 */
import { FORGIVEN_UNKNOWN, Rec, RECORD_OVERHEAD_BYTES as RECORD_COST, SharedRec } from './record.js';
import type { MemoryBudget } from './memory-budget.js';
import type { GroupParts, PipelineState } from './pipeline-state.js';
import type { Span, Stream } from './stream.js';
import type { DropReason } from './record.js';
import { SPOOL_ROW_OVERHEAD_BYTES, deleteFrames, walFrames, walShare, type Deleted, type DiskUse, type Released, type ReleasedOldest, type SpoolPort, type StoredRecord } from '../spool/spool-port.js';

/** Deletes kept for retry while the spool fails; beyond this they are given up (the rows come back once after a restart: at least once). */
const MAX_PENDING_DELETES = 1_000_000;
/**
 * What the disk holds once a write of `bytes` (rows then taking `rows` bytes
 * in all) is in the WAL and checkpointed into the database, the WAL not yet
 * cut back: the database (its free pages are reused first) and the WAL with
 * the write's frames.
 */
function diskAfterWrite(use: DiskUse, rows: number, bytes: number, between: boolean): number {
  return Math.max(use.file, rows) + use.wal + walFrames(use.pageSize, bytes, between);
}

/** What the rows really take beyond the estimate (page slack, the index), as SQLite last said. */
function rowSlack(use: DiskUse | undefined, spoolBytes: number): number {
  return use === undefined ? 0 : Math.max(0, use.live - spoolBytes);
}

/** Headroom below the quota within which what the disk really holds is not measured (spool-port.ts `diskUse`). */
const FAR_BELOW_QUOTA_BYTES = 16 * 1024 * 1024;

export class SpoolTier {
  readonly #s: PipelineState;
  readonly #budget: MemoryBudget;
  /** Seqs on disk whose records were acked or dropped: deleted in one transaction by `flush`. */
  #pendingDeletes: number[] = [];
  #pendingDeleteBytes = 0;
  /** Several groups: seqs on disk this group released, the row staying while another group may owe it. */
  #pendingReleases: number[] = [];
  /** While the spool refuses deletes, reads pass over the rows still to delete (`#pendingSet`). */
  #pendingCache: { deletes: number[]; releases: number[]; size: number; set: ReadonlySet<number> } | undefined;

  constructor(state: PipelineState, budget: MemoryBudget) {
    this.#s = state;
    this.#budget = budget;
  }

  get pendingDeletes(): number {
    return this.#pendingDeletes.length + this.#pendingReleases.length;
  }

  get pendingDeleteBytes(): number {
    return this.#pendingDeleteBytes;
  }

  /**
   * Takes over what the spool holds at start: every stored record becomes a
   * spooled record of its stream (`recovered`), and seq continues above them.
   */
  recover(spool: SpoolPort, streamFor: (name: string) => Stream): number {
    const st = this.#s;
    let n = 0;
    // With several groups each takes the rows it owes; the shared bytes are counted once, by the caller.
    for (const s of st.shared.multi ? spool.summaryFor(st.bit) : spool.summary()) {
      const stream = streamFor(s.stream);
      stream.spooled += s.records;
      stream.spooledBytes += s.payloadBytes;
      stream.addSpan(this.#belowFirst(s.stream, 0, s.maxSeq), s.maxSeq);
      st.spooled += s.records;
      if (!st.shared.multi) st.spoolBytes += s.payloadBytes + s.records * SPOOL_ROW_OVERHEAD_BYTES;
      st.nextSeq = Math.max(st.nextSeq, s.maxSeq + 1);
      st.scheduler.enqueue(stream);
      n += s.records;
    }
    st.recovered += n;
    return n;
  }

  /**
   * The seq just below a stream's oldest row in (after, upto]: a span
   * starts there, so the quota's choice among streams of one priority (the
   * oldest rows first, `oldestSpooled`) goes by where the rows really
   * start, at a start and after a drop. `after` when no row can be read now
   * (the next read or drop finds out).
   */
  #belowFirst(stream: string, after: number, upto: number): number {
    const spool = this.#s.spool as SpoolPort; // the stream has rows in it
    try {
      const first = this.#s.shared.multi ? spool.readFor(stream, after, upto, 1, this.#s.bit)[0] : spool.read(stream, after, upto, 1)[0];
      return first === undefined ? after : first.seq - 1;
    } catch (err) {
      this.#s.shared.spoolFailed(err);
      return after;
    }
  }

  /** Drops a stream's spooled records born before `cutoff` (age clock) as `expired`; returns how many. */
  expireSpooled(s: Stream, cutoff: number): number {
    const st = this.#s;
    let n = 0;
    if (s.spooled > 0 && this.#applyReleases() && this.#applyDeletes()) {
      const spool = st.spool as SpoolPort; // it holds the stream's backlog
      for (const span of s.spans) {
        let gone: Released;
        try {
          gone = st.shared.multi ? spool.releaseBornBefore(s.name, span.after, span.upto, cutoff, st.bit) : single(spool.deleteBornBefore(s.name, span.after, span.upto, cutoff));
        } catch (err) {
          this.#s.shared.spoolFailed(err);
          break; // the next sweep tries again
        }
        this.#forgetSpooled(s, gone.records, gone.payloadBytes);
        this.#freed(gone.freed);
        s.dropped.expired += gone.records;
        st.dropped += gone.records;
        n += gone.records;
      }
    }
    return n;
  }

  /** Deletes from the spool what was acked or dropped since the last call, in one transaction. */
  flush(): void {
    if (this.#applyReleases()) this.#applyDeletes();
  }

  /**
   * Deletes the rows of records done with (acked, dropped) now. A read or a
   * delete by range (quota, TTL) must run after it: a span can reach over
   * the row of a record that left memory since, and that row is not a
   * spooled record.
   * False when the spool failed (they stay pending).
   */
  #applyDeletes(): boolean {
    if (this.#pendingDeletes.length === 0) return true;
    const spool = this.#s.spool as SpoolPort; // the rows to delete were written to it
    try {
      spool.delete(this.#pendingDeletes);
    } catch (err) {
      this.#s.shared.spoolFailed(err);
      if (this.#pendingDeletes.length > MAX_PENDING_DELETES) {
        this.#pendingDeletes = [];
        this.#pendingDeleteBytes = 0;
      }
      return false;
    }
    this.#pendingDeletes = [];
    this.#pendingDeleteBytes = 0;
    this.#s.shared.spoolWorked(spool);
    return true;
  }

  /**
   * Applies this group's pending releases now: a read or release that picks
   * rows by the group's bit must not see rows it is already done with.
   * False when the spool failed (they stay pending).
   */
  #applyReleases(): boolean {
    if (this.#pendingReleases.length === 0) return true;
    const spool = this.#s.spool as SpoolPort; // the rows to release were written to it
    try {
      this.#freed(spool.release(this.#pendingReleases, this.#s.bit));
      this.#pendingReleases = [];
      this.#s.shared.spoolWorked(spool);
      return true;
    } catch (err) {
      this.#s.shared.spoolFailed(err);
      if (this.#pendingReleases.length > MAX_PENDING_DELETES) this.#pendingReleases = [];
      return false;
    }
  }

  /** The seqs of rows waiting for their delete or release, as a set; made again only when they changed (they only grow or are replaced). */
  #pendingSet(): ReadonlySet<number> {
    const c = this.#pendingCache;
    if (c !== undefined && c.deletes === this.#pendingDeletes && c.releases === this.#pendingReleases && c.size === this.#pendingDeletes.length + this.#pendingReleases.length) return c.set;
    const set = new Set([...this.#pendingDeletes, ...this.#pendingReleases]);
    this.#pendingCache = { deletes: this.#pendingDeletes, releases: this.#pendingReleases, size: this.#pendingDeletes.length + this.#pendingReleases.length, set };
    return set;
  }

  /**
   * At shutdown: writes every record still owed (`owed()`: waiting and
   * in-flight records) and not yet on disk to the spool, and records the
   * delivery attempts of those that are. Returns how many records were written.
   */
  persist(owed: () => Iterable<Rec>): number {
    const st = this.#s;
    const spool = st.spool;
    if (spool === undefined) return 0;
    this.flush();
    const fresh: Rec[] = [];
    const attempts: Array<{ seq: number; attempt: number; failures: number }> = [];
    for (const rec of owed()) {
      if (rec.onDisk) attempts.push({ seq: rec.seq, attempt: rec.attempt, failures: rec.failures });
      else fresh.push(rec);
    }
    // The quota holds here too: the most important records get the room first.
    fresh.sort((a, b) => a.stream.priority - b.stream.priority || a.seq - b.seq);
    const keep: StoredRecord[] = [];
    let unwritten = 0;
    // Sorted by priority first: rows of several priorities land between one another.
    const between = fresh.some((r, i) => r.seq <= (i === 0 ? st.shared.lastWrittenSeq : (fresh[i - 1] as Rec).seq));
    for (const rec of fresh) {
      const bytes = rec.size + SPOOL_ROW_OVERHEAD_BYTES;
      if (this.#makeDiskRoom(bytes, rec.stream.priority, unwritten, between)) {
        st.spoolBytes += bytes;
        unwritten += bytes;
        keep.push(stored(rec, st.shared.multi));
        markOnDisk(rec);
      } else {
        done(rec);
        st.drop(rec, 'spool_full');
      }
    }
    this.flush();
    spool.write(keep);
    if (!st.shared.multi) spool.setAttempts(attempts);
    else {
      // Several groups: each group's attempts are its own (the row's column is not).
      const mine = [];
      for (const rec of owed()) if (rec.onDisk && rec.attempt > 0) mine.push({ seq: rec.seq, bit: st.bit, attempt: rec.attempt, failures: rec.failures });
      spool.setGroupAttempts(mine);
    }
    return keep.length;
  }

  /**
   * Moves up to `n` of the oldest ring records to the spool (without a spool:
   * drops the oldest as `overflow`). False when they cannot be written now
   * (full disk, quota held by more important records): then nothing left
   * memory, so records a consumer can still take are never dropped for a
   * spool that is failing; the caller decides what gives way instead.
   */
  spill(stream: Stream, n: number): boolean {
    if (this.#s.spool === undefined) {
      this.#budget.dropFromRing(stream, 'overflow');
      return true;
    }
    const batch: Rec[] = [];
    for (const rec of stream.ring) {
      if (batch.length >= n) break;
      batch.push(rec);
    }
    if (!this.#write(batch, stream.priority)) {
      this.#s.spillRefused = true;
      return false;
    }
    for (const rec of batch) {
      stream.ring.shift();
      this.#s.forgetBuffered(rec);
      this.#budget.release(rec);
    }
    this.#spilled(stream, batch);
    return true;
  }

  /**
   * Writes records already out of memory (oldest first, newer than the
   * stream's backlog) to the spool; false when they could not be written:
   * then they were dropped as `spool_full`.
   */
  spillRecords(stream: Stream, batch: readonly Rec[]): boolean {
    if (this.#write(batch, stream.priority)) {
      this.#spilled(stream, batch);
      return true;
    }
    for (const rec of batch) {
      this.forgetOnDisk(rec);
      this.#s.drop(rec, 'spool_full');
    }
    return false;
  }

  /** A group copy of a record another group's tier just wrote: it joins this group's backlog without a write. */
  spilledElsewhere(stream: Stream, rec: Rec): void {
    this.#spilled(stream, [rec]);
  }

  /**
   * Durable mode's group commit: writes the records not yet on disk in one
   * transaction, within the quota (room is made below the least important of
   * them). False when they could not be written: they stay in memory, not
   * durable, and their sources must not be acknowledged.
   */
  commit(recs: readonly Rec[]): boolean {
    let prio = 0;
    for (const r of recs) prio = Math.max(prio, r.stream.priority);
    return this.#write(recs, prio, true);
  }

  /**
   * Writes the records of `batch` not yet on disk in one transaction, within
   * the quota; marks them on disk. `withDeletes`: the pending deletes go in
   * the same transaction (a group commit: one transaction, one fsync a turn).
   */
  #write(batch: readonly Rec[], prio: number, withDeletes = false): boolean {
    const st = this.#s;
    let toWrite = batch.filter((r) => !r.onDisk);
    if (toWrite.length === 0) return true;
    if (st.shared.multi) toWrite = oncePerRecord(toWrite);
    let bytes = 0;
    let first = Infinity;
    let last = 0;
    for (const r of toWrite) {
      bytes += r.size + SPOOL_ROW_OVERHEAD_BYTES;
      first = Math.min(first, r.seq);
      last = Math.max(last, r.seq);
    }
    // A record older than rows already written (another stream's, spilled first) goes between them.
    if (!this.#makeDiskRoom(bytes, prio, 0, first <= st.shared.lastWrittenSeq)) return false;
    const deletes = withDeletes ? this.#pendingDeletes : [];
    try {
      (st.spool as SpoolPort).write(
        toWrite.map((r) => stored(r, st.shared.multi)),
        deletes,
      );
    } catch (err) {
      this.#s.shared.spoolFailed(err);
      return false;
    }
    if (deletes.length > 0) {
      this.#pendingDeletes = [];
      this.#pendingDeleteBytes = 0;
    }
    for (const r of toWrite) markOnDisk(r);
    st.shared.lastWrittenSeq = Math.max(st.shared.lastWrittenSeq, last);
    st.spoolBytes += bytes;
    st.spoolFailing = false;
    return true;
  }

  /** Counts records just moved to disk as the stream's spooled backlog. */
  #spilled(stream: Stream, batch: readonly Rec[]): void {
    const st = this.#s;
    for (const rec of batch) {
      stream.spooled++;
      stream.spooledBytes += rec.size;
    }
    if (batch.length > 0) stream.addSpilled((batch[0] as Rec).seq, (batch[batch.length - 1] as Rec).seq);
    st.spooled += batch.length;
    stream.spilled += batch.length;
    st.scheduler.enqueue(stream);
  }

  /** Writes one record to the spool within the quota; marks it on disk. */
  writeOne(rec: Rec): boolean {
    return this.#write([rec], rec.stream.priority);
  }

  /**
   * Reads the next part of a stream's backlog into memory; false when it
   * cannot now. Room is made for the first record before anything is taken;
   * the rest come only while they fit.
   */
  load(stream: Stream): boolean {
    const st = this.#s;
    const budget = this.#budget;
    const spool = st.spool as SpoolPort; // the stream's backlog is on it
    const read = () => {
      // A span can reach over the row of a record done with since (dropped from memory while on disk):
      // its delete is applied first, or the read would bring it back to be sent again. When the spool
      // refuses the delete (a WAL that filled the disk), the read passes over the rows still to delete:
      // what is held on disk is delivered all the same.
      const done = this.#applyReleases() && this.#applyDeletes() ? undefined : this.#pendingSet();
      for (let span = stream.spans[0]; span !== undefined; span = stream.spans[0]) {
        for (let after = span.after; ; ) {
          const rows = st.shared.multi ? spool.readFor(stream.name, after, span.upto, st.replayBatch, st.bit) : spool.read(stream.name, after, span.upto, st.replayBatch);
          if (rows.length === 0) break;
          const owed = done === undefined ? rows : rows.filter((r) => !done.has(r.seq));
          if (owed.length > 0) return owed;
          after = (rows[rows.length - 1] as StoredRecord).seq;
        }
        stream.spans.shift(); // read to its end (or its rows were deleted)
      }
      return [];
    };
    let rows;
    try {
      rows = read();
    } catch (err) {
      // The rows are there but cannot be read now (I/O error, busy, a bad page): the stream waits and
      // the next dispatch tries again; other streams go on, and /healthz says the spool is failing.
      // Counting them lost here would leave rows that a restart recovers again: counted twice.
      this.#s.shared.spoolFailed(err);
      return false;
    }
    // Making room may spill, and a full quota may then delete this backlog's oldest rows: read again.
    // By the stream's priority now (a reload may have changed it since the rows were written).
    for (let first = rows[0]; first !== undefined && !budget.fits(first.payload.length + RECORD_COST, stream.priority); first = rows[0]) {
      if (!budget.makeRoom(first.payload.length + RECORD_COST, stream.priority, 'backlog')) return false;
      try {
        rows = read();
      } catch (err) {
        this.#s.shared.spoolFailed(err);
        return false;
      }
    }
    if (rows.length === 0) {
      this.#lostBacklog(stream);
      return true;
    }
    const recs: Rec[] = [];
    let bytes = 0;
    for (const row of rows) {
      if (!budget.fits(row.payload.length + RECORD_COST, stream.priority)) break;
      const rec = new Rec(row.seq, stream, row.prio, row.ts, row.born, row.payload);
      rec.onDisk = true;
      if (st.shared.multi) {
        // This group's own copy; its row may be owed by others too (then its release is settled by the flush).
        // Taps may have seen it before it went to disk: they are not offered it again (at most once).
        rec.shared = new SharedRec(row.owers ?? st.bit);
        rec.shared.tapped = true;
      }
      rec.attempt = row.attempt;
      rec.failures = row.failures ?? 0;
      // A delivery that neither was acked nor counted was forgiven somewhere (or cut by a restart).
      if (rec.attempt > rec.failures) rec.forgiven = FORGIVEN_UNKNOWN;
      budget.hold(rec);
      recs.push(rec);
      bytes += rec.size;
    }
    stream.advance((recs[recs.length - 1] as Rec).seq);
    stream.spooled -= recs.length;
    stream.spooledBytes -= bytes;
    st.spooled -= recs.length;
    stream.addReplay(recs);
    st.buffered += recs.length;
    st.bufferedBytes += bytes;
    return true;
  }

  /** A record that has a copy on disk is done with: delete the copy in the next flush. */
  forgetOnDisk(rec: Rec): void {
    const sh = rec.shared;
    if (sh !== null) sh.owers &= ~this.#s.bit;
    if (!rec.onDisk) return;
    rec.onDisk = false;
    if (sh !== null && sh.owers !== 0) {
      // Another group may still owe the row: release this group's bit; the flush says whether the row went.
      this.#pendingReleases.push(rec.seq);
      return;
    }
    const bytes = rec.size + SPOOL_ROW_OVERHEAD_BYTES;
    this.#pendingDeletes.push(rec.seq);
    this.#pendingDeleteBytes += bytes;
    this.#s.spoolBytes -= bytes;
  }

  /**
   * Frees quota for `bytes` of priority `prio` (to be written with
   * `unwritten` bytes taken before it and not written yet): the least
   * important stream's oldest spooled records go first (`spool_full`), never
   * more important ones.
   */
  #makeDiskRoom(bytes: number, prio: number, unwritten = 0, between = false): boolean {
    const st = this.#s;
    st.shared.walRefused = false;
    if (bytes > st.spoolQuotaBytes) return false;
    // The quota bounds what is really on disk (spool-port.ts `diskUse`), measured before every
    // transaction here: rows take more than the estimate (page slack, the index): the oldest,
    // least important give way for that; the WAL is transient (checkpoints cut it back): a write
    // or a delete it leaves no room for is refused rather than the quota passed.
    // Far below the quota the disk cannot be over it (rows take a few % more than the estimate, the
    // WAL a few MiB): no need to ask (two pragmas and a stat per commit on the durable hot path).
    let use = st.spoolBytes * 1.25 + 2 * bytes + FAR_BELOW_QUOTA_BYTES <= st.spoolQuotaBytes ? undefined : st.spool?.diskUse?.();
    const write = unwritten + bytes;
    // The WAL needs room too: twice its share of the quota (the WAL guard checkpoints once it passes
    // its share, and it grows on until the checkpoint truncates it), the write's own frames and
    // those of the delete that makes room for it. Rows that filled the quota would leave none, and
    // dropping rows never shrinks the file (their pages are reused, or handed back by reclaim), so
    // every later write would be refused while the oldest rows stayed.
    const walRoom = use === undefined ? 0 : 2 * walShare(st.spoolQuotaBytes) + walFrames(use.pageSize, write, between);
    let flushed = false;
    for (;;) {
      const { victim, owner } = this.#diskVictim();
      const n = Math.max(st.spillBatch, 1);
      const deleting = use === undefined || victim === undefined ? 0 : deleteFrames(use.pageSize, st.spoolBytes, victim.spooled, n);
      if (st.spoolBytes + rowSlack(use, st.spoolBytes) + bytes + walRoom + deleting <= st.spoolQuotaBytes) break;
      if (victim === undefined || victim.priority < prio) {
        // Releases of several groups may have freed rows the flush has not counted yet.
        if (flushed) return false;
        flushed = true;
        for (const g of st.shared.groups) g.tier.flush();
        if (use !== undefined) use = st.spool?.diskUse?.() ?? use;
        continue;
      }
      // A WAL a checkpoint has not cut back yet, with no room for the delete and the write after
      // it: refused, nothing dropped for it (the rows stay; the WAL guard gives the room back).
      if (use !== undefined && diskAfterWrite(use, 0, write, between) + deleting > st.spoolQuotaBytes) return this.#walFull();
      if (!(owner as GroupParts).tier.dropOldestSpooled(victim)) return false; // found with the victim
      // The delete wrote to the WAL too.
      if (use !== undefined) use = st.spool?.diskUse?.() ?? use;
    }
    if (use === undefined) return true;
    const rows = st.spoolBytes + rowSlack(use, st.spoolBytes) + bytes;
    if (diskAfterWrite(use, rows, write, between) <= st.spoolQuotaBytes) return true;
    // The database file alone (free pages not handed back yet) leaves no room, or the WAL does.
    return diskAfterWrite({ ...use, wal: 0 }, rows, write, between) > st.spoolQuotaBytes ? false : this.#walFull();
  }

  /** The lane whose spooled rows give way first, across groups: the least important, then the oldest rows. */
  #diskVictim(): { readonly victim: Stream | undefined; readonly owner: GroupParts | undefined } {
    let victim: Stream | undefined;
    let owner: GroupParts | undefined;
    for (const g of this.#s.shared.groups) {
      for (const s of g.s.streams.values()) {
        if (s.spooled === 0) continue;
        if (victim === undefined || s.priority > victim.priority || (s.priority === victim.priority && oldestSpooled(s) < oldestSpooled(victim))) {
          victim = s;
          owner = g;
        }
      }
    }
    return { victim, owner };
  }

  /**
   * After a reload lowered the quota, or a start found more on disk than
   * it allows: the least important, oldest spooled records go
   * (`spool_full`) until the rows leave what a write needs beside them
   * (the WAL's room and the frames of the delete that makes room next, as
   * in `#makeDiskRoom`). Rows only: their pages stay in the file until they
   * are handed back (the caller reclaims them at once), so the file
   * cannot be what refuses here, as it refuses a write.
   */
  fitQuota(): void {
    const st = this.#s;
    const spool = st.spool;
    if (spool === undefined) return;
    for (;;) {
      const { victim, owner } = this.#diskVictim();
      if (victim === undefined) return;
      const use = spool.diskUse?.();
      const room = use === undefined ? 0 : 2 * walShare(st.spoolQuotaBytes) + walFrames(use.pageSize, 0, true) + deleteFrames(use.pageSize, st.spoolBytes, victim.spooled, Math.max(st.spillBatch, 1));
      if (st.spoolBytes + rowSlack(use, st.spoolBytes) + room <= st.spoolQuotaBytes) return;
      if (!(owner as GroupParts).tier.dropOldestSpooled(victim)) return;
    }
  }

  /** A write or its delete refused because the WAL, waiting for its checkpoint, leaves no room under the quota: what gives way instead is counted as such. */
  #walFull(): false {
    this.#s.shared.walRefused = true;
    return false;
  }

  /** Drops (for this group) the oldest rows of a lane's backlog to free quota; false when the spool failed. */
  dropOldestSpooled(victim: Stream): boolean {
    return this.dropSpooled(victim, Math.max(this.#s.spillBatch, 1), 'spool_full') >= 0;
  }

  /**
   * Drops (for this group only, as `reason`) up to `n` of the oldest records
   * of a lane's backlog on disk (it has one); returns how many (0: its first
   * span was empty and is gone, try again), or -1 when it cannot (spool failed).
   */
  dropSpooled(victim: Stream, n: number, reason: DropReason): number {
    const st = this.#s;
    const spool = st.spool as SpoolPort;
    const span = victim.spans[0] as Span;
    if (!this.#applyReleases() || !this.#applyDeletes()) return -1;
    let gone: ReleasedOldest;
    try {
      if (st.shared.multi) gone = spool.releaseOldest(victim.name, span.after, span.upto, n, st.bit);
      else {
        const d = spool.deleteOldest(victim.name, span.after, span.upto, n);
        gone = { ...single(d), last: d.last };
      }
    } catch (err) {
      this.#s.shared.spoolFailed(err);
      return -1;
    }
    if (gone.records === 0) {
      victim.spans.shift();
      if (victim.spans.length === 0) this.#lostBacklog(victim);
      return 0;
    }
    this.#forgetSpooled(victim, gone.records, gone.payloadBytes);
    this.#freed(gone.freed);
    victim.dropped[reason] += gone.records;
    st.dropped += gone.records;
    // The backlog now starts after them, at its next row: the next victim is chosen by where its rows really start.
    victim.advance(gone.last);
    const head = victim.spans[0];
    if (head !== undefined && victim.spooled > 0) victim.advance(this.#belowFirst(victim.name, head.after, head.upto));
    if (victim.spans.length === 0) this.#lostBacklog(victim);
    return gone.records;
  }

  /** The accounting says a stream has records on disk that are not there (deleted outside, or corrupt): count them lost. */
  #lostBacklog(stream: Stream): void {
    if (stream.spooled === 0) return;
    stream.dropped.spool_full += stream.spooled;
    this.#s.dropped += stream.spooled;
    // With one group the rows are this group's: their bytes go with them. With several, others may hold them.
    if (!this.#s.shared.multi) this.#freed({ records: stream.spooled, payloadBytes: stream.spooledBytes });
    this.#forgetSpooled(stream, stream.spooled, stream.spooledBytes);
    stream.spans.length = 0;
  }

  /** This group's backlog lost `records` (its spooled counts). */
  #forgetSpooled(stream: Stream, records: number, payloadBytes: number): void {
    stream.spooled -= records;
    stream.spooledBytes -= payloadBytes;
    this.#s.spooled -= records;
  }

  /** Rows deleted from the spool: their quota is free. */
  #freed(d: Deleted): void {
    this.#s.spoolBytes -= d.payloadBytes + d.records * SPOOL_ROW_OVERHEAD_BYTES;
  }
}

/** Where a stream's oldest rows on disk start (its first span's `after`): the lower, the older. */
function oldestSpooled(s: Stream): number {
  return s.spans[0]?.after ?? Infinity;
}

/**
 * The row of a record. One group: its delivery counts in the row's columns.
 * Several: the columns stay 0 (a row is nobody's alone; a spool read per
 * group falls back on them only for rows written with one group), and the
 * writing group's counts go with the row (`groupAttempts`).
 */
function stored(rec: Rec, multi: boolean): StoredRecord {
  const sh = rec.shared;
  const owers = sh === null ? rec.stream.bit : sh.owers;
  if (!multi) return { seq: rec.seq, stream: rec.stream.name, prio: rec.prio, ts: rec.ts, born: rec.born, attempt: rec.attempt, failures: rec.failures, payload: rec.payload, owers };
  const groupAttempts = rec.attempt > 0 ? [{ bit: rec.stream.bit, attempt: rec.attempt, failures: rec.failures }] : undefined;
  return { seq: rec.seq, stream: rec.stream.name, prio: rec.prio, ts: rec.ts, born: rec.born, attempt: 0, failures: 0, payload: rec.payload, owers, ...(groupAttempts === undefined ? {} : { groupAttempts }) };
}

/** A deletion with one group: what it owed is what was freed. */
function single(d: Deleted): Released {
  return { records: d.records, payloadBytes: d.payloadBytes, freed: d };
}

/** The record is written: every group copy of it now has a row (a copy that group is done with is out of memory). */
function markOnDisk(rec: Rec): void {
  const sh = rec.shared;
  if (sh === null) rec.onDisk = true;
  else for (const r of sh.recs) r.onDisk = true;
}

/** A group is done with a record (dropped without a row): later rows are not written for it. */
function done(rec: Rec): void {
  const sh = rec.shared;
  if (sh !== null) sh.owers &= ~rec.stream.bit;
}

/** One copy per shared record: group copies of one record are one row. */
function oncePerRecord(recs: readonly Rec[]): Rec[] {
  const seen = new Set<SharedRec>();
  const out: Rec[] = [];
  for (const r of recs) {
    const sh = r.shared;
    if (sh !== null) {
      if (seen.has(sh)) continue;
      seen.add(sh);
    }
    out.push(r);
  }
  return out;
}
