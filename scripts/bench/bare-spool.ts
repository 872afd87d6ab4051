/**
 * The baselines of the spool benches: better-sqlite3 used directly, doing
 * the least a spool must do: inserts in transactions of a batch, autocommit
 * single-row inserts, and select + delete in batches.
 *
 * Same file, same rows, same statements as the spool: the file is first
 * opened (and closed) as a SqliteSpool, so the schema and the pragmas kept
 * in the file (WAL, auto_vacuum) are the spool's own; the per-connection
 * pragmas below mirror SqliteSpool's constructor (keep them in step). Like
 * the spool in the daemon, nothing here checkpoints the WAL (the daemon does
 * that in a worker thread).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database, { type Database as Db, type Statement } from 'better-sqlite3';
import { SqliteSpool } from '../../daemon/spool/sqlite-spool.js';

const STREAM = 'bench';
/** What every bench record is: priority 1, age 0, never delivered. */
const PRIO = 1;

/** A temp dir for the spool files of one trial. */
export interface BenchDir {
  readonly dir: string;
  file(name: string): string;
  remove(): Promise<void>;
}

export async function benchDir(): Promise<BenchDir> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-bench-spool-'));
  return { dir, file: (name) => join(dir, name), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The daemon's spool on `file`, `synchronous: normal` (the default). */
export function openSpool(file: string): SqliteSpool {
  return SqliteSpool.open({ file, synchronous: 'normal' }).spool;
}

interface SeqRow {
  readonly seq: number;
}

export class BareSpool {
  readonly #db: Db;
  readonly #streamId: number;
  readonly #insert: Statement;
  readonly #select: Statement;
  readonly #delete: Statement;
  readonly #insertTx: (payloads: readonly Uint8Array[], first: number, n: number, ts: number) => void;
  readonly #deleteTx: (rows: readonly SeqRow[]) => void;

  /** Creates the spool's schema on a fresh `file` and opens it bare (`full`: an fsync per commit). */
  static create(file: string, synchronous: 'normal' | 'full' = 'normal'): BareSpool {
    openSpool(file).close();
    return new BareSpool(file, synchronous);
  }

  private constructor(file: string, synchronous: 'normal' | 'full') {
    const db = new Database(file);
    this.#db = db;
    db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('wal_autocheckpoint = 0');
    db.pragma('journal_size_limit = 67108864');
    if (db.pragma('journal_mode', { simple: true }) !== 'wal') throw new Error(`${file}: not in WAL mode`);
    this.#streamId = Number(db.prepare('INSERT INTO streams (name) VALUES (?)').run(STREAM).lastInsertRowid);
    this.#insert = db.prepare('INSERT INTO records (seq, stream, prio, ts, born, attempt, payload) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#select = db.prepare('SELECT seq, prio, ts, born, attempt, payload FROM records WHERE stream = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?');
    this.#delete = db.prepare('DELETE FROM records WHERE seq = ?');
    this.#insertTx = db.transaction((payloads: readonly Uint8Array[], first: number, n: number, ts: number) => {
      for (let seq = first; seq < first + n; seq++) this.#insertRow(payloads, seq, ts);
    });
    this.#deleteTx = db.transaction((rows: readonly SeqRow[]) => {
      for (const r of rows) this.#delete.run(r.seq);
    });
  }

  /** Rows with seq 1..records, payloads cycled, in transactions of `batch`. */
  insertBatched(payloads: readonly Uint8Array[], records: number, batch: number, ts: number, firstSeq = 1): void {
    for (let done = 0; done < records; done += batch) this.#insertTx(payloads, firstSeq + done, Math.min(batch, records - done), ts);
  }

  /** Rows with seq firstSeq.., one autocommit insert each. */
  insertEach(payloads: readonly Uint8Array[], records: number, ts: number, firstSeq = 1): void {
    for (let seq = firstSeq; seq < firstSeq + records; seq++) this.#insertRow(payloads, seq, ts);
  }

  /** Reads the stream oldest first, `batch` rows at a time, deleting each batch in one transaction; returns the rows read. */
  drain(batch: number): number {
    let after = 0;
    let n = 0;
    for (;;) {
      const rows = this.#select.all(this.#streamId, after, Number.MAX_SAFE_INTEGER, batch) as SeqRow[];
      if (rows.length === 0) return n;
      this.#deleteTx(rows);
      after = (rows[rows.length - 1] as SeqRow).seq;
      n += rows.length;
    }
  }

  close(): void {
    this.#db.close();
  }

  #insertRow(payloads: readonly Uint8Array[], seq: number, ts: number): void {
    this.#insert.run(seq, this.#streamId, PRIO, ts, 0, 0, payloads[(seq - 1) & (payloads.length - 1)]);
  }
}
