/**
 * What the core needs of a spool: a durable, per-stream FIFO of records on
 * disk. Synchronous on purpose (better-sqlite3 is): the core stays a plain
 * state machine with no callbacks in flight, and the property tests use the
 * in-memory implementation beside this file.
 *
 * The core keeps all accounting (counts, bytes, quota, which seqs of a
 * stream are only on disk); a spool only stores, reads and deletes.
 */
export interface StoredRecord {
  readonly seq: number;
  readonly stream: string;
  readonly prio: number;
  readonly ts: number;
  /** Age-clock ms at ingest (for TTL). */
  readonly born: number;
  readonly attempt: number;
  /** Of those deliveries, the failed ones (the poison count: spool-tier.ts); absent = 0. */
  readonly failures?: number;
  readonly payload: Uint8Array;
  /**
   * The groups that still owe the record, one bit each (bit i = the group the
   * spool maps to index i, `groupBits`); absent = 1 (the only group).
   */
  readonly owers?: number;
  /**
   * Several groups: the delivery counts of groups that had delivered the
   * record before it was written, kept with the row in the same transaction
   * (as `setGroupAttempts` keeps them), so no failure in between can reset
   * them. Not given back by reads (`readFor` gives the group's own).
   */
  readonly groupAttempts?: ReadonlyArray<{ readonly bit: number; readonly attempt: number; readonly failures: number }>;
}

export interface StreamSummary {
  readonly stream: string;
  readonly records: number;
  readonly payloadBytes: number;
  readonly maxSeq: number;
}

export interface Deleted {
  readonly records: number;
  readonly payloadBytes: number;
}

/** What releasing rows for one group did: the rows it owed (`records`, `payloadBytes`) and those no group owes any more, deleted (`freed`). */
export interface Released extends Deleted {
  readonly freed: Deleted;
}

/** What a deletion (or release) of the oldest rows did, and the highest seq among them (`afterSeq` when none): where the range's rows now start. */
export interface DeletedOldest extends Deleted {
  readonly last: number;
}
export interface ReleasedOldest extends Released {
  readonly last: number;
}

/** The highest seq among rows (in any order: SQLite's RETURNING gives no set order), or `none` when there are none. */
export function lastSeq(rows: ReadonlyArray<{ readonly seq: number }>, none: number): number {
  let last = none;
  for (const r of rows) if (r.seq > last) last = r.seq;
  return last;
}

/**
 * Every method may throw SpoolError (writes: SpoolFullError); a failed
 * method changed nothing.
 */
/** What a spool takes on disk, in bytes (SpoolPort `diskUse`). */
export interface DiskUse {
  /** The database's pages that hold rows. */
  readonly live: number;
  /** All of the database's pages: the file once checkpointed (free pages are reused before it grows). */
  readonly file: number;
  readonly wal: number;
  /** The page size: a write appends whole pages to the WAL. */
  readonly pageSize: number;
}

export interface SpoolPort {
  /**
   * Writes records, and deletes the rows of `deletes` (as `delete` does),
   * in one transaction: a durable group commit takes the acks since the
   * last one along (one transaction, one fsync with `synchronous: full`).
   * Throws SpoolFullError when the disk or file is full; then nothing changed.
   */
  write(records: readonly StoredRecord[], deletes?: readonly number[]): void;
  /** Up to `limit` records of a stream with afterSeq < seq <= uptoSeq, oldest first. */
  read(stream: string, afterSeq: number, uptoSeq: number, limit: number): StoredRecord[];
  /** Deletes the oldest `n` records of a stream with afterSeq < seq <= uptoSeq. */
  deleteOldest(stream: string, afterSeq: number, uptoSeq: number, n: number): DeletedOldest;
  /** Deletes the records of a stream with afterSeq < seq <= uptoSeq born before `bornBefore`. */
  deleteBornBefore(stream: string, afterSeq: number, uptoSeq: number, bornBefore: number): Deleted;
  /** Deletes records by seq (acked, dropped). */
  delete(seqs: readonly number[]): void;
  /** Updates delivery attempts (and failed deliveries) of records still owed. */
  setAttempts(records: ReadonlyArray<{ readonly seq: number; readonly attempt: number; readonly failures?: number }>): void;
  /** What is stored, per stream (at start, to recover). */
  summary(): StreamSummary[];
  /**
   * Bytes the spool takes on disk now, whatever it holds: for SQLite the
   * database file and its WAL (two stat calls: cheap enough for every
   * spill); for the memory spool its estimate (payload + row overhead).
   * Never throws.
   */
  sizeOnDisk(): number;
  /**
   * Whether a write would be let in now as far as the disk goes (SQLite: the
   * file system has more than its reserve free, and no write SQLite itself
   * refused since the last it took; the memory spool: not marked full). Asked only after a failure, once a delete went through: then the
   * spool is healthy again without waiting for a spill. Never throws.
   */
  hasRoom(): boolean;
  /**
   * Optional: what the spool really takes on disk (SQLite: the database's
   * pages in use, all its pages, free ones included, and the WAL), so the
   * quota bounds the file system, row overhead and WAL included; undefined
   * when it cannot be read.
   */
  diskUse?(): DiskUse | undefined;

