/**
 * Every SpoolPort implementation passes the same contract suite
 * (test/helpers/spool-contract.ts); the factories below are the only
 * per-implementation code. Then the SQLite spool under faults: SQLite errors
 * raised from below it (the statement fails as SQLite fails, with its real
 * error code), after which the spool must hold exactly what it held before,
 * report the failure as SpoolError / SpoolFullError with the SQLite error as
 * cause, and keep working. A real full file system: spool-full-disk.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import fc from 'fast-check';
import { MemorySpool } from '../daemon/spool/memory-spool.js';
import { SpoolError, SpoolFullError, type SpoolPort } from '../daemon/spool/spool-port.js';
import { SqliteSpool } from '../daemon/spool/sqlite-spool.js';
import { injectFault, type Fault, type Injector } from './helpers/sqlite-faults.js';
import { rec, snapshot, spoolContract, type SpoolUnderTest } from './helpers/spool-contract.js';

function openSqlite(synchronous: 'normal' | 'full' = 'normal'): SpoolUnderTest & { spool: SqliteSpool } {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-contract-'));
  const { spool } = SqliteSpool.open({ file: join(dir, 'spool.db'), synchronous });
  return {
    spool,
    close() {
      spool.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

spoolContract('memory', () => ({ spool: new MemorySpool(), close() {} }));
spoolContract('sqlite', () => openSqlite());

/** The group operations, random sequences against the memory spool as the reference (the SQLite spool must agree). */
const groupImpls: Array<[string, () => SpoolUnderTest]> = [
  ['memory', () => ({ spool: new MemorySpool(), close() {} })],
  ['sqlite', () => openSqlite()],
];

for (const [name, make] of groupImpls) {
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
              fc.record({ op: fc.constant('attempt' as const), seq: fc.nat(30), bit, attempt: fc.integer({ min: 1, max: 5 }), failures: fc.nat(4) }),
              fc.record({ op: fc.constant('groups' as const), mask: fc.integer({ min: 1, max: 7 }) }),
            ),
            { maxLength: 25 },
          ),
          (ops) => {
            const ref = new MemorySpool();
            const under = make();
            const s = under.spool;
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
            under.close();
          },
        ),
        { numRuns: name === 'sqlite' ? 30 : 100 },
      );
    });
  });
}

/** A spool holding streams a and b, seqs 1..8. */
function prefilled(): SpoolUnderTest & { spool: SqliteSpool } {
  const s = openSqlite();
  s.spool.write([rec(1, 'a', 1), rec(2, 'b', 2), rec(3, 'a', 3), rec(4, 'a', 4)]);
  s.spool.write([rec(5, 'b', 5), rec(6, 'a', 6), rec(7, 'a', 7), rec(8, 'b', 8)]);
  return s;
}

interface FaultCase {
  readonly name: string;
  readonly fault: Fault;
  readonly call: (spool: SpoolPort) => unknown;
  /** What the call is expected to throw. */
  readonly error: typeof SpoolError;
  /** What its message names as failed: `spool <says> failed: <SQLite's message>`. */
  readonly says: 'write' | 'read' | 'delete' | 'update';
  /** After the failure: the same call, no fault, gives this (and the spool the matching content). */
  readonly retried?: unknown;
}

const WRITE_BATCH = (spool: SpoolPort) => spool.write([rec(9, 'c', 9), rec(10, 'a', 10), rec(11, 'c', 11)]);

