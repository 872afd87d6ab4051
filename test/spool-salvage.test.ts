/**
 * A damaged spool loses only what cannot be read, and says how much: the
 * file is moved aside, every row still readable is salvaged into the fresh
 * spool, and the records owed at the last clean stop that could not be
 * read are reported per stream. Three kinds of damage, each on a real file
 * written by the spool: garbage over a page of the records table in the
 * middle of the file, a file cut short, a clobbered header. What is
 * readable is found independently, by looking each known seq up alone in
 * a copy of the damaged file.
 */
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { owedFile, readOwed, writeOwed, type OwedState, type OwedStream } from '../daemon/spool/owed-state.js';
import { salvageReport } from '../daemon/spool/quarantine.js';
import { salvage } from '../daemon/spool/salvage.js';
import { SqliteSpool } from '../daemon/spool/sqlite-spool.js';
import type { StoredRecord } from '../daemon/spool/spool-port.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ROWS = 3_000;
const GROUPS = new Map([['cloud', 0], ['archive', 1]]);
const streamOf = (seq: number) => (seq % 3 === 0 ? 'b' : 'a');
/** 50..400 bytes, every 500th row 9,000 (on overflow pages). */
const payloadOf = (seq: number) => Buffer.from(`${seq}:`.padEnd(seq % 500 === 0 ? 9_000 : 50 + ((seq * 37) % 350), 'x'));

/** A spool holding ROWS rows (seqs 1..ROWS with gaps where rows were acked), stopped cleanly. */
function cleanSpool(): { dir: string; file: string; owed: Map<string, Set<number>> } {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-salvage-'));
  dirs.push(dir);
  const file = join(dir, 'spool.db');
  const { spool } = SqliteSpool.open({ file, synchronous: 'normal' });
  // Two groups: rows owed by either or both, with their failed deliveries (the poison count).
  spool.setGroupBits(GROUPS);
  const records: StoredRecord[] = [];
  for (let seq = 1; seq <= ROWS + 200; seq++) records.push({ seq, stream: streamOf(seq), prio: seq % 3, ts: 1_780_000_000_000 + seq, born: seq, attempt: seq % 2, failures: seq % 4, owers: 1 + (seq % 3), payload: payloadOf(seq) });
  for (let i = 0; i < records.length; i += 256) spool.write(records.slice(i, i + 256));
  // Some were acked: the owed state must follow deletes as well as writes.
  const acked = Array.from({ length: 200 }, (_, i) => 1 + i * 7);
  spool.delete(acked);
  spool.close();
  const owed = new Map<string, Set<number>>();
  for (const r of records) {
    if (acked.includes(r.seq)) continue;
    let set = owed.get(r.stream);
    if (set === undefined) owed.set(r.stream, (set = new Set()));
    set.add(r.seq);
  }
  return { dir, file, owed };
}

/** Seqs whose row reads back whole when looked up alone, in a copy of the damaged file. */
function readableAlone(file: string, seqs: Iterable<number>): Set<number> {
  const copy = `${file}.probe`;
  copyFileSync(file, copy);
  const out = new Set<number>();
  try {
    const db = new Database(copy, { readonly: true, fileMustExist: true });
    db.unsafeMode(true);
    db.pragma('writable_schema = ON'); // else a file shorter than its header says does not open at all
    const get = db.prepare('SELECT seq, payload FROM records WHERE seq = ?');
    for (const seq of seqs) {
      try {
        const row = get.get(seq) as { seq: number; payload: Buffer } | undefined;
        if (row !== undefined && row.payload.equals(payloadOf(seq))) out.add(seq);
      } catch (err) {
        assert.match(String((err as { code?: string }).code), /^SQLITE_(CORRUPT|IOERR)/, `seq ${seq}: ${(err as Error).message}`);
      }
    }
    db.close();
  } finally {
    for (const suffix of ['', '-wal', '-shm']) rmSync(copy + suffix, { force: true });
  }
  return out;
}

