/**
 * Reads what can still be read out of a damaged (quarantined) spool file.
 *
 * The records table is a b-tree keyed by seq. Its rows are read in seq
 * order, a batch at a time, on a read-only connection of its own; a batch
 * that raises an error (SQLITE_CORRUPT: a page of garbage, a page past the
 * end of a truncated file, an overflow page lost) is narrowed down:
 *
 *   rows:   ... g-1  g | bad page (unreadable) | y*+1 ...
 *           └ read ──┘   └ skipped: (g, y*] ──┘ └ read on
 *
 *  - the longest readable prefix of the batch (binary search on LIMIT: a
 *    scan stops after its last row without touching the page after it);
 *  - then the first seq y* after which a seek works again (exponential
 *    then binary search on `seq > y`), and reading goes on from there. The
 *    row y* itself, if any, is the first of the next page: a seek for it
 *    from below ends in the bad page (the parent's divider says so), but
 *    looking it up alone reads it.
 * Every row whose own pages are intact is salvaged (what a lookup of that
 * seq alone would read); the seqs in the skipped ranges are an upper bound
 * on the rows lost. A header that is not a database header (clobbered) is
 * rebuilt on a private copy first; page 1 past the header and the schema
 * must be readable, else nothing can be salvaged.
 */
import { closeSync, copyFileSync, existsSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import Database, { type Database as Db, type Statement } from 'better-sqlite3';
import type { StoredRecord } from './spool-port.js';

const BATCH = 256;
/** Seqs never reach this (Number.MAX_SAFE_INTEGER: a reader that searches past the table's end stops here). */
const END = Number.MAX_SAFE_INTEGER;

export interface SalvageResult {
  /** Rows salvaged, per stream name. */
  readonly salvaged: ReadonlyMap<string, readonly number[]>;
  readonly rows: number;
  /** Seq ranges that could not be read (after < seq <= upto; upto END: up to the end of the table). */
  readonly unreadable: ReadonlyArray<{ readonly after: number; readonly upto: number }>;
  /** The file's groups (name to bit index), when its groups table could be read: the rows' `owers` are in its bits. */
  readonly groupBits?: ReadonlyMap<string, number>;
  /** Set when nothing could be read at all (the schema or the table's root is gone). */
  readonly error?: string;
}

interface Row {
  seq: number;
  stream: number;
  prio: number;
  ts: number;
  born: number;
  attempt: number;
  failures: number;
  owers: number;
  payload: Buffer;
}

/** Reads `file` (never written) and hands its readable rows, in seq order, to `keep` a batch at a time. */
export function salvage(file: string, pageSize: number, keep: (rows: StoredRecord[]) => void): SalvageResult {
  const salvaged = new Map<string, number[]>();
  const unreadable: Array<{ after: number; upto: number }> = [];
  let rows = 0;
  let copy: string | undefined;
  let db: Db | undefined;
  let groupBits: Map<string, number> | undefined;
  // A read-only connection to a WAL file creates -wal and -shm beside it: those are removed after.
  const created = ['-wal', '-shm'].filter((suffix) => !existsSync(file + suffix));
  try {
    try {
      db = openReadOnly(file);
    } catch (err) {
      if (codeOf(err) !== 'SQLITE_NOTADB') throw err;
      // A clobbered header: rebuild it on a copy (the quarantined file stays as found).
      copy = `${file}.salvage`;
      copyFileSync(file, copy);
      rebuildHeader(copy, pageSize);
      db = openReadOnly(copy);
    }
    const names = streamNames(db);
    groupBits = readGroupBits(db);
    // Files from before groups or failed-delivery counts lack those columns: owed by group 0, no failures.
    const has = columnsOf(db);
    const columns = `seq, stream, prio, ts, born, attempt, ${has.has('failures') ? 'failures' : '0 AS failures'}, ${has.has('owers') && groupBits !== undefined ? 'owers' : '1 AS owers'}, payload`;
    const read = db.prepare(`SELECT ${columns} FROM records WHERE seq > ? ORDER BY seq LIMIT ?`);
    const readOne = db.prepare(`SELECT ${columns} FROM records WHERE seq = ?`);
    const take = (batch: Row[]) => {
      if (batch.length === 0) return;
      const out: StoredRecord[] = batch.map((r) => ({ seq: r.seq, stream: names.get(r.stream) ?? `stream-${r.stream}`, prio: r.prio, ts: r.ts, born: r.born, attempt: r.attempt, failures: r.failures, owers: r.owers, payload: r.payload }));
      keep(out); // a failure here (the fresh spool is full) ends the salvage: what was kept is counted
      for (const r of out) {
        let seqs = salvaged.get(r.stream);
        if (seqs === undefined) salvaged.set(r.stream, (seqs = []));
        seqs.push(r.seq);
      }
      rows += out.length;
    };
    for (let cursor = 0; cursor < END; ) {
      const batch = tryRead(read, cursor, BATCH);
      if (batch !== undefined) {
        if (batch.length === 0) break;
        take(batch);
        cursor = (batch[batch.length - 1] as Row).seq;
        continue;
      }
      // The longest readable prefix of this batch.
      let lo = 0;
      let hi = BATCH; // tryRead(cursor, lo) works, tryRead(cursor, hi) does not
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (tryRead(read, cursor, mid) !== undefined) lo = mid;
        else hi = mid;
      }
      const prefix = lo === 0 ? [] : (tryRead(read, cursor, lo) as Row[]);
      take(prefix);
      if (prefix.length > 0) cursor = (prefix[prefix.length - 1] as Row).seq;
      // The first y after which a seek works again: (cursor, y] is unreadable.
      const works = (y: number) => y >= END || tryRead(read, y, 1) !== undefined;
      let bad = cursor; // works(bad) is false
      let step = 1;
      let good = Math.min(END, cursor + step);
      while (!works(good)) {
        bad = good;
        step *= 2;
        good = Math.min(END, cursor + step);
      }
      while (good - bad > 1) {
        const mid = bad + Math.floor((good - bad) / 2);
        if (works(mid)) good = mid;
        else bad = mid;
      }
      const first = good < END ? tryGet(readOne, good) : undefined;
      if (first !== undefined) take([first]);
      unreadable.push({ after: cursor, upto: first === undefined ? good : good - 1 });
      cursor = good;
    }
    return { salvaged, rows, unreadable, ...(groupBits === undefined ? {} : { groupBits }) };
  } catch (err) {
    return { salvaged, rows, unreadable, ...(groupBits === undefined ? {} : { groupBits }), error: (err as Error).message };
  } finally {
    db?.close();
    for (const suffix of created) rmSync(file + suffix, { force: true });
    if (copy !== undefined) for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(copy + suffix, { force: true });
  }
}

