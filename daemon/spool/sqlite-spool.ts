/**
 * The spool: one SQLite file (better-sqlite3, WAL) under the data directory.
 *
 * Writes run on the main thread in small transactions. With WAL and
 * `synchronous=NORMAL` a commit appends to the WAL without an fsync, so a
 * batch of a few hundred rows costs about a millisecond; the expensive part
 * of SQLite durability, the checkpoint that fsyncs the database, runs in a
 * worker thread on its own connection (checkpoint-worker.ts), so an SD card
 * that takes tens of ms to sync never stalls the event loop (consumer acks,
 * MQTT keepalive). `spool.synchronous: full` makes each commit survive a
 * power loss: SQLite's FULL fsyncs the WAL inside the commit, on the event
 * loop; durable mode's group commits instead run NORMAL and have their
 * frames made durable by `syncWal` (an fdatasync of the WAL in libuv's thread
 * pool) before their sources are acknowledged, so the loop takes the next
 * records while the disk syncs the last (`syncCommitsOffLoop`).
 *
 * The WAL is kept small by wal-guard.ts and `journal_size_limit` below: the
 * file on disk is the database plus at most a few MiB (`sizeOnDisk`).
 *
 * A file that cannot be opened or fails `quick_check` is moved aside as
 * `<file>.corrupt-<timestamp>`, a fresh spool is started, and every row that
 * can still be read from the moved file is copied into it (salvage.ts). What
 * the spool owed per stream is kept in `<file>.owed` (owed-state.ts), so the
 * report can say how many records of each stream were lost.
 */