/** Opens the damaged spool and checks the salvage against what is readable. */
function openAndCheck(file: string, owed: Map<string, Set<number>>, readable: Set<number>, unreadableSeqs: number | null): void {
  const { spool, quarantined } = SqliteSpool.open({ file, synchronous: 'normal' });
  try {
    assert.ok(quarantined, 'moved aside');
    assert.equal(quarantined.owedFrom, 'clean-stop');
    const salvagedSeqs = [...owed.keys()].flatMap((st) => spool.read(st, 0, 1e9, 1e6).map((r) => r.seq));
    assert.deepEqual([...readable].filter((s) => !salvagedSeqs.includes(s)), [], 'readable rows not salvaged');
    assert.equal(quarantined.salvaged, readable.size, 'every readable row salvaged, nothing else');
    const expectLost = [...owed].map(([stream, seqs]) => ({ stream, records: [...seqs].filter((s) => !readable.has(s)).length })).filter((l) => l.records > 0);
    assert.deepEqual([...quarantined.lost].sort((x, y) => x.stream.localeCompare(y.stream)), expectLost.sort((x, y) => x.stream.localeCompare(y.stream)));
    const owedCount = [...owed.values()].reduce((a, seqs) => a + seqs.size, 0);
    if (quarantined.unreadableSeqs !== null) assert.ok(quarantined.unreadableSeqs >= owedCount - readable.size, `the unreadable ranges (${quarantined.unreadableSeqs} seqs) bound what was lost`);
    assert.equal(quarantined.unreadableSeqs, unreadableSeqs, 'the seqs of the skipped range, exactly');
    // The fresh spool holds exactly the readable rows, whole.
    for (const [stream, seqs] of owed) {
      const got = spool.read(stream, 0, 1e9, 1e6);
      assert.deepEqual(got.map((r) => r.seq), [...seqs].filter((s) => readable.has(s)).sort((x, y) => x - y), `stream ${stream}`);
      for (const r of got) {
        assert.ok(Buffer.from(r.payload).equals(payloadOf(r.seq)), `payload of ${r.seq}`);
        assert.deepEqual([r.prio, r.ts, r.born, r.attempt, r.failures, r.owers], [r.seq % 3, 1_780_000_000_000 + r.seq, r.seq, r.seq % 2, r.seq % 4, 1 + (r.seq % 3)]);
      }
    }
    assert.deepEqual([...spool.groupBits()].sort(), [...GROUPS].sort(), "the groups the rows' owers refer to come along");
    assert.ok(statSync(quarantined.path).size > 0, 'the damaged file is kept as found');
    assert.deepEqual(readdirSync(join(file, '..')).filter((f) => /\.salvage|\.probe|corrupt-.*-(wal|shm)$/.test(f)), [], 'no salvage temp files left');
  } finally {
    spool.close();
  }
}