function openReadOnly(file: string): Db {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    // A file shorter than its header says (cut short) opens only so: SQLite then reads the pages
    // that are there. writable_schema needs better-sqlite3's defensive flag off; the connection
    // is read-only and runs only the statements below.
    db.unsafeMode(true);
    db.pragma('writable_schema = ON');
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * The file's group names and bits; undefined when the table cannot be read
 * (its rows are then taken as owed by group 0 alone: which group another bit
 * meant is not known).
 */
function readGroupBits(db: Db): Map<string, number> | undefined {
  try {
    return new Map((db.prepare('SELECT name, bit FROM groups').all() as Array<{ name: string; bit: number }>).map((r) => [r.name, r.bit]));
  } catch {
    return undefined;
  }
}

function columnsOf(db: Db): Set<string> {
  try {
    return new Set((db.pragma('table_info(records)') as Array<{ name: string }>).map((c) => c.name));
  } catch {
    return new Set();
  }
}

/** Stream id to name; ids whose rows cannot be read fall back to `stream-<id>`. */
function streamNames(db: Db): Map<number, string> {
  const names = new Map<number, string>();
  try {
    for (const r of db.prepare('SELECT id, name FROM streams').all() as Array<{ id: number; name: string }>) names.set(r.id, r.name);
  } catch {
    // The streams table is damaged: records keep their ids as names (stream-<id>).
  }
  return names;
}

function tryGet(get: Statement, seq: number): Row | undefined {
  try {
    return get.get(seq) as Row | undefined;
  } catch (err) {
    if (codeOf(err).startsWith('SQLITE_')) return undefined;
    throw err;
  }
}

function tryRead(read: Statement, after: number, limit: number): Row[] | undefined {
  try {
    return read.all(after, limit) as Row[];
  } catch (err) {
    if (codeOf(err).startsWith('SQLITE_')) return undefined;
    throw err;
  }
}

/**
 * Writes a database header (the first 100 bytes, https://sqlite.org/fileformat.html)
 * for a file of `pageSize` pages in rollback mode: page count from the file's size,
 * no free list, UTF-8, schema format 4. Enough for reading the b-trees; the WAL, if
 * any, is not used.
 */
function rebuildHeader(file: string, pageSize: number): void {
  const h = Buffer.alloc(100);
  h.write('SQLite format 3\0', 0, 'latin1');
  h.writeUInt16BE(pageSize === 65536 ? 1 : pageSize, 16);
  h[18] = 1; // file format write version: legacy (no WAL)
  h[19] = 1;
  h[20] = 0; // reserved bytes per page
  h[21] = 64;
  h[22] = 32;
  h[23] = 32;
  h.writeUInt32BE(1, 24); // change counter
  h.writeUInt32BE(Math.floor(statSync(file).size / pageSize), 28);
  h.writeUInt32BE(1, 40); // schema cookie
  h.writeUInt32BE(4, 44); // schema format
  h.writeUInt32BE(1, 56); // UTF-8
  h.writeUInt32BE(1, 92); // version-valid-for = change counter: the page count above is used
  h.writeUInt32BE(3_045_000, 96);
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, h, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
}

function codeOf(err: unknown): string {
  return typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
}