const cases: FaultCase[] = [
  { name: 'a one-row write, disk full', fault: { sql: /^INSERT INTO records/, code: 'SQLITE_FULL' }, call: (s) => s.write([rec(9, 'a', 9)]), says: 'write', error: SpoolFullError },
  { name: 'a one-row write to a new stream, I/O error', fault: { sql: /^INSERT INTO records/, code: 'SQLITE_IOERR_WRITE' }, call: (s) => s.write([rec(9, 'c', 9)]), says: 'write', error: SpoolFullError },
  { name: 'a batch write, disk full on its third row', fault: { sql: /^INSERT INTO records/, code: 'SQLITE_FULL', skip: 2 }, call: WRITE_BATCH, says: 'write', error: SpoolFullError },
  { name: 'a batch write, I/O error at COMMIT', fault: { sql: /^COMMIT$/, code: 'SQLITE_IOERR_FSYNC' }, call: WRITE_BATCH, says: 'write', error: SpoolFullError },
  { name: 'a batch write, busy at BEGIN', fault: { sql: /^BEGIN$/, code: 'SQLITE_BUSY' }, call: WRITE_BATCH, says: 'write', error: SpoolFullError },
  { name: 'a one-row write taking deletes along, disk full on the insert', fault: { sql: /^INSERT INTO records/, code: 'SQLITE_FULL' }, call: (s) => s.write([rec(9, 'a', 9)], [1, 3, 4]), says: 'write', error: SpoolFullError },
  { name: 'a batch write taking deletes along, I/O error on the delete', fault: { sql: /^DELETE FROM records WHERE seq BETWEEN/, code: 'SQLITE_IOERR_WRITE' }, call: (s) => s.write([rec(9, 'a', 9), rec(10, 'c', 1)], [6, 7]), says: 'write', error: SpoolFullError },
  { name: 'a read, corrupt page', fault: { sql: /^SELECT seq/, code: 'SQLITE_CORRUPT' }, call: (s) => s.read('a', 0, 100, 100), says: 'read', error: SpoolError },
  { name: 'deleteOldest, I/O error', fault: { sql: /^DELETE FROM records WHERE seq IN/, code: 'SQLITE_IOERR' }, call: (s) => s.deleteOldest('a', 0, 100, 2), says: 'delete', error: SpoolError, retried: { records: 2, payloadBytes: 4, last: 3 } },
  { name: 'deleteBornBefore, busy', fault: { sql: /^DELETE FROM records WHERE stream/, code: 'SQLITE_BUSY' }, call: (s) => s.deleteBornBefore('b', 0, 100, 6), says: 'delete', error: SpoolError, retried: { records: 2, payloadBytes: 7 } },
  { name: 'delete of two seq runs, I/O error on the second', fault: { sql: /^DELETE FROM records WHERE seq BETWEEN/, code: 'SQLITE_IOERR_WRITE', skip: 1 }, call: (s) => s.delete([1, 2, 3, 7, 8]), says: 'delete', error: SpoolError },
  { name: 'delete, disk full at COMMIT', fault: { sql: /^COMMIT$/, code: 'SQLITE_FULL' }, call: (s) => s.delete([4, 5]), says: 'delete', error: SpoolError },
  { name: 'setAttempts, corrupt page on the second row', fault: { sql: /^UPDATE records SET attempt/, code: 'SQLITE_CORRUPT', skip: 1 }, call: (s) => s.setAttempts([{ seq: 1, attempt: 3 }, { seq: 6, attempt: 2 }]), says: 'update', error: SpoolError },
  { name: "a group's read, corrupt page", fault: { sql: /^SELECT r\.seq/, code: 'SQLITE_CORRUPT' }, call: (s) => s.readFor('a', 0, 100, 100, 1), says: 'read', error: SpoolError },
  { name: "a group's oldest released, I/O error", fault: { sql: /^UPDATE records SET owers = owers & ~\? WHERE seq IN/, code: 'SQLITE_IOERR' }, call: (s) => s.releaseOldest('a', 0, 100, 2, 1), says: 'delete', error: SpoolError, retried: { records: 2, payloadBytes: 4, freed: { records: 2, payloadBytes: 4 }, last: 3 } },
  { name: "a group's born-before released, disk full on freeing", fault: { sql: /^DELETE FROM records WHERE stream = \? AND seq > \? AND seq <= \? AND owers = 0/, code: 'SQLITE_FULL' }, call: (s) => s.releaseBornBefore('b', 0, 100, 6, 1), says: 'delete', error: SpoolError },
  { name: 'a release of seqs, busy', fault: { sql: /^UPDATE records SET owers = owers & ~\? WHERE seq = \?/, code: 'SQLITE_BUSY', skip: 1 }, call: (s) => s.release([1, 2, 3], 1), says: 'delete', error: SpoolError },
  { name: "a group's every row released, I/O error at COMMIT", fault: { sql: /^COMMIT$/, code: 'SQLITE_IOERR_WRITE' }, call: (s) => s.releaseGroups(1), says: 'delete', error: SpoolError },
  { name: "a group's delivery counts, disk full", fault: { sql: /^INSERT INTO attempts/, code: 'SQLITE_FULL' }, call: (s) => s.setGroupAttempts([{ seq: 1, bit: 2, attempt: 3 }]), says: 'update', error: SpoolError },
  { name: 'the group bits, I/O error on the second', fault: { sql: /^INSERT INTO groups/, code: 'SQLITE_IOERR_WRITE', skip: 1 }, call: (s) => s.setGroupBits(new Map([['cloud', 0], ['archive', 1]])), says: 'update', error: SpoolError },
  { name: 'summary, corrupt page', fault: { sql: /^SELECT s\.name/, code: 'SQLITE_CORRUPT' }, call: (s) => s.summary(), says: 'read', error: SpoolError },
];

describe('sqlite spool under SQLite faults', () => {
  let injector: Injector | undefined;
  afterEach(() => injector?.restore());

  for (const c of cases) {
    it(`${c.name}: ${c.error.name}, nothing changed, the retry works`, () => {
      const ref = prefilled();
      const s = prefilled();
      try {
        const before = snapshot(s.spool);
        injector = injectFault(c.fault);
        assert.throws(
          () => c.call(s.spool),
          (err: unknown) => {
            assert.ok(err instanceof c.error, `${String(err)} is a ${c.error.name}`);
            if (c.error === SpoolError) assert.ok(!(err instanceof SpoolFullError), 'only writes report SpoolFullError');
            const cause = (err as Error & { cause?: Error & { code?: string } }).cause;
            assert.equal(cause?.code, c.fault.code, 'the SQLite error is the cause');
            assert.equal((err as Error).message, `spool ${c.says} failed: ${cause?.message}`);
            return true;
          },
        );
        injector.restore();
        assert.equal(injector.fired, 1);
        assert.deepEqual(snapshot(s.spool), before, 'a failed call changed nothing');
        // The retry does what the call does on a spool that never failed.
        const result = c.call(s.spool);
        assert.deepEqual(result, c.call(ref.spool));
        if (c.retried !== undefined) assert.deepEqual(result, c.retried);
        assert.deepEqual(snapshot(s.spool), snapshot(ref.spool));
        // And the spool goes on: a write to a stream it has never seen, then a read back.
        s.spool.write([rec(20, 'c', 1), rec(21, 'c', 2)]);
        ref.spool.write([rec(20, 'c', 1), rec(21, 'c', 2)]);
        assert.deepEqual(snapshot(s.spool), snapshot(ref.spool));
      } finally {
        s.close();
        ref.close();
      }
    });
  }
});