describe('a damaged spool: salvage what can be read, count what cannot', () => {
  for (const [where, pick] of [
    ['in the middle of the file', (leaves: number[]) => leaves[Math.floor(leaves.length / 2)] as number],
    ['on the first page of records (the first batch has no readable prefix)', (leaves: number[]) => leaves[0] as number],
  ] as const) {
    it(`garbage over a page of records ${where}`, () => {
      const { file, owed } = cleanSpool();
      const all = [...owed.values()].flatMap((s) => [...s]);
      const db = new Database(file, { readonly: true });
      // The leaves in key order (dbstat's path: the b-tree's leftmost leaf first).
      const leaves = (db.prepare("SELECT pageno FROM dbstat WHERE name = 'records' AND pagetype = 'leaf' ORDER BY path").all() as Array<{ pageno: number }>).map((r) => r.pageno);
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      db.close();
      const victim = pick(leaves);
      const fd = openSync(file, 'r+');
      writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (victim - 1) * pageSize);
      closeSync(fd);
      const readable = readableAlone(file, all);
      assert.ok(readable.size < all.length && readable.size > all.length / 2, `one page of rows unreadable (${readable.size} of ${all.length})`);
      // The skipped range: after the last row read before the page, up to the one before the first row after it.
      const rows = all.sort((x, y) => x - y);
      const firstLost = rows.findIndex((seq) => !readable.has(seq));
      const lastLost = rows.length - 1 - [...rows].reverse().findIndex((seq) => !readable.has(seq));
      assert.equal(rows.slice(firstLost, lastLost + 1).filter((seq) => readable.has(seq)).length, 0, 'one run of rows lost');
      openAndCheck(file, owed, readable, (rows[lastLost + 1] as number) - 1 - (firstLost === 0 ? 0 : (rows[firstLost - 1] as number)));
    });
  }

  it('a file cut short', () => {
    const { file, owed } = cleanSpool();
    const all = [...owed.values()].flatMap((s) => [...s]);
    truncateSync(file, Math.floor((statSync(file).size * 0.6) / 4096) * 4096);
    const readable = readableAlone(file, all);
    assert.ok(readable.size > 0 && readable.size < all.length, `the tail unreadable (${readable.size} of ${all.length})`);
    openAndCheck(file, owed, readable, null); // up to the end of the table
  });

  it('a clobbered header: rebuilt on a copy, every row salvaged', () => {
    const { file, owed } = cleanSpool();
    const all = [...owed.values()].flatMap((s) => [...s]);
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(100, 0x37), 0, 100, 0);
    closeSync(fd);
    assert.throws(() => new Database(file, { readonly: true }).prepare('SELECT 1 FROM records').get(), /not a database/);
    // The row pages are untouched: all of them are readable.
    openAndCheck(file, owed, new Set(all), 0);
  });
});

