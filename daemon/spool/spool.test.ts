/**
 * The SQLite spool's own duties: quarantine of a corrupt file, what it holds
 * across close and open, a full file reported as SpoolFullError. What every
 * spool must do is the contract suite's (test/spool-contract.test.ts, run on
 * the memory and the SQLite spool).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SpillwayError } from '../errors.js';
import { SpoolError, SpoolFullError, type StoredRecord } from './spool-port.js';
import { injectFault } from '../../test/helpers/sqlite-faults.js';
import { SqliteSpool } from './sqlite-spool.js';
import { makeTempDirSync } from '../../test/helpers/tmp.js';
import { STRACE } from '../../test/helpers/strace.js';
import Database from 'better-sqlite3';

const tmp = () => makeTempDirSync('spool');

const rec = (seq: number, stream: string, size = 10, born = seq): StoredRecord => ({
  seq,
  stream,
  prio: stream === 'a' ? 0 : 1,
  ts: 1_700_000_000_000 + seq,
  born,
  attempt: 0,
  payload: Buffer.alloc(size, seq & 0xff),
});

/** Where a descriptor leads; '' for the one readdir itself had open, gone by now. */
function readlinkOr(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

const seqsOf = (rows: readonly StoredRecord[]) => rows.map((r) => r.seq);

describe('sqlite spool', () => {
  it('opens a spool file from before groups and failed-delivery counts: every row is owed by group 0 (default), with no failures', () => {
    const file = join(tmp(), 'spool.db');
    const old = new Database(file);
    old.exec('CREATE TABLE streams (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)');
    old.exec('CREATE TABLE records (seq INTEGER PRIMARY KEY, stream INTEGER NOT NULL, prio INTEGER NOT NULL, ts INTEGER NOT NULL, born INTEGER NOT NULL, attempt INTEGER NOT NULL, payload BLOB NOT NULL)');
    old.exec('CREATE TABLE attempts (seq INTEGER NOT NULL, grp INTEGER NOT NULL, attempt INTEGER NOT NULL, PRIMARY KEY (seq, grp)) WITHOUT ROWID');
    old.prepare("INSERT INTO streams (id, name) VALUES (1, 'a')").run();
    old.prepare('INSERT INTO records VALUES (7, 1, 0, 1, 2, 3, ?)').run(Buffer.alloc(4, 1));
    old.close();
    const s = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    assert.deepEqual([...s.groupBits()], [['default', 0]]);
    assert.deepEqual(s.readFor('a', 0, 10, 10, 1).map((r) => [r.seq, r.owers, r.payload.length]), [[7, 1, 4]]);
    assert.deepEqual(s.read('a', 0, 10, 10).map((r) => [r.seq, r.attempt, r.failures]), [[7, 3, 0]]);
    s.setAttempts([{ seq: 7, attempt: 4, failures: 2 }]);
    s.setGroupAttempts([{ seq: 7, bit: 1, attempt: 4, failures: 2 }]);
    assert.deepEqual(s.readFor('a', 0, 10, 10, 1).map((r) => [r.attempt, r.failures]), [[4, 2]], 'the added columns are written');
    s.close();
  });

  it('moves a corrupt file aside and starts fresh', () => {
    const dir = tmp();
    const file = join(dir, 'spool.db');
    writeFileSync(file, Buffer.alloc(8192, 0x5a));
    const { spool, quarantined } = SqliteSpool.open({ file, synchronous: 'normal' }, () => new Date('2026-01-02T03:04:05.678Z'));
    assert.ok(quarantined, 'reported as quarantined');
    assert.match(quarantined.reason, /not a database|malformed/i);
    assert.ok(existsSync(join(dir, 'spool.db.corrupt-2026-01-02T03-04-05-678Z')));
    spool.write([rec(1, 'a')]);
    assert.equal(spool.summary()[0]?.records, 1);
    spool.close();
    assert.ok(readdirSync(dir).some((f) => f.startsWith('spool.db.corrupt-')));
  });

  it('syncWal: one fdatasync at a time, calls during one share the next; false once closed', async () => {
    const file = join(tmp(), 'spool.db');
    const s = SqliteSpool.open({ file, synchronous: 'full', syncCommitsOffLoop: true }).spool;
    s.write([rec(1, 'a'), rec(2, 'b')]);
    const first = s.syncWal();
    s.write([rec(3, 'a')]);
    const second = s.syncWal();
    assert.notEqual(second, first, 'the first may have begun before the second write: another one covers it');
    assert.equal(s.syncWal(), second, 'calls while one runs share the next');
    assert.deepEqual(await Promise.all([first, second]), [true, true]);
    assert.equal(await s.syncWal(), true, 'and a new one starts once none runs');
    s.close();
    assert.equal(await s.syncWal(), false, 'closed: nothing to sync, nothing to acknowledge');
  });

  it('keeps what it holds across close and open', () => {
    const file = join(tmp(), 'spool.db');
    const a = SqliteSpool.open({ file, synchronous: 'full' }).spool;
    a.write([rec(1, 'a'), rec(2, 'b')]);
    a.close();
    const b = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    assert.deepEqual(b.summary().map((x) => x.records), [1, 1]);
    b.close();
  });

  it('reports a full file as SpoolFullError, and keeps working for deletes', () => {
    const file = join(tmp(), 'spool.db');
    const { spool } = SqliteSpool.open({ file, synchronous: 'normal', maxFileBytes: 64 * 1024 });
    let seq = 1;
    assert.throws(() => {
      for (let i = 0; i < 1_000; i++) spool.write(Array.from({ length: 10 }, () => rec(seq++, 'a', 1_000)));
    }, SpoolFullError);
    const n = spool.summary()[0]?.records ?? 0;
    assert.ok(n > 0);
    spool.deleteOldest('a', 0, 1e9, n);
    assert.deepEqual(spool.summary(), []);
    spool.close();
  });
  it('sizeOnDisk is the database and its WAL, as stat sees them', () => {
    const file = join(tmp(), 'spool.db');
    const { spool } = SqliteSpool.open({ file, synchronous: 'normal' });
    spool.write(Array.from({ length: 300 }, (_, i) => rec(i + 1, 'a', 500)));
    assert.equal(spool.sizeOnDisk(), statSync(file).size + statSync(`${file}-wal`).size);
    spool.close();
  });

  it('keeps what it owes beside it: clean at close, not clean from the next open on', () => {
    const file = join(tmp(), 'spool.db');
    const a = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    a.write([rec(1, 'a'), rec(2, 'b'), rec(3, 'a'), rec(4, 'a'), rec(9, 'b')]);
    a.delete([1, 2]);
    a.deleteOldest('a', 0, 100, 1);
    a.close();
    const owed = () => JSON.parse(readFileSync(`${file}.owed`, 'utf8')) as { clean: boolean; streams: unknown[] };
    assert.deepEqual(owed(), { clean: true, pageSize: 4096, streams: [{ stream: 'a', records: 1, minSeq: 4, maxSeq: 4 }, { stream: 'b', records: 1, minSeq: 9, maxSeq: 9 }] });
    const b = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    assert.equal(owed().clean, false, 'a crash from here on must not leave the clean record standing');
    b.close();
    assert.equal(owed().clean, true);
  });

  it('writes what it owes only when that changed (an idle spool writes nothing), for every stream that has rows', () => {
    const file = join(tmp(), 'spool.db');
    const s = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    const owedFile = `${file}.owed`;
    const owed = () => JSON.parse(readFileSync(owedFile, 'utf8')) as unknown;
    const written = () => statSync(owedFile).ino; // each save renames a new file into place
    const atOpen = written();
    s.saveOwed();
    assert.equal(written(), atOpen, 'nothing changed: not written again');
    s.write([rec(1, 'a'), rec(2, 'b'), rec(3, 'a')]);
    s.saveOwed();
    const afterWrite = written();
    assert.notEqual(afterWrite, atOpen);
    assert.deepEqual(owed(), { clean: false, pageSize: 4096, streams: [{ stream: 'a', records: 2, minSeq: 1, maxSeq: 3 }, { stream: 'b', records: 1, minSeq: 2, maxSeq: 2 }] });
    s.saveOwed();
    assert.equal(written(), afterWrite);
    s.delete([2]);
    s.saveOwed();
    assert.deepEqual(owed(), { clean: false, pageSize: 4096, streams: [{ stream: 'a', records: 2, minSeq: 1, maxSeq: 3 }] }, 'a stream emptied is not listed');
    s.close();
  });

  it('an owed state it cannot write (its directory gone) is kept as it was: nothing thrown, the spool goes on', () => {
    const dir = join(tmp(), 'gone');
    mkdirSync(dir);
    const file = join(dir, 'spool.db');
    const s = SqliteSpool.open({ file, synchronous: 'normal', diskReserveBytes: 0 }).spool; // no statfs of a directory that goes
    rmSync(dir, { recursive: true });
    s.write([rec(1, 'a')]); // SQLite goes on in the unlinked files
    assert.doesNotThrow(() => s.saveOwed());
    assert.deepEqual(seqsOf(s.read('a', 0, 10, 10)), [1]);
    assert.doesNotThrow(() => s.close());
  });

  it('diskUse: the pages in use, the whole file and the WAL, as SQLite and stat see them; undefined once closed', () => {
    const file = join(tmp(), 'spool.db');
    const s = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    s.write(Array.from({ length: 300 }, (_, i) => rec(i + 1, 'a', 500)));
    s.delete(Array.from({ length: 200 }, (_, i) => i + 1));
    const db = new Database(file, { readonly: true });
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    db.close();
    assert.ok(free > 0, 'the deletes left free pages');
    assert.deepEqual(s.diskUse(), { live: (pages - free) * 4096, file: pages * 4096, wal: statSync(`${file}-wal`).size, pageSize: 4096 });
    s.close();
    assert.equal(s.diskUse(), undefined);
  });

  it('syncWal reports a failed fdatasync as false; close closes its WAL descriptor, and a second close does nothing', async () => {
    const file = join(tmp(), 'spool.db');
    const s = SqliteSpool.open({ file, synchronous: 'full', syncCommitsOffLoop: true }).spool;
    const walFds = () => readdirSync('/proc/self/fd').filter((fd) => readlinkOr(`/proc/self/fd/${fd}`) === `${file}-wal`);
    const plain = SqliteSpool.open({ file: `${file}-plain`, synchronous: 'full', syncCommitsOffLoop: true }).spool;
    plain.write([rec(1, 'a')]);
    assert.equal(await plain.syncWal(), true);
    plain.close();
    assert.equal(readdirSync('/proc/self/fd').filter((fd) => readlinkOr(`/proc/self/fd/${fd}`).startsWith(`${file}-plain-wal`)).length, 0, "closed with the spool (SQLite deleted the WAL: a descriptor left would read '(deleted)')");
    s.write([rec(1, 'a')]);
    const sqliteOwn = walFds();
    assert.equal(await s.syncWal(), true);
    const mine = walFds().filter((fd) => !sqliteOwn.includes(fd));
    assert.equal(mine.length, 1, 'syncWal opened the WAL once');
    // Its descriptor now names /dev/null, where fdatasync fails (EINVAL): as on a failing disk.
    closeSync(Number(mine[0]));
    const stand = openSync('/dev/null', 'r');
    assert.equal(String(stand), mine[0], 'the same descriptor number');
    assert.equal(await s.syncWal(), false, 'a failed sync acknowledges nothing');
    s.close(); // closes `stand` too
    assert.deepEqual(walFds(), []);
    assert.doesNotThrow(() => s.close());
  });

  it('the group map read under a fault: SpoolError naming it (a raw SqliteError made a reload throw: the core model found it)', () => {
    const file = join(tmp(), 'spool.db');
    const s = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    const fault = injectFault({ sql: /^SELECT name, bit FROM groups/, code: 'SQLITE_FULL' });
    try {
      assert.throws(() => s.groupBits(), (err: unknown) => err instanceof SpoolError && (err as Error).message === 'spool read failed: database or disk is full');
    } finally {
      fault.restore();
    }
    assert.deepEqual([...s.groupBits()], [['default', 0]], 'read again once the fault is gone');
    s.close();
  });

  it('reclaim under a fault: SpoolError naming it', () => {
    const file = join(tmp(), 'spool.db');
    const s = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    const fault = injectFault({ sql: /^PRAGMA freelist_count/, code: 'SQLITE_IOERR' });
    try {
      assert.throws(() => s.reclaim(), (err: unknown) => err instanceof SpoolError && (err as Error).message === 'spool reclaim failed: disk I/O error');
    } finally {
      fault.restore();
    }
    assert.equal(s.reclaim(), 0);
    s.close();
  });

  it('finds at open the damage no read would touch yet (a garbled freelist page): quarantined, every row salvaged', () => {
    const dir = tmp();
    const file = join(dir, 'spool.db');
    const a = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    a.write(Array.from({ length: 200 }, (_, i) => rec(i + 1, 'a', 1_000)));
    a.delete(Array.from({ length: 190 }, (_, i) => i + 1)); // their pages go to the freelist (no reclaim ran)
    a.close();
    const fd = openSync(file, 'r+');
    const header = Buffer.alloc(100);
    readSync(fd, header, 0, 100, 0);
    const trunk = header.readUInt32BE(32); // the first freelist trunk page
    assert.ok(trunk > 1 && header.readUInt32BE(36) > 0, 'free pages');
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 4096 * (trunk - 1));
    closeSync(fd);
    // Unchecked, the spool would open and hand the garbage out as free pages to its next writes.
    const { spool, quarantined } = SqliteSpool.open({ file, synchronous: 'normal' });
    assert.match(quarantined?.reason ?? '', /^quick_check: [^]*Freelist/);
    assert.equal(quarantined?.salvaged, 10);
    assert.deepEqual(seqsOf(spool.read('a', 0, 1_000, 1_000)), Array.from({ length: 10 }, (_, i) => 191 + i));
    spool.close();
  });

  it('every kind of delete, after a reopen too, takes the group delivery counts of its rows along (none left behind in the file)', () => {
    const file = join(tmp(), 'spool.db');
    const a = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    a.write([1, 2, 3, 4].map((seq) => ({ ...rec(seq, 'a'), owers: 0b11, groupAttempts: [{ bit: 0b10, attempt: 2, failures: 1 }] })));
    a.close();
    const b = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    b.delete([1]);
    b.deleteOldest('a', 1, 10, 1);
    b.deleteBornBefore('a', 0, 10, 4);
    const counted = () => {
      const db = new Database(file, { readonly: true });
      try {
        return (db.prepare('SELECT seq FROM attempts ORDER BY seq').all() as Array<{ seq: number }>).map((r) => r.seq);
      } finally {
        db.close();
      }
    };
    assert.deepEqual(counted(), [4], 'deleted by seq, as the oldest, as born before: each row took its counts along');
    b.close();
    // Counts written to a spool that had none (set, or written with a row): the next delete takes them along too.
    for (const how of ['set', 'written'] as const) {
      const c = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
      c.delete([4, 5]);
      assert.deepEqual(counted(), []);
      if (how === 'set') {
        c.write([{ ...rec(5, 'a'), owers: 0b11 }]);
        c.setGroupAttempts([{ seq: 5, bit: 0b10, attempt: 1 }]);
      } else c.write([{ ...rec(5, 'a'), owers: 0b11, groupAttempts: [{ bit: 0b10, attempt: 1, failures: 0 }] }]);
      assert.deepEqual(counted(), [5]);
      c.delete([5]);
      assert.deepEqual(counted(), [], how);
      c.close();
    }
  });

  it('a write SQLite refuses: SpoolFullError, no room until a write is taken again, the growth listener told; a failed delete told too', () => {
    const file = join(tmp(), 'spool.db');
    const s = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    const told: boolean[] = [];
    s.onGrowth((failed) => told.push(failed));
    assert.equal(s.hasRoom(), true, 'a fresh spool has room');
    const refuse = (sql: RegExp, call: () => unknown, error: typeof SpoolError) => {
      const fault = injectFault({ sql, code: 'SQLITE_FULL' });
      try {
        assert.throws(call, (err: unknown) => err instanceof error && (err as Error).message.startsWith(error === SpoolFullError ? 'spool write failed: database or disk is full' : 'spool delete failed'));
      } finally {
        fault.restore();
      }
      assert.equal(fault.fired, 1);
    };
    refuse(/^INSERT INTO records/, () => s.write([rec(1, 'a')]), SpoolFullError);
    assert.equal(s.hasRoom(), false, 'what statfs cannot show: SQLite said full');
    assert.deepEqual(told, [true]);
    s.write([rec(2, 'a')]);
    assert.equal(s.hasRoom(), true, 'a write taken: room again');
    refuse(/^DELETE FROM records WHERE seq IN/, () => s.deleteOldest('a', 0, 10, 1), SpoolError);
    assert.deepEqual(told, [true, true], 'a refused delete starts a checkpoint round too');
    // better-sqlite3 takes an object for named parameters: a RangeError of its own, not SQLite's refusal.
    assert.throws(() => s.write([{ ...rec(3, 'a'), payload: {} as Buffer }]), (err: unknown) => err instanceof RangeError && !(err instanceof SpoolError), 'a bug is not reported as a full disk');
    assert.deepEqual(told, [true, true]);
    assert.equal(s.hasRoom(), true);
    s.close();
  });

  it('an extended corruption code at open (SQLITE_CORRUPT_INDEX) is damage too: moved aside, every row salvaged', () => {
    const dir = tmp();
    const file = join(dir, 'spool.db');
    const a = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    a.write([rec(1, 'a'), rec(2, 'b')]);
    a.close();
    const fault = injectFault({ sql: /^SELECT id, name FROM streams/, code: 'SQLITE_CORRUPT_INDEX' });
    let opened: ReturnType<typeof SqliteSpool.open>;
    try {
      opened = SqliteSpool.open({ file, synchronous: 'normal' }, () => new Date('2026-01-02T03:04:05.678Z'));
    } finally {
      fault.restore();
    }
    assert.equal(opened.quarantined?.path, join(dir, 'spool.db.corrupt-2026-01-02T03-04-05-678Z'));
    assert.equal(opened.quarantined?.salvaged, 2);
    opened.spool.close();
  });

  it('refuses to open where SQLite cannot (not a damaged file): SPOOL_OPEN with the cause, nothing moved aside', () => {
    const dir = tmp();
    const file = join(dir, 'spool.db');
    mkdirSync(file); // a directory where the file should be
    assert.throws(
      () => SqliteSpool.open({ file, synchronous: 'normal' }),
      (err: unknown) =>
        err instanceof SpillwayError &&
        err.code === 'SPOOL_OPEN' &&
        err.message.startsWith(`cannot open spool ${file}: `) &&
        (err.cause as { code?: string } | undefined)?.code === 'SQLITE_CANTOPEN',
    );
    assert.deepEqual(readdirSync(dir), ['spool.db']);
    assert.ok(statSync(file).isDirectory(), 'left where it was');
  });

  it('keeps the disk reserve it is given: free space below it refuses writes', () => {
    const file = join(tmp(), 'spool.db');
    const s = SqliteSpool.open({ file, synchronous: 'normal', diskReserveBytes: 2 ** 52 }).spool;
    assert.equal(s.hasRoom(), false, 'no file system has 4 PiB free');
    assert.throws(() => s.write([rec(1, 'a')]), SpoolFullError);
    s.close();
    const none = SqliteSpool.open({ file, synchronous: 'normal', diskReserveBytes: 0 }).spool;
    assert.equal(none.hasRoom(), true);
    none.close();
  });

  // synchronous FULL syncs the WAL at every commit (SQLite's own; the first commit into a new WAL
  // syncs its header too); NORMAL and FULL made off the loop (syncCommitsOffLoop) never do: the
  // caller's syncWal() does, one fdatasync covering every commit before it.
  for (const [synchronous, offLoop, commitSyncs] of [['normal', false, 0], ['full', false, 4], ['full', true, 0]] as const) {
    it(`synchronous ${synchronous}${offLoop ? ', off the loop' : ''}: ${commitSyncs} WAL syncs for three commits (strace), one for syncWal`, () => {
      const dir = tmp();
      const file = join(dir, 'spool.db');
      const log = join(dir, 'trace');
      const script = `import { writeSync } from 'node:fs';
import { SqliteSpool } from ${JSON.stringify(new URL('./sqlite-spool.js', import.meta.url).href)};
const s = SqliteSpool.open({ file: ${JSON.stringify(file)}, synchronous: '${synchronous}', syncCommitsOffLoop: ${offLoop} }).spool;
const rec = (seq) => ({ seq, stream: 'a', prio: 1, ts: 0, born: 0, attempt: 0, payload: Buffer.alloc(10) });
writeSync(1, 'commits\\n');
for (let seq = 1; seq <= 3; seq++) s.write([rec(seq)]);
writeSync(1, 'syncWal\\n');
if (!(await s.syncWal())) process.exit(3);
writeSync(1, 'close\\n');
s.close();`;
      const run = spawnSync(STRACE, ['-f', '-yy', '-e', 'trace=fsync,fdatasync,write', '-o', log, '--', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.equal(run.error, undefined, `strace runs (${STRACE})`);
      assert.equal(run.status, 0, run.stderr);
      const steps: string[] = [];
      for (const line of readFileSync(log, 'utf8').split('\n')) {
        const mark = /write\(1<.*?>, "(\w+)\\n"/.exec(line)?.[1];
        if (mark !== undefined) steps.push(mark);
        else if (/^\d+ +f(data)?sync\(\d+<[^>]*spool\.db-wal>\) += 0/.test(line)) steps.push('sync');
      }
      const between = (from: string, to: string) => steps.slice(steps.indexOf(from) + 1, steps.indexOf(to)).length;
      assert.deepEqual([between('commits', 'syncWal'), between('syncWal', 'close')], [commitSyncs, 1], steps.join(' '));
    });
  }
});
