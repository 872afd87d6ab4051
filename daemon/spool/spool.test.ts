/**
 * One contract, two spools: the SQLite spool must behave exactly as the
 * memory spool the property tests use. Then the SQLite spool's own duties:
 * quarantine of a corrupt file, a full disk reported as SpoolFullError.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { MemorySpool } from './memory-spool.js';
import { SpoolFullError, type SpoolPort, type StoredRecord } from './spool-port.js';
import { SqliteSpool } from './sqlite-spool.js';
import Database from 'better-sqlite3';

const dirs: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-spool-'));
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const rec = (seq: number, stream: string, size = 10, born = seq): StoredRecord => ({
  seq,
  stream,
  prio: stream === 'a' ? 0 : 1,
  ts: 1_700_000_000_000 + seq,
  born,
  attempt: 0,
  payload: Buffer.alloc(size, seq & 0xff),
});

const impls: Array<[string, () => SpoolPort & { close?: () => void }]> = [
  ['memory', () => new MemorySpool()],
  ['sqlite', () => SqliteSpool.open({ file: join(tmp(), 'spool.db'), synchronous: 'normal' }).spool],
];

for (const [name, make] of impls) {
  describe(`spool contract: ${name}`, () => {
    it('reads a stream oldest first within a range, and deletes what it is told', () => {
      const s = make();
      s.write([rec(1, 'a'), rec(2, 'b'), rec(3, 'a'), rec(5, 'a', 20), rec(7, 'b')]);
      assert.deepEqual(s.read('a', 0, 10, 10).map((r) => r.seq), [1, 3, 5]);
      assert.deepEqual(s.read('a', 1, 4, 10).map((r) => r.seq), [3]);
      assert.deepEqual(s.read('a', 0, 10, 2).map((r) => r.seq), [1, 3]);
      assert.deepEqual(s.read('zzz', 0, 10, 10), []);
      const r5 = s.read('a', 4, 5, 1)[0];
      assert.deepEqual(r5, { ...rec(5, 'a', 20), owers: 1 });
      assert.deepEqual(s.deleteOldest('a', 0, 10, 2), { records: 2, payloadBytes: 20 });
      assert.deepEqual(s.read('a', 0, 10, 10).map((r) => r.seq), [5]);
      s.delete([5, 7, 999]);
      assert.deepEqual(s.summary().map((x) => [x.stream, x.records, x.payloadBytes, x.maxSeq]), [['b', 1, 10, 2]]);
      s.close?.();
    });

    it('deletes by age within a range and keeps attempts', () => {
      const s = make();
      s.write([rec(1, 'a', 1, 100), rec(2, 'a', 2, 200), rec(3, 'a', 3, 300)]);
      assert.deepEqual(s.deleteBornBefore('a', 1, 3, 250), { records: 1, payloadBytes: 2 });
      s.setAttempts([{ seq: 3, attempt: 4 }]);
      assert.deepEqual(s.read('a', 0, 3, 10).map((r) => [r.seq, r.attempt]), [[1, 0], [3, 4]]);
      s.close?.();
    });

    it('keeps one row for several groups and deletes it when the last releases it', () => {
      const s = make();
      s.write([{ ...rec(1, 'a'), owers: 0b011 }, { ...rec(2, 'a'), owers: 0b110 }, { ...rec(3, 'a', 20), owers: 0b001 }, { ...rec(4, 'b'), owers: 0b100 }]);
      assert.deepEqual(s.readFor('a', 0, 10, 10, 0b010).map((r) => [r.seq, r.owers]), [[1, 0b011], [2, 0b110]]);
      assert.deepEqual(s.summaryFor(0b001).map((x) => [x.stream, x.records, x.payloadBytes, x.maxSeq]), [['a', 2, 30, 3]]);
      assert.deepEqual(s.release([1, 3, 999], 0b001), { records: 1, payloadBytes: 20 }, 'row 3 had only group 0: deleted; row 1 stays for group 1');
      assert.deepEqual(s.readFor('a', 0, 10, 10, 0b001), []);
      assert.deepEqual(s.releaseOldest('a', 0, 10, 5, 0b010), { records: 2, payloadBytes: 20, freed: { records: 1, payloadBytes: 10 } });
      assert.deepEqual(s.read('a', 0, 10, 10).map((r) => [r.seq, r.owers]), [[2, 0b100]]);
      assert.deepEqual(s.releaseBornBefore('a', 0, 10, 3, 0b100), { records: 1, payloadBytes: 10, freed: { records: 1, payloadBytes: 10 } });
      assert.deepEqual(s.releaseGroups(0b100), { records: 1, payloadBytes: 10, freed: { records: 1, payloadBytes: 10 } });
      assert.deepEqual(s.summary(), []);
      assert.deepEqual([...s.groupBits()], [['default', 0]]);
      s.setGroupBits(new Map([['cloud', 1], ['archive', 0]]));
      assert.deepEqual([...s.groupBits()].sort(), [['archive', 0], ['cloud', 1]]);
      s.close?.();
    });

    it('agrees with the memory spool on random operations', () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.oneof(
              fc.record({ op: fc.constant('write' as const), n: fc.integer({ min: 1, max: 5 }), stream: fc.constantFrom('a', 'b') }),
              fc.record({ op: fc.constant('oldest' as const), stream: fc.constantFrom('a', 'b'), after: fc.nat(40), n: fc.integer({ min: 1, max: 4 }) }),
              fc.record({ op: fc.constant('born' as const), stream: fc.constantFrom('a', 'b'), before: fc.nat(40) }),
              fc.record({ op: fc.constant('delete' as const), seqs: fc.array(fc.nat(40), { maxLength: 4 }) }),
            ),
            { maxLength: 30 },
          ),
          (ops) => {
            const ref = new MemorySpool();
            const s = make();
            let seq = 1;
            for (const op of ops) {
              if (op.op === 'write') {
                const batch = Array.from({ length: op.n }, () => rec(seq++, op.stream, seq % 7));
                ref.write(batch);
                s.write(batch);
              } else if (op.op === 'oldest') assert.deepEqual(s.deleteOldest(op.stream, op.after, 1e9, op.n), ref.deleteOldest(op.stream, op.after, 1e9, op.n));
              else if (op.op === 'born') assert.deepEqual(s.deleteBornBefore(op.stream, 0, 1e9, op.before), ref.deleteBornBefore(op.stream, 0, 1e9, op.before));
              else {
                s.delete(op.seqs);
                ref.delete(op.seqs);
              }
              for (const st of ['a', 'b']) assert.deepEqual(s.read(st, 0, 1e9, 1e6), ref.read(st, 0, 1e9, 1e6));
            }
            s.close?.();
          },
        ),
        { numRuns: name === 'sqlite' ? 40 : 100 },
      );
    });
  });
}

for (const [name, make] of impls) {
  describe(`spool contract, groups: ${name}`, () => {
    it('agrees with the memory spool on random group operations', () => {
      const bit = fc.constantFrom(1, 2, 4);
      fc.assert(
        fc.property(
          fc.array(
            fc.oneof(
              fc.record({ op: fc.constant('write' as const), n: fc.integer({ min: 1, max: 4 }), owers: fc.integer({ min: 1, max: 7 }) }),
              fc.record({ op: fc.constant('oldest' as const), after: fc.nat(30), n: fc.integer({ min: 1, max: 4 }), bit }),
              fc.record({ op: fc.constant('born' as const), before: fc.nat(30), bit }),
              fc.record({ op: fc.constant('release' as const), seqs: fc.array(fc.nat(30), { maxLength: 4 }), bit }),
              fc.record({ op: fc.constant('attempt' as const), seq: fc.nat(30), bit, attempt: fc.integer({ min: 1, max: 5 }) }),
              fc.record({ op: fc.constant('groups' as const), mask: fc.integer({ min: 1, max: 7 }) }),
            ),
            { maxLength: 25 },
          ),
          (ops) => {
            const ref = new MemorySpool();
            const s = make();
            let seq = 1;
            for (const op of ops) {
              if (op.op === 'write') {
                const batch = Array.from({ length: op.n }, () => ({ ...rec(seq++, 'a', seq % 5), owers: op.owers }));
                ref.write(batch);
                s.write(batch);
              } else if (op.op === 'oldest') assert.deepEqual(s.releaseOldest('a', op.after, 1e9, op.n, op.bit), ref.releaseOldest('a', op.after, 1e9, op.n, op.bit));
              else if (op.op === 'born') assert.deepEqual(s.releaseBornBefore('a', 0, 1e9, op.before, op.bit), ref.releaseBornBefore('a', 0, 1e9, op.before, op.bit));
              else if (op.op === 'release') assert.deepEqual(s.release(op.seqs, op.bit), ref.release(op.seqs, op.bit));
              else if (op.op === 'groups') assert.deepEqual(s.releaseGroups(op.mask), ref.releaseGroups(op.mask));
              else if (s.readFor('a', op.seq - 1, op.seq, 1, op.bit).length > 0) {
                s.setGroupAttempts([op]);
                ref.setGroupAttempts([op]);
              }
              for (const b of [1, 2, 4]) assert.deepEqual(s.readFor('a', 0, 1e9, 1e6, b), ref.readFor('a', 0, 1e9, 1e6, b));
              assert.deepEqual(s.summaryFor(2), ref.summaryFor(2));
            }
            s.close?.();
          },
        ),
        { numRuns: name === 'sqlite' ? 30 : 100 },
      );
    });
  });
}

describe('sqlite spool', () => {
  it('opens a spool file from before groups: every row is owed by group 0 (default)', () => {
    const file = join(tmp(), 'spool.db');
    const old = new Database(file);
    old.exec('CREATE TABLE streams (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)');
    old.exec('CREATE TABLE records (seq INTEGER PRIMARY KEY, stream INTEGER NOT NULL, prio INTEGER NOT NULL, ts INTEGER NOT NULL, born INTEGER NOT NULL, attempt INTEGER NOT NULL, payload BLOB NOT NULL)');
    old.prepare("INSERT INTO streams (id, name) VALUES (1, 'a')").run();
    old.prepare('INSERT INTO records VALUES (7, 1, 0, 1, 2, 3, ?)').run(Buffer.alloc(4, 1));
    old.close();
    const s = SqliteSpool.open({ file, synchronous: 'normal' }).spool;
    assert.deepEqual([...s.groupBits()], [['default', 0]]);
    assert.deepEqual(s.readFor('a', 0, 10, 10, 1).map((r) => [r.seq, r.owers, r.payload.length]), [[7, 1, 4]]);
    assert.deepEqual(s.read('a', 0, 10, 10).map((r) => [r.seq, r.attempt]), [[7, 3]]);
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
});