describe('the owed state beside the spool, and what the report counts against it', () => {
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-owed-'));
    dirs.push(dir);
    return join(dir, 'spool.db');
  };
  const valid: OwedState = { clean: true, pageSize: 4096, streams: [{ stream: 'a', records: 0, minSeq: 0, maxSeq: 0 }, { stream: 'b', records: 3, minSeq: 7, maxSeq: 9 }] };

  it('reads back what was written (zeros included), and nothing from an absent file', () => {
    const file = fresh();
    assert.equal(readOwed(file), undefined);
    writeOwed(file, valid, true);
    assert.deepEqual(readOwed(file), valid);
  });

  it('treats a torn or malformed file as absent, field by field', () => {
    const file = fresh();
    const stream = valid.streams[1] as OwedStream;
    const bad: Array<[string, unknown]> = [
      ['torn', '{"clean":true,"pageSize":40'],
      ['clean not a boolean', { ...valid, clean: 'yes' }],
      ['pageSize not an integer', { ...valid, pageSize: 4096.5 }],
      ['pageSize a string', { ...valid, pageSize: '4096' }],
      ['streams not an array', { ...valid, streams: {} }],
      ['a stream without a name', { ...valid, streams: [{ ...stream, stream: 7 }] }],
      ['records negative', { ...valid, streams: [{ ...stream, records: -1 }] }],
      ['minSeq fractional', { ...valid, streams: [{ ...stream, minSeq: 1.5 }] }],
      ['maxSeq missing', { ...valid, streams: [{ stream: 'b', records: 3, minSeq: 7 }] }],
      ['the second stream bad, the first good', { ...valid, streams: [stream, { ...stream, maxSeq: -2 }] }],
    ];
    for (const [what, v] of bad) {
      writeFileSync(owedFile(file), typeof v === 'string' ? v : JSON.stringify(v));
      assert.equal(readOwed(file), undefined, what);
    }
  });

  it('counts against the state only the seqs it covered, and rebuilds a header with the page size it names', () => {
    // A spool of 8 KiB pages: the header rebuilt with 4 KiB would read nothing.
    const file = fresh();
    const pre = new Database(file);
    pre.pragma('page_size = 8192');
    pre.exec('CREATE TABLE pad (x); DROP TABLE pad;');
    pre.close();
    const rec = (seq: number, stream: string): StoredRecord => ({ seq, stream, prio: 1, ts: seq, born: seq, attempt: 0, failures: 0, owers: 1, payload: Buffer.from(`p${seq}`) });
    const { spool } = SqliteSpool.open({ file, synchronous: 'normal' });
    spool.write([1, 2, 3, 4, 5].map((s) => rec(s, 'a')).concat([rec(6, 'b')]));
    spool.close();
    // Rows 2 and 3 lost, and rows 20, 21 spilled after the state below was written: outside what it
    // covered, so they make up for nothing.
    const db = new Database(file);
    db.prepare('DELETE FROM records WHERE seq IN (2, 3)').run();
    db.close();
    const { spool: s2 } = SqliteSpool.open({ file, synchronous: 'normal' });
    s2.write([20, 21].map((s) => rec(s, 'a')));
    s2.close();
    // What the state says was owed (a checkpoint's): a 1..5 and b 6, and a stream c that no row of the file holds.
    // a's row 1 lies below what the state covered: it makes up for nothing either.
    writeOwed(file, { clean: false, pageSize: 8192, streams: [{ stream: 'a', records: 4, minSeq: 2, maxSeq: 5 }, { stream: 'b', records: 1, minSeq: 6, maxSeq: 6 }, { stream: 'c', records: 2, minSeq: 10, maxSeq: 11 }] }, false);
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(100, 0x37), 0, 100, 0);
    closeSync(fd);
    const { spool: s3, quarantined } = SqliteSpool.open({ file, synchronous: 'normal' });
    try {
      assert.ok(quarantined);
      assert.equal(quarantined.owedFrom, 'checkpoint');
      assert.equal(quarantined.salvaged, 6, 'a 1, 4, 5, 20, 21 and b 6');
      assert.deepEqual(s3.read('a', 0, 1e9, 100).map((r) => r.seq), [1, 4, 5, 20, 21]);
      assert.deepEqual([...quarantined.lost].sort((x, y) => x.stream.localeCompare(y.stream)), [{ stream: 'a', records: 2 }, { stream: 'c', records: 2 }]);
    } finally {
      s3.close();
    }
  });
});

describe('salvage of a file a crash left with its WAL', () => {
  it('reads the rows still only in the WAL, and leaves the WAL as found (only the -shm it made goes)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-salvage-wal-'));
    dirs.push(dir);
    const file = join(dir, 'live.db');
    const crashed = join(dir, 'crashed.db');
    const { spool } = SqliteSpool.open({ file, synchronous: 'normal' });
    spool.write(Array.from({ length: 50 }, (_, i) => ({ seq: i + 1, stream: 'a', prio: 1, ts: i, born: i, attempt: 0, failures: 0, owers: 1, payload: payloadOf(i + 1) })));
    // What a kill -9 leaves: the database and its WAL, the rows not yet checkpointed.
    copyFileSync(file, crashed);
    copyFileSync(`${file}-wal`, `${crashed}-wal`);
    spool.close();
    const wal = readFileSync(`${crashed}-wal`);
    assert.ok(wal.length > 0);
    const got: number[] = [];
    const r = salvage(crashed, 4096, (rows) => got.push(...rows.map((x) => x.seq)));
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i + 1));
    assert.deepEqual([r.rows, r.unreadable, r.error], [50, [], undefined]);
    assert.deepEqual([...r.salvaged], [['a', got]]);
    assert.ok(readFileSync(`${crashed}-wal`).equals(wal), 'the WAL beside the quarantined file is left as found');
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('crashed')).sort(), ['crashed.db', 'crashed.db-wal']);
  });
});