import { closeSync, existsSync, fdatasync, openSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database, { type Database as Db, type Statement } from 'better-sqlite3';
import { SpillwayError } from '../errors.js';
import { DISK_RESERVE_BYTES, DiskRoom } from './disk-room.js';
import { readOwed, writeOwed, type OwedStream } from './owed-state.js';
import { salvageReport, type Quarantined } from './quarantine.js';
import { lastSeq, SpoolError, SpoolFullError, type Deleted, type DeletedOldest, type DiskUse, type Released, type ReleasedOldest, type SpoolPort, type StoredRecord, type StreamSummary } from './spool-port.js';

/** The WAL file is cut back to this when SQLite rewinds it after a complete checkpoint. */
export const WAL_SIZE_LIMIT_BYTES = 1024 * 1024;
/** Bytes written (as `writtenBytes` counts them) between two looks at the WAL's size. */
const WAL_NOTIFY_BYTES = 64 * 1024;
/** A write transaction appends at least a page to the WAL. */
const WAL_PAGE_BYTES = 4096;

export interface SqliteSpoolOptions {
  readonly file: string;
  readonly synchronous: 'normal' | 'full';
  /** Tests only: caps the file with `max_page_count`, so SQLite itself reports a full file; the daemon sets none (its fences are the quota and the disk reserve). */
  readonly maxFileBytes?: number;
  /** Free space the file system must keep for writes to be taken (disk-room.ts; default DISK_RESERVE_BYTES, 0 = none). */
  readonly diskReserveBytes?: number;
  /**
   * With `synchronous: full`: SQLite runs NORMAL (the WAL synced before each
   * checkpoint, the database after it: never corrupt) and the caller makes
   * its commits durable with `syncWal()` before it acknowledges anything.
   */
  readonly syncCommitsOffLoop?: boolean;
}

export type { Quarantined } from './quarantine.js';

export interface OpenResult {
  readonly spool: SqliteSpool;
  /** Set when a corrupt file was moved aside. */
  readonly quarantined?: Quarantined;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS streams (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY,
  stream INTEGER NOT NULL,
  prio INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  born INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  payload BLOB NOT NULL,
  owers INTEGER NOT NULL DEFAULT 1,
  failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS records_by_stream ON records (stream, seq);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, bit INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS attempts (seq INTEGER NOT NULL, grp INTEGER NOT NULL, attempt INTEGER NOT NULL, failures INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (seq, grp)) WITHOUT ROWID;
INSERT OR IGNORE INTO groups (name, bit) SELECT 'default', 0 WHERE NOT EXISTS (SELECT 1 FROM groups);
`;

/** Spool files from before groups have no `owers` column: every row is owed by group bit 0 (`default`). */
const ADD_OWERS = 'ALTER TABLE records ADD COLUMN owers INTEGER NOT NULL DEFAULT 1';
/** Spools written before failed deliveries were kept (the poison count); their rows start from 0. */
const ADD_FAILURES = ['records', 'attempts'].map((t) => ({ table: t, sql: `ALTER TABLE ${t} ADD COLUMN failures INTEGER NOT NULL DEFAULT 0` }));

interface Row {
  seq: number;
  prio: number;
  ts: number;
  born: number;
  attempt: number;
  failures: number;
  payload: Buffer;
  owers: number;
}

export class SqliteSpool implements SpoolPort {
  readonly file: string;
  readonly #db: Db;
  readonly #streamIds = new Map<string, number>();
  /** Records on disk per stream id (for the owed state; the core keeps its own accounting). */
  readonly #counts = new Map<number, number>();
  /** Counts changed since the owed state was last written (a fresh spool has none written yet). */
  #owedDirty = true;
  /** What `summary()` found at open, until the first change. */
  #summary: StreamSummary[] | undefined;
  readonly #minMax: Statement;
  readonly #insert: Statement;
  readonly #insertStream: Statement;
  readonly #selectStream: Statement;
  /** Streams given an id during the current write: forgotten again if it fails (its rollback may have undone them). */
  readonly #newStreams: string[] = [];
  readonly #read: Statement;
  readonly #deleteOldest: Statement;
  readonly #deleteBornBefore: Statement;
  readonly #deleteRange: Statement;
  readonly #setAttempt: Statement;
  readonly #writeTx: (records: readonly StoredRecord[], deletes: readonly number[]) => void;
  readonly #deleteTx: (seqs: readonly number[]) => void;
  readonly #attemptTx: (records: ReadonlyArray<{ seq: number; attempt: number; failures?: number }>) => void;
  readonly #readFor: Statement;
  readonly #clearOldest: Statement;
  readonly #clearBornBefore: Statement;
  readonly #clearSeq: Statement;
  readonly #clearAll: Statement;
  readonly #freeRange: Statement;
  readonly #freeSeq: Statement;
  readonly #freeAll: Statement;
  readonly #releaseRangeTx: (clear: Statement, args: readonly unknown[], stream: number, after: number, upto: number) => ReleasedOldest;
  readonly #releaseTx: (seqs: readonly number[], bit: number) => Deleted;
  readonly #releaseGroupsTx: (mask: number) => Released;
  readonly #setGroupAttempt: Statement;
  readonly #groupAttemptTx: (records: ReadonlyArray<{ seq: number; bit: number; attempt: number; failures?: number }>) => void;
  readonly #forgetAttempt: Statement;
  readonly #forgetRowAttempts: Statement;
  readonly #deleteRowsTx: (del: Statement, args: readonly unknown[]) => Array<{ seq: number; n: number }>;
  readonly #deleteAttemptRange: Statement;
  /** True once group attempts were written (deletes then clear theirs too). */
  #hasGroupAttempts = false;

  /** Opens the spool, moving a corrupt file aside. */
  static open(opts: SqliteSpoolOptions, now: () => Date = () => new Date()): OpenResult {
    const owed = readOwed(opts.file);
    let result: OpenResult;
    try {
      result = { spool: new SqliteSpool(opts) };
    } catch (err) {
      if (!isCorruption(err)) throw new SpillwayError('SPOOL_OPEN', `cannot open spool ${opts.file}: ${(err as Error).message}`, { cause: err });
      const path = `${opts.file}.corrupt-${now().toISOString().replace(/[:.]/g, '-')}`;
      for (const suffix of ['', '-wal', '-shm']) {
        if (existsSync(opts.file + suffix)) renameSync(opts.file + suffix, path + suffix);
      }
      const spool = new SqliteSpool(opts);
      const { groupBits, ...quarantined } = salvageReport(path, (err as Error).message, owed, (rows) => spool.write(rows));
      // The salvaged rows' owers are in the damaged file's group bits: the fresh spool takes them over.
      if (groupBits !== undefined && groupBits.size > 0) spool.setGroupBits(groupBits);
      result = { spool, quarantined };
    }
    // From now on the file changes: a crash must not leave the last clean stop's state standing.
    result.spool.saveOwed();
    return result;
  }

  private constructor(opts: SqliteSpoolOptions) {
    this.file = opts.file;
    this.#room = new DiskRoom(dirname(opts.file), opts.diskReserveBytes ?? DISK_RESERVE_BYTES);
    const db = new Database(opts.file);
    this.#db = db;
    try {
      db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${opts.synchronous === 'full' && opts.syncCommitsOffLoop !== true ? 'FULL' : 'NORMAL'}`);
      // Checkpoints run in the worker (checkpoint-worker.ts), never on a commit here.
      db.pragma('wal_autocheckpoint = 0');
      db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
      if (opts.maxFileBytes !== undefined && opts.maxFileBytes > 0) {
        const pageSize = db.pragma('page_size', { simple: true }) as number;
        db.pragma(`max_page_count = ${Math.max(16, Math.floor(opts.maxFileBytes / pageSize))}`);
      }
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw Object.assign(new Error(`quick_check: ${String(check)}`), { code: 'SQLITE_CORRUPT' });
      const hasRecords = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'").get() !== undefined;
      if (hasRecords && !(db.pragma('table_info(records)') as Array<{ name: string }>).some((c) => c.name === 'owers')) db.exec(ADD_OWERS);
      db.exec(SCHEMA);
      for (const { table, sql } of ADD_FAILURES) if (!(db.pragma(`table_info(${table})`) as Array<{ name: string }>).some((c) => c.name === 'failures')) db.exec(sql);
      for (const row of db.prepare('SELECT id, name FROM streams').all() as Array<{ id: number; name: string }>) this.#streamIds.set(row.name, row.id);
      this.#summary = this.#scan();
      for (const row of this.#summary) this.#counts.set(this.#streamIds.get(row.stream) as number, row.records);
    } catch (err) {
      db.close();
      throw err;
    }
    this.#insert = db.prepare('INSERT INTO records (seq, stream, prio, ts, born, attempt, failures, payload, owers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.#insertStream = db.prepare('INSERT INTO streams (name) VALUES (?) ON CONFLICT (name) DO NOTHING');
    this.#selectStream = db.prepare('SELECT id FROM streams WHERE name = ?');
    this.#read = db.prepare('SELECT seq, prio, ts, born, attempt, failures, payload, owers FROM records WHERE stream = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?');
    this.#deleteOldest = db.prepare(
      'DELETE FROM records WHERE seq IN (SELECT seq FROM records WHERE stream = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?) RETURNING seq, length(payload) AS n',
    );
    this.#deleteBornBefore = db.prepare('DELETE FROM records WHERE stream = ? AND seq > ? AND seq <= ? AND born < ? RETURNING seq, length(payload) AS n');
    this.#deleteRange = db.prepare('DELETE FROM records WHERE seq BETWEEN ? AND ? RETURNING stream');
    this.#minMax = db.prepare('SELECT min(seq) AS minSeq, max(seq) AS maxSeq FROM records WHERE stream = ?');
    this.#setAttempt = db.prepare('UPDATE records SET attempt = ?, failures = ? WHERE seq = ?');
    this.#writeTx = db.transaction((records: readonly StoredRecord[], deletes: readonly number[]) => {
      if (deletes.length > 0) this.#deleteSeqs(deletes);
      for (const r of records) this.#insertOne(r);
    });
    this.#deleteTx = db.transaction((seqs: readonly number[]) => this.#deleteSeqs(seqs));
    // A range delete (quota, TTL) takes the group delivery counts of its rows along.
    this.#deleteRowsTx = db.transaction((del: Statement, args: readonly unknown[]) => {
      const rows = del.all(...args) as Array<{ seq: number; n: number }>;
      if (this.#hasGroupAttempts) for (const r of rows) this.#forgetRowAttempts.run(r.seq);
      return rows;
    });
    // Groups: a release clears the group's bit; a row whose bits are all clear is deleted in the same transaction.
    this.#readFor = db.prepare(
      'SELECT r.seq, r.prio, r.ts, r.born, coalesce(a.attempt, r.attempt) AS attempt, coalesce(a.failures, r.failures) AS failures, r.payload, r.owers FROM records r LEFT JOIN attempts a ON a.seq = r.seq AND a.grp = ? WHERE r.stream = ? AND r.seq > ? AND r.seq <= ? AND (r.owers & ?) != 0 ORDER BY r.seq LIMIT ?',
    );
    this.#forgetAttempt = db.prepare('DELETE FROM attempts WHERE seq = ? AND grp = ?');
    this.#forgetRowAttempts = db.prepare('DELETE FROM attempts WHERE seq = ?');
    this.#deleteAttemptRange = db.prepare('DELETE FROM attempts WHERE seq BETWEEN ? AND ?');
    this.#hasGroupAttempts = db.prepare('SELECT 1 FROM attempts LIMIT 1').get() !== undefined;
    this.#setGroupAttempt = db.prepare('INSERT INTO attempts (seq, grp, attempt, failures) VALUES (?, ?, ?, ?) ON CONFLICT (seq, grp) DO UPDATE SET attempt = excluded.attempt, failures = excluded.failures');
    this.#groupAttemptTx = db.transaction((records: ReadonlyArray<{ seq: number; bit: number; attempt: number; failures?: number }>) => {
      for (const r of records) this.#setGroupAttempt.run(r.seq, r.bit, r.attempt, r.failures ?? 0);
    });
    this.#clearOldest = db.prepare(
      'UPDATE records SET owers = owers & ~? WHERE seq IN (SELECT seq FROM records WHERE stream = ? AND seq > ? AND seq <= ? AND (owers & ?) != 0 ORDER BY seq LIMIT ?) RETURNING seq, length(payload) AS n',
    );
    this.#clearBornBefore = db.prepare('UPDATE records SET owers = owers & ~? WHERE stream = ? AND seq > ? AND seq <= ? AND born < ? AND (owers & ?) != 0 RETURNING seq, length(payload) AS n');
    this.#clearSeq = db.prepare('UPDATE records SET owers = owers & ~? WHERE seq = ? AND (owers & ?) != 0');
    this.#clearAll = db.prepare('UPDATE records SET owers = owers & ~? WHERE (owers & ?) != 0 RETURNING length(payload) AS n');
    this.#freeRange = db.prepare('DELETE FROM records WHERE stream = ? AND seq > ? AND seq <= ? AND owers = 0 RETURNING length(payload) AS n');
    this.#freeSeq = db.prepare('DELETE FROM records WHERE seq = ? AND owers = 0 RETURNING length(payload) AS n');
    this.#freeAll = db.prepare('DELETE FROM records WHERE owers = 0 RETURNING length(payload) AS n');
    this.#releaseRangeTx = db.transaction((clear: Statement, args: readonly unknown[], stream: number, after: number, upto: number): ReleasedOldest => {
      const rows = clear.all(...args) as Array<{ seq: number; n: number }>;
      for (const r of rows) this.#forgetAttempt.run(r.seq, args[0]);
      const hit = sumDeleted(rows);
      return { ...hit, freed: sumDeleted(this.#freeRange.all(stream, after, upto) as Array<{ n: number }>), last: lastSeq(rows, after) };
    });
    this.#releaseTx = db.transaction((seqs: readonly number[], bit: number): Deleted => {
      const freed: Array<{ n: number }> = [];
      for (const seq of seqs) {
        if (this.#clearSeq.run(bit, seq, bit).changes === 0) continue;
        this.#forgetAttempt.run(seq, bit);
        freed.push(...(this.#freeSeq.all(seq) as Array<{ n: number }>));
      }
      return sumDeleted(freed);
    });
    this.#releaseGroupsTx = db.transaction((mask: number): Released => {
      const hit = sumDeleted(this.#clearAll.all(mask, mask) as Array<{ n: number }>);
      db.prepare('DELETE FROM attempts WHERE (grp & ?) != 0').run(mask);
      return { ...hit, freed: sumDeleted(this.#freeAll.all() as Array<{ n: number }>) };
    });
    this.#attemptTx = db.transaction((records: ReadonlyArray<{ seq: number; attempt: number; failures?: number }>) => {
      for (const r of records) this.#setAttempt.run(r.attempt, r.failures ?? 0, r.seq);
    });
  }

  readonly #room: DiskRoom;
  /** The WAL, opened for `syncWal` (an fdatasync needs no write access). */
  #walFd: number | undefined;
  #syncing: Promise<boolean> | undefined;
  #syncQueued: Promise<boolean> | undefined;

  /**
   * What the WAL grew by since open, as estimated for checkpoints: payload
   * bytes, a page per write transaction (a one-record group commit appends
   * whole pages), and a nominal 16 per row deleted.
   */
  writtenBytes = 0;
  #notifiedAt = 0;
  /** The last write was refused by SQLite (not by the reserve): see `hasRoom`. */
  #sqliteRefused = false;
  #onGrowth: ((failed: boolean) => void) | undefined;

  /**
   * Calls `listener` after each delete transaction and every WAL_NOTIFY_BYTES
   * written (wal-guard.ts looks at the WAL then), and with `failed` after a
   * write SQLite refused: the WAL could not grow (a full disk, a file size
   * limit), and only a checkpoint that truncates it makes room again.
   */
  onGrowth(listener: (failed: boolean) => void): void {
    this.#onGrowth = listener;
  }

  /** Runs a statement that writes; a refusal is told to the growth listener. */
  #writing<T>(what: string, run: () => T): T {
    try {
      return guard(what, run);
    } catch (err) {
      if (err instanceof SpoolError) this.#onGrowth?.(true);
      throw err;
    }
  }

  write(records: readonly StoredRecord[], deletes: readonly number[] = []): void {
    if (records.length === 0) {
      this.delete(deletes);
      return;
    }
    this.#newStreams.length = 0;
    let payload = 0;
    for (const r of records) payload += r.payload.length;
    this.#room.beforeWrite(payload);
    try {
      // One row and nothing to delete (durable mode, a record at a time): a plain autocommit insert, no transaction wrapper.
      if (records.length === 1 && deletes.length === 0) this.#insertOne(records[0] as StoredRecord);
      else this.#writeTx(records, deletes);
    } catch (err) {
      for (const name of this.#newStreams) this.#streamIds.delete(name);
      if (!isSqlite(err)) throw err;
      this.#sqliteRefused = true;
      this.#onGrowth?.(true);
      throw new SpoolFullError(`spool write failed: ${(err as Error).message}`, { cause: err });
    }
    this.#summary = undefined;
    this.#sqliteRefused = false;
    this.writtenBytes += WAL_PAGE_BYTES + deletes.length * 16;
    for (const r of records) {
      this.writtenBytes += r.payload.length;
      this.#count(this.#streamIds.get(r.stream) as number, 1);
    }
    // Deletes taken along: looked at after each, as `delete` does.
    if (deletes.length > 0 || this.writtenBytes - this.#notifiedAt >= WAL_NOTIFY_BYTES) {
      this.#notifiedAt = this.writtenBytes;
      this.#onGrowth?.(false);
    }
  }

  read(stream: string, afterSeq: number, uptoSeq: number, limit: number): StoredRecord[] {
    const id = this.#streamIds.get(stream);
    if (id === undefined) return [];
    const rows = guard('read', () => this.#read.all(id, afterSeq, uptoSeq, limit) as Row[]);
    return rows.map((r) => ({ seq: r.seq, stream, prio: r.prio, ts: r.ts, born: r.born, attempt: r.attempt, failures: r.failures, payload: r.payload, owers: r.owers }));
  }

  readFor(stream: string, afterSeq: number, uptoSeq: number, limit: number, bit: number): StoredRecord[] {
    const id = this.#streamIds.get(stream);
    if (id === undefined) return [];
    const rows = guard('read', () => this.#readFor.all(bit, id, afterSeq, uptoSeq, bit, limit) as Row[]);
    return rows.map((r) => ({ seq: r.seq, stream, prio: r.prio, ts: r.ts, born: r.born, attempt: r.attempt, failures: r.failures, payload: r.payload, owers: r.owers }));
  }

  releaseOldest(stream: string, afterSeq: number, uptoSeq: number, n: number, bit: number): ReleasedOldest {
    const id = this.#streamIds.get(stream);
    if (id === undefined || n <= 0) return { ...NOTHING_RELEASED, last: afterSeq };
    return this.#writing('delete', () => this.#releaseRangeTx(this.#clearOldest, [bit, id, afterSeq, uptoSeq, bit, n], id, afterSeq, uptoSeq));
  }

  releaseBornBefore(stream: string, afterSeq: number, uptoSeq: number, bornBefore: number, bit: number): Released {
    const id = this.#streamIds.get(stream);
    if (id === undefined) return NOTHING_RELEASED;
    const { records, payloadBytes, freed } = this.#writing('delete', () => this.#releaseRangeTx(this.#clearBornBefore, [bit, id, afterSeq, uptoSeq, bornBefore, bit], id, afterSeq, uptoSeq));
    return { records, payloadBytes, freed };
  }

  release(seqs: readonly number[], bit: number): Deleted {
    if (seqs.length === 0) return { records: 0, payloadBytes: 0 };
    const freed = this.#writing('delete', () => this.#releaseTx(seqs, bit));
    this.writtenBytes += seqs.length * 16;
    return freed;
  }

  setGroupAttempts(records: ReadonlyArray<{ readonly seq: number; readonly bit: number; readonly attempt: number; readonly failures?: number }>): void {
    if (records.length === 0) return;
    this.#writing('update', () => this.#groupAttemptTx(records));
    this.#hasGroupAttempts = true;
  }

  releaseGroups(mask: number): Released {
    return this.#writing('delete', () => this.#releaseGroupsTx(mask));
  }

  summaryFor(bit: number): StreamSummary[] {
    return this.#db
      .prepare(
        'SELECT s.name AS stream, count(*) AS records, sum(length(r.payload)) AS payloadBytes, max(r.seq) AS maxSeq FROM records r JOIN streams s ON s.id = r.stream WHERE (r.owers & ?) != 0 GROUP BY r.stream',
      )
      .all(bit) as StreamSummary[];
  }

  groupBits(): ReadonlyMap<string, number> {
    // A failing disk is a SpoolError here as in every other read (the core counts it and goes on).
    const rows = guard('read', () => this.#db.prepare('SELECT name, bit FROM groups').all() as Array<{ name: string; bit: number }>);
    return new Map(rows.map((r) => [r.name, r.bit]));
  }

  setGroupBits(bits: ReadonlyMap<string, number>): void {
    this.#writing('update', () =>
      this.#db.transaction(() => {
        const insert = this.#db.prepare('INSERT INTO groups (name, bit) VALUES (?, ?)');
        this.#db.prepare('DELETE FROM groups').run();
        for (const [name, bit] of bits) insert.run(name, bit);
      })(),
    );
  }

  deleteOldest(stream: string, afterSeq: number, uptoSeq: number, n: number): DeletedOldest {
    const id = this.#streamIds.get(stream);
    if (id === undefined || n <= 0) return { records: 0, payloadBytes: 0, last: afterSeq };
    const rows = this.#writing('delete', () => this.#deleteRowsTx(this.#deleteOldest, [id, afterSeq, uptoSeq, n]));
    return { ...this.#deleted(id, rows), last: lastSeq(rows, afterSeq) };
  }

  deleteBornBefore(stream: string, afterSeq: number, uptoSeq: number, bornBefore: number): Deleted {
    const id = this.#streamIds.get(stream);
    if (id === undefined) return { records: 0, payloadBytes: 0 };
    return this.#deleted(id, this.#writing('delete', () => this.#deleteRowsTx(this.#deleteBornBefore, [id, afterSeq, uptoSeq, bornBefore])));
  }

  delete(seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    this.#writing('delete', () => this.#deleteTx(seqs));
    this.#summary = undefined;
    this.writtenBytes += seqs.length * 16;
    // A delete rewrites every page it touches into the WAL (a page a row for large rows): look at the WAL after each.
    this.#onGrowth?.(false);
  }

  setAttempts(records: ReadonlyArray<{ readonly seq: number; readonly attempt: number; readonly failures?: number }>): void {
    if (records.length > 0) this.#writing('update', () => this.#attemptTx(records));
  }

  summary(): StreamSummary[] {
    // At start the open's scan is still true: no second pass over a large file.
    return this.#summary ?? guard('read', () => this.#scan());
  }

  /** Returns free pages to the file system, a bounded number at a time; returns how many went. */
  reclaim(maxPages = 2_000): number {
    return guard('reclaim', () => {
      const free = this.#db.pragma('freelist_count', { simple: true }) as number;
      if (free === 0) return 0;
      this.#db.pragma(`incremental_vacuum(${maxPages})`);
      return free - (this.#db.pragma('freelist_count', { simple: true }) as number);
    });
  }

  /**
   * Checkpoints the whole WAL into the database and truncates it, here on
   * the main thread: a one-off (after a lower quota let rows go:
   * maintenance.ts `fitDisk`); scheduled checkpoints run in the worker.
   * False when a reader kept it from finishing (a later round does).
   */
  truncateWal(): boolean {
    return guard('checkpoint', () => {
      const [row] = this.#db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
      return row?.busy === 0;
    });
  }

  /** Size of the database and WAL files, in bytes (two stat calls). */
  fileBytes(): { readonly db: number; readonly wal: number } {
    return { db: size(this.file), wal: this.walBytes() };
  }

  /** The WAL's size (one stat: the WAL guard looks after every delete transaction). */
  walBytes(): number {
    return size(`${this.file}-wal`);
  }

  /**
   * After a write SQLite itself refused (ENOSPC, a file size limit: what no
   * statfs shows), only a write it takes says there is room again; after
   * the reserve refused one, the free space does.
   */
  hasRoom(): boolean {
    return !this.#sqliteRefused && this.#room.hasRoom();
  }

  /** Bytes the spool takes on disk: the database and its WAL. */
  sizeOnDisk(): number {
    const f = this.fileBytes();
    return f.db + f.wal;
  }

  /**
   * What the spool takes on disk against its quota: the database's pages in
   * use (free pages are reused by the next writes, and handed back by
   * `reclaim`) and the WAL. Never throws: undefined when it cannot be read.
   */
  diskUse(): DiskUse | undefined {
    try {
      const pageSize = this.#db.pragma('page_size', { simple: true }) as number;
      const pages = this.#db.pragma('page_count', { simple: true }) as number;
      const free = this.#db.pragma('freelist_count', { simple: true }) as number;
      return { live: (pages - free) * pageSize, file: pages * pageSize, wal: size(`${this.file}-wal`), pageSize };
    } catch {
      return undefined; // a failing disk: the estimate alone decides (the write that follows reports the failure)
    }
  }

  /**
   * Writes what is owed per stream to `<file>.owed` (owed-state.ts): `clean`
   * (at close) fsynced, else as of now, not synced. When the spool cannot be
   * read for it or the file cannot be written (a failing disk), the previous
   * state stays.
   */
  saveOwed(clean = false): void {
    // Unchanged since the last save: no write (an idle daemon on an SD card writes nothing).
    if (!clean && !this.#owedDirty) return;
    const streams: OwedStream[] = [];
    try {
      for (const [name, id] of this.#streamIds) {
        const records = this.#counts.get(id) ?? 0;
        if (records === 0) continue;
        const { minSeq, maxSeq } = this.#minMax.get(id) as { minSeq: number; maxSeq: number };
        streams.push({ stream: name, records, minSeq, maxSeq });
      }
      writeOwed(this.file, { clean, pageSize: this.#db.pragma('page_size', { simple: true }) as number, streams }, clean);
      this.#owedDirty = false;
    } catch (err) {
      if (!isSqlite(err) && typeof (err as NodeJS.ErrnoException).code !== 'string') throw err; // ENOSPC, EIO: kept as it was
    }
  }

  /**
   * Resolves true once an fdatasync of the WAL that began after this call is
   * done: every commit made before the call is then on disk. One runs at a
   * time; calls during one share the next. False when it failed (EIO): what
   * it was to cover must not be acknowledged.
   */
  syncWal(): Promise<boolean> {
    if (this.#syncing === undefined) {
      this.#syncing = this.#datasync().finally(() => (this.#syncing = undefined));
      return this.#syncing;
    }
    // The running one may have begun before the caller's frames were written: the next covers them.
    this.#syncQueued ??= this.#syncing.then(() => {
      this.#syncQueued = undefined;
      return this.syncWal();
    });
    return this.#syncQueued;
  }

  #datasync(): Promise<boolean> {
    return new Promise((resolve) => {
      try {
        // The WAL keeps its inode while the database is open (a TRUNCATE checkpoint cuts it to zero, never removes it).
        this.#walFd ??= openSync(`${this.file}-wal`, 'r');
      } catch {
        resolve(false);
        return;
      }
      fdatasync(this.#walFd, (err) => resolve(err === null));
    });
  }

  close(): void {
    if (!this.#db.open) return;
    this.saveOwed(true);
    this.#db.close();
    if (this.#walFd !== undefined) closeSync(this.#walFd);
    this.#walFd = undefined;
  }

  #scan(): StreamSummary[] {
    return this.#db
      .prepare('SELECT s.name AS stream, count(*) AS records, sum(length(r.payload)) AS payloadBytes, max(r.seq) AS maxSeq FROM records r JOIN streams s ON s.id = r.stream GROUP BY r.stream')
      .all() as StreamSummary[];
  }

  #count(id: number, n: number): void {
    this.#owedDirty = true;
    this.#counts.set(id, (this.#counts.get(id) ?? 0) + n);
  }

  #deleted(id: number, rows: ReadonlyArray<{ n: number }>): Deleted {
    this.#summary = undefined;
    this.#count(id, -rows.length);
    let payloadBytes = 0;
    for (const r of rows) payloadBytes += r.n;
    return { records: rows.length, payloadBytes };
  }

  /** Deletes rows by seq: runs of consecutive seqs (acks come mostly in order) in one range delete each. */
  #deleteSeqs(seqs: readonly number[]): void {
    const sorted = [...seqs].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length; ) {
      const from = sorted[i] as number;
      let to = from;
      while (i + 1 < sorted.length && (sorted[i + 1] as number) <= to + 1) to = sorted[++i] as number;
      i++;
      for (const row of this.#deleteRange.all(from, to) as Array<{ stream: number }>) this.#count(row.stream, -1);
      if (this.#hasGroupAttempts) this.#deleteAttemptRange.run(from, to);
    }
  }

  #insertOne(r: StoredRecord): void {
    this.#insert.run(r.seq, this.#streamId(r.stream), r.prio, r.ts, Math.floor(r.born), r.attempt, r.failures ?? 0, r.payload, r.owers ?? 1);
    if (r.groupAttempts === undefined || r.groupAttempts.length === 0) return;
    for (const a of r.groupAttempts) this.#setGroupAttempt.run(r.seq, a.bit, a.attempt, a.failures);
    this.#hasGroupAttempts = true;
  }

  #streamId(name: string): number {
    let id = this.#streamIds.get(name);
    if (id === undefined) {
      // Idempotent: the row may be there already (kept by a failed one-row write that autocommitted it).
      this.#insertStream.run(name);
      id = (this.#selectStream.get(name) as { id: number }).id;
      this.#streamIds.set(name, id);
      this.#newStreams.push(name);
    }
    return id;
  }
}

/** A file's size; 0 when it does not exist (no WAL yet, or checkpointed away at close). */
function size(path: string): number {
  return statSync(path, { throwIfNoEntry: false })?.size ?? 0;
}

const NOTHING_RELEASED: Released = { records: 0, payloadBytes: 0, freed: { records: 0, payloadBytes: 0 } };

function sumDeleted(rows: ReadonlyArray<{ n: number }>): Deleted {
  let payloadBytes = 0;
  for (const r of rows) payloadBytes += r.n;
  return { records: rows.length, payloadBytes };
}

function codeOf(err: unknown): string {
  return typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
}

function isCorruption(err: unknown): boolean {
  const code = codeOf(err);
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT_');
}

function isSqlite(err: unknown): boolean {
  return codeOf(err).startsWith('SQLITE_');
}

/** Runs a spool statement; an SQLite failure becomes a SpoolError the core handles. */
function guard<T>(what: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (isSqlite(err)) throw new SpoolError(`spool ${what} failed: ${(err as Error).message}`, { cause: err });
    throw err;
  }
}