  // ── groups: a row is kept once and carries the bitmask of the groups that owe it ──

  /** Up to `limit` records of a stream with afterSeq < seq <= uptoSeq that group `bit` owes, oldest first (with their `owers`, and that group's `attempt` and `failures`: its own, else the row's, which only a row written with one group carries). */
  readFor(stream: string, afterSeq: number, uptoSeq: number, limit: number, bit: number): StoredRecord[];
  /** Releases, for group `bit`, its oldest `n` rows of a stream with afterSeq < seq <= uptoSeq; rows nobody owes are deleted. */
  releaseOldest(stream: string, afterSeq: number, uptoSeq: number, n: number, bit: number): ReleasedOldest;
  /** Releases, for group `bit`, its rows of a stream with afterSeq < seq <= uptoSeq born before `bornBefore`. */
  releaseBornBefore(stream: string, afterSeq: number, uptoSeq: number, bornBefore: number, bit: number): Released;
  /** Releases rows by seq for group `bit` (acked, dropped); returns the rows deleted because nobody owes them any more. */
  release(seqs: readonly number[], bit: number): Deleted;
  /** Records the delivery attempts of records for one group each (several groups: the `attempt` column is not theirs). */
  setGroupAttempts(records: ReadonlyArray<{ readonly seq: number; readonly bit: number; readonly attempt: number; readonly failures?: number }>): void;
  /** Releases every row for the groups of `mask` (groups no longer configured). */
  releaseGroups(mask: number): Released;
  /** What group `bit` owes, per stream (at start, to recover). */
  summaryFor(bit: number): StreamSummary[];
  /** The group names the spool knows and their bit index (0..30): stable across restarts. */
  groupBits(): ReadonlyMap<string, number>;
  /** Replaces the name to bit index map kept in the spool file. */
  setGroupBits(bits: ReadonlyMap<string, number>): void;
}

/** Bytes a stored record costs on disk beyond its payload (row header, index entries). */
export const SPOOL_ROW_OVERHEAD_BYTES = 48;

/** Pages a transaction writes to the WAL beyond its rows' (index and interior pages, the header page, the pointer map, the freelist trunk). */
const WAL_PAGES_PER_TRANSACTION = 10;
/** A WAL frame's header, before each page. */
const WAL_FRAME_HEADER_BYTES = 24;
/** A b-tree page's header (a leaf's). */
const PAGE_HEADER_BYTES = 8;

/**
 * What a transaction inserting or deleting rows of `bytes` in all (payload
 * plus SPOOL_ROW_OVERHEAD_BYTES each) appends to the WAL, at most (the
 * quota's check before it): whole pages, each with its frame header.
 * Appended rows (or deleted ones) take twice their bytes in pages: a leaf is
 * filled until the next row does not fit, so a leaf and the row after it
 * hold more than a page. Rows written `between` rows already there (older
 * seqs than some on disk) split full pages and rewrite the ones they land
 * in: four times. Measured with 4 KiB pages, rows of 10 B to 9 kB, 1 to 256
 * a transaction (test/spool-wal-frames.test.ts): at most 9 pages beyond the
 * twice, and 256 rows of 2,100 B between others 530 frames against 549.
 */
export function walFrames(pageSize: number, bytes: number, between = false): number {
  const pages = Math.ceil(((between ? 4 : 2) * bytes) / (pageSize - PAGE_HEADER_BYTES));
  return (pages + WAL_PAGES_PER_TRANSACTION) * (pageSize + WAL_FRAME_HEADER_BYTES);
}

/**
 * What deleting up to `n` of a stream's oldest rows (it has `streamRows` of
 * the spool's `spoolBytes`) appends to the WAL, as estimated: its rows lie
 * among the other streams' as its share of the spool says (its `n` oldest
 * span that part of all the rows' bytes), and a delete touches at most three
 * leaves a row (its own and the two it may be merged with).
 */
export function deleteFrames(pageSize: number, spoolBytes: number, streamRows: number, n: number): number {
  const rows = Math.min(n, streamRows);
  return Math.min(walFrames(pageSize, (spoolBytes * rows) / streamRows), walFrames(pageSize, 0) + 3 * rows * (pageSize + WAL_FRAME_HEADER_BYTES));
}

/** WAL file size that starts a checkpoint early (between scheduled ones), at most. */
export const WAL_CHECKPOINT_BYTES = 1024 * 1024;

/**
 * The WAL's share of a spool quota: the WAL guard checkpoints once the WAL
 * passes it, and the rows leave twice it free (spool-tier.ts: the WAL grows
 * on until the checkpoint truncates it), so the writes between two
 * checkpoints fit.
 */
export function walShare(quotaBytes: number): number {
  return Math.min(WAL_CHECKPOINT_BYTES, Math.floor(quotaBytes / 8));
}

/** A spool operation failed (I/O error, corrupt page): the daemon counts it and carries on. */
export class SpoolError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SpoolError';
  }
}

/** A write failed: the disk or the file is full, or the write itself failed. */
export class SpoolFullError extends SpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SpoolFullError';
  }
}