describe('salvage of a file whose groups or streams table is gone, or from before groups', () => {
  /** A spool file of 3 rows (stream a, owed by group bits 0 and 1: owers 3), closed. */
  const written = (name: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-salvage-tables-'));
    dirs.push(dir);
    const file = join(dir, name);
    const { spool } = SqliteSpool.open({ file, synchronous: 'normal' });
    spool.setGroupBits(GROUPS);
    spool.write([1, 2, 3].map((seq) => ({ seq, stream: 'a', prio: 1, ts: seq, born: seq, attempt: 0, failures: 0, owers: 3, payload: payloadOf(seq) })));
    spool.close();
    return file;
  };
  /** Salvages such a file with one of its tables dropped. */
  const salvagedWithout = (table: string) => {
    const file = written(`no-${table}.db`);
    const db = new Database(file);
    db.exec(`DROP TABLE ${table}`);
    db.close();
    const got: StoredRecord[] = [];
    const r = salvage(file, 4096, (rows) => got.push(...rows));
    return { r, got };
  };

  it('no groups table: which group a bit meant is not known, so every row is owed by group 0 alone', () => {
    const { r, got } = salvagedWithout('groups');
    assert.deepEqual([r.rows, r.error, r.groupBits], [3, undefined, undefined]);
    assert.deepEqual(got.map((x) => [x.seq, x.stream, x.owers]), [[1, 'a', 1], [2, 'a', 1], [3, 'a', 1]]);
  });

  it('no streams table: the rows keep their stream ids as names', () => {
    const { r, got } = salvagedWithout('streams');
    assert.equal(r.rows, 3);
    assert.deepEqual(got.map((x) => [x.seq, x.stream, x.owers]), [[1, 'stream-1', 3], [2, 'stream-1', 3], [3, 'stream-1', 3]]);
    assert.deepEqual([...(r.groupBits ?? [])].sort(), [...GROUPS].sort());
  });

  it('the report without an owed state: nothing known owed, nothing counted lost; and of a file with nothing readable', () => {
    const file = written('report.db');
    assert.deepEqual(salvageReport(file, 'why', undefined, () => undefined), { path: file, reason: 'why', salvaged: 3, lost: [], owedFrom: 'unknown', unreadableSeqs: 0, groupBits: GROUPS });
    const garbage = join(dirname(file), 'garbage.db');
    writeFileSync(garbage, Buffer.alloc(8_192, 0xa5));
    const r = salvageReport(garbage, 'why', undefined, () => undefined);
    assert.deepEqual([r.salvaged, r.lost, r.owedFrom, r.groupBits], [0, [], 'unknown', undefined]);
    assert.equal(typeof r.salvageError, 'string');
  });
});

describe('salvage of a file from before groups and failure counts', () => {
  it('reads its rows as owed by group 0 with no failures', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-salvage-old-'));
    dirs.push(dir);
    const file = join(dir, 'old.db');
    const db = new Database(file);
    db.exec(`CREATE TABLE streams (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
      CREATE TABLE records (seq INTEGER PRIMARY KEY, stream INTEGER NOT NULL, prio INTEGER NOT NULL, ts INTEGER NOT NULL, born INTEGER NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, payload BLOB NOT NULL);
      INSERT INTO streams VALUES (1, 'a'), (2, 'b');`);
    const put = db.prepare('INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (let seq = 1; seq <= 5; seq++) put.run(seq, seq % 2 === 0 ? 2 : 1, 1, 100 + seq, seq, 1, payloadOf(seq));
    db.close();
    const got: StoredRecord[] = [];
    const r = salvage(file, 4096, (rows) => got.push(...rows));
    assert.deepEqual([r.rows, r.error, r.groupBits], [5, undefined, undefined]);
    assert.deepEqual(
      got.map((x) => [x.seq, x.stream, x.prio, x.ts, x.born, x.attempt, x.failures, x.owers, Buffer.from(x.payload).equals(payloadOf(x.seq))]),
      [1, 2, 3, 4, 5].map((seq) => [seq, seq % 2 === 0 ? 'b' : 'a', 1, 100 + seq, seq, 1, 0, 1, true]),
    );
  });
});
