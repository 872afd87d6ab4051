/**
 * The SpoolPort contract (daemon/spool/spool-port.ts), one suite for every
 * implementation. An implementation comes in as a factory and nothing else:
 * every expectation is here, so a new spool passes the same tests by adding
 * one line to test/spool-contract.test.ts.
 *
 * Streams used: 'a', 'b', 'c'. Seqs are unique across streams, as the core
 * hands them out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { SpoolPort, StoredRecord } from '../../daemon/spool/spool-port.js';

export interface SpoolUnderTest {
  readonly spool: SpoolPort;
  /** Releases what the spool holds (file handles, temp dirs). */
  close(): void;
}

export type OpenSpool = () => SpoolUnderTest;

export const STREAMS = ['a', 'b', 'c'] as const;

export function rec(seq: number, stream: string, size = 10, born = seq, attempt = 0): StoredRecord {
  return { seq, stream, prio: STREAMS.indexOf(stream as 'a'), ts: 1_700_000_000_000 + seq, born, attempt, payload: Buffer.alloc(size, seq & 0xff) };
}

/** Everything a spool holds, as plain data: what "changed nothing" compares. */
export function snapshot(spool: SpoolPort): unknown {
  return {
    rows: STREAMS.map((s) => spool.read(s, 0, Number.MAX_SAFE_INTEGER, 1e9).map((r) => ({ ...r, payload: Buffer.from(r.payload).toString('hex') }))),
    summary: [...spool.summary()].sort((x, y) => x.stream.localeCompare(y.stream)),
  };
}

const seqsOf = (rows: readonly StoredRecord[]) => rows.map((r) => r.seq);

function withSpool(open: OpenSpool, body: (spool: SpoolPort) => void): void {
  const s = open();
  try {
    body(s.spool);
  } finally {
    s.close();
  }
}

export function spoolContract(name: string, open: OpenSpool): void {
  describe(`spool contract: ${name}`, () => {
    it('gives back every field of a record exactly as written', () => {
      withSpool(open, (spool) => {
        const r: StoredRecord = { seq: 42, stream: 'b', prio: 3, ts: 1_700_000_123_456, born: 98_765, attempt: 2, failures: 1, payload: Buffer.from([0, 1, 254, 255, 0]) };
        spool.write([r, rec(43, 'b')]);
        const [back, plain] = spool.read('b', 0, 100, 10);
        // A record written without `owers` is owed by group 0 (`default`) alone.
        assert.deepEqual({ ...back, payload: Buffer.from(back?.payload ?? []) }, { ...r, owers: 1 });
        assert.equal(plain?.failures, 0, 'written without failures: none');
      });
    });

    it('keeps one row for several groups and deletes it when the last releases it', () => {
      withSpool(open, (s) => {
      s.write([{ ...rec(1, 'a'), owers: 0b011 }, { ...rec(2, 'a'), owers: 0b110 }, { ...rec(3, 'a', 20), owers: 0b001 }, { ...rec(4, 'b'), owers: 0b100 }]);
      assert.deepEqual(s.readFor('a', 0, 10, 10, 0b010).map((r) => [r.seq, r.owers]), [[1, 0b011], [2, 0b110]]);
      assert.deepEqual(s.summaryFor(0b001).map((x) => [x.stream, x.records, x.payloadBytes, x.maxSeq]), [['a', 2, 30, 3]]);
      assert.deepEqual(s.release([1, 3, 999], 0b001), { records: 1, payloadBytes: 20 }, 'row 3 had only group 0: deleted; row 1 stays for group 1');
      assert.deepEqual(s.readFor('a', 0, 10, 10, 0b001), []);
      assert.deepEqual(s.releaseOldest('a', 0, 10, 5, 0b010), { records: 2, payloadBytes: 20, freed: { records: 1, payloadBytes: 10 }, last: 2 }, 'its rows 1 and 2: the range now starts after 2');
      assert.deepEqual(s.read('a', 0, 10, 10).map((r) => [r.seq, r.owers]), [[2, 0b100]]);
      assert.deepEqual(s.releaseBornBefore('a', 0, 10, 3, 0b100), { records: 1, payloadBytes: 10, freed: { records: 1, payloadBytes: 10 } });
      assert.deepEqual(s.releaseGroups(0b100), { records: 1, payloadBytes: 10, freed: { records: 1, payloadBytes: 10 } });
      assert.deepEqual(s.summary(), []);
      assert.deepEqual([...s.groupBits()], [['default', 0]]);
      s.setGroupBits(new Map([['cloud', 1], ['archive', 0]]));
      assert.deepEqual([...s.groupBits()].sort(), [['archive', 0], ['cloud', 1]]);
    });
    });

    it("a group's read, oldest and release take at most what they are asked: that group's rows, the given seqs", () => {
      withSpool(open, (s) => {
        s.write([1, 2, 3, 4, 5, 6].map((seq) => ({ ...rec(seq, 'a'), owers: seq % 2 === 1 ? 0b011 : 0b010 })));
        s.write([{ ...rec(7, 'b'), owers: 0b010 }]);
        assert.deepEqual(seqsOf(s.readFor('a', 0, 10, 2, 0b010)), [1, 2], 'at most limit');
        assert.deepEqual(seqsOf(s.readFor('a', 0, 10, 2, 0b001)), [1, 3], "only the group's rows");
        assert.deepEqual(s.releaseOldest('a', 0, 10, 2, 0b010), { records: 2, payloadBytes: 20, freed: { records: 1, payloadBytes: 10 }, last: 2 }, 'the two oldest; row 1 stays for the other group');
        assert.deepEqual(s.release([4, 7, 5], 0b010), { records: 2, payloadBytes: 20 }, 'rows 4 and 7 freed, row 5 stays for the other group');
        assert.deepEqual(s.read('a', 0, 10, 10).map((r) => [r.seq, r.owers]), [[1, 0b001], [3, 0b011], [5, 0b001], [6, 0b010]]);
        assert.deepEqual(s.read('b', 0, 10, 10), []);
      });
    });

    it('a fresh spool has room; calls on a stream it never held give nothing and change nothing', () => {
      withSpool(open, (s) => {
        assert.equal(s.hasRoom(), true);
        s.write([rec(1, 'a')]);
        assert.deepEqual(s.read('x', 0, 100, 100), []);
        assert.deepEqual(s.readFor('x', 0, 100, 100, 1), []);
        assert.deepEqual(s.deleteOldest('x', 0, 100, 5), { records: 0, payloadBytes: 0, last: 0 });
        assert.deepEqual(s.deleteBornBefore('x', 0, 100, 50), { records: 0, payloadBytes: 0 });
        assert.deepEqual(s.releaseOldest('x', 0, 100, 5, 1), { records: 0, payloadBytes: 0, freed: { records: 0, payloadBytes: 0 }, last: 0 });
        assert.deepEqual(s.releaseBornBefore('x', 0, 100, 50, 1), { records: 0, payloadBytes: 0, freed: { records: 0, payloadBytes: 0 } });
        assert.deepEqual(s.summary().map((x) => [x.stream, x.records]), [['a', 1]]);
        assert.equal(s.hasRoom(), true);
      });
    });

    it('reads one stream oldest first within afterSeq < seq <= uptoSeq, at most limit', () => {
      withSpool(open, (spool) => {
        spool.write([rec(1, 'a'), rec(2, 'b'), rec(3, 'a'), rec(5, 'a', 20), rec(7, 'b'), rec(8, 'a')]);
        assert.deepEqual(seqsOf(spool.read('a', 0, 100, 100)), [1, 3, 5, 8]);
        assert.deepEqual(seqsOf(spool.read('a', 1, 5, 100)), [3, 5], 'afterSeq excluded, uptoSeq included');
        assert.deepEqual(seqsOf(spool.read('a', 0, 100, 2)), [1, 3]);
        assert.deepEqual(seqsOf(spool.read('a', 3, 100, 1)), [5]);
        assert.deepEqual(spool.read('a', 0, 100, 0), []);
        assert.deepEqual(spool.read('a', 8, 100, 10), []);
        assert.deepEqual(spool.read('a', 5, 5, 10), []);
        assert.deepEqual(seqsOf(spool.read('b', 0, 100, 100)), [2, 7]);
        assert.deepEqual(spool.read('never-written', 0, 100, 100), []);
      });
    });

    it('keeps a stream in seq order whatever order its batches came in', () => {
      withSpool(open, (spool) => {
        spool.write([rec(10, 'a'), rec(11, 'a')]);
        spool.write([rec(4, 'a'), rec(6, 'a')]);
        spool.write([rec(12, 'a')]);
        assert.deepEqual(seqsOf(spool.read('a', 0, 100, 100)), [4, 6, 10, 11, 12]);
        assert.deepEqual(spool.summary(), [{ stream: 'a', records: 5, payloadBytes: 50, maxSeq: 12 }]);
      });
    });

    it('an empty write, delete or setAttempts changes nothing', () => {
      withSpool(open, (spool) => {
        spool.write([rec(1, 'a')]);
        const before = snapshot(spool);
        spool.write([]);
        spool.delete([]);
        spool.setAttempts([]);
        assert.deepEqual(snapshot(spool), before);
      });
    });

    it('deleteOldest removes the n oldest of one stream within the range and reports records, payload bytes and the last seq', () => {
      withSpool(open, (spool) => {
        spool.write([rec(1, 'a', 1), rec(2, 'b', 2), rec(3, 'a', 3), rec(4, 'a', 4), rec(5, 'a', 5), rec(6, 'b', 6)]);
        assert.deepEqual(spool.deleteOldest('a', 1, 100, 2), { records: 2, payloadBytes: 7, last: 4 }, 'seqs 3 and 4: afterSeq excludes 1');
        assert.deepEqual(seqsOf(spool.read('a', 0, 100, 100)), [1, 5]);
        assert.deepEqual(spool.deleteOldest('a', 0, 4, 10), { records: 1, payloadBytes: 1, last: 1 }, 'uptoSeq 4 leaves 5');
        assert.deepEqual(spool.deleteOldest('a', 0, 100, 0), { records: 0, payloadBytes: 0, last: 0 }, 'none: the last is afterSeq');
        assert.deepEqual(spool.deleteOldest('a', 3, 100, -1), { records: 0, payloadBytes: 0, last: 3 });
        assert.deepEqual(spool.deleteOldest('never-written', 7, 100, 5), { records: 0, payloadBytes: 0, last: 7 });
        assert.deepEqual(seqsOf(spool.read('b', 0, 100, 100)), [2, 6], 'other streams untouched');
        assert.deepEqual(spool.deleteOldest('a', 0, 100, 10), { records: 1, payloadBytes: 5, last: 5 });
        assert.deepEqual(spool.read('a', 0, 100, 100), []);
      });
    });

    it('deleteBornBefore removes exactly the records born strictly before the bound, within the range', () => {
      withSpool(open, (spool) => {
        spool.write([rec(1, 'a', 1, 100), rec(2, 'a', 2, 200), rec(3, 'a', 3, 300), rec(4, 'b', 4, 50), rec(5, 'a', 5, 50)]);
        assert.deepEqual(spool.deleteBornBefore('a', 1, 4, 300), { records: 1, payloadBytes: 2 }, 'seq 1 outside, 3 born at the bound, 5 past uptoSeq');
        assert.deepEqual(seqsOf(spool.read('a', 0, 100, 100)), [1, 3, 5]);
        assert.deepEqual(spool.deleteBornBefore('a', 0, 100, 101), { records: 2, payloadBytes: 6 });
        assert.deepEqual(seqsOf(spool.read('a', 0, 100, 100)), [3]);
        assert.deepEqual(seqsOf(spool.read('b', 0, 100, 100)), [4], 'other streams untouched');
        assert.deepEqual(spool.deleteBornBefore('never-written', 0, 100, 1e9), { records: 0, payloadBytes: 0 });
      });
    });

    it('delete removes the given seqs across streams, in any order, ignoring unknown and repeated ones', () => {
      withSpool(open, (spool) => {
        spool.write([rec(1, 'a'), rec(2, 'b'), rec(3, 'a'), rec(4, 'a'), rec(5, 'c'), rec(6, 'a'), rec(9, 'b')]);
        spool.delete([6, 2, 999, 3, 3, 4, 0]);
        assert.deepEqual(seqsOf(spool.read('a', 0, 100, 100)), [1]);
        assert.deepEqual(seqsOf(spool.read('b', 0, 100, 100)), [9]);
        assert.deepEqual(seqsOf(spool.read('c', 0, 100, 100)), [5]);
      });
    });

    it('write takes deletes along: the rows of the given seqs are gone and the new ones there, in one call', () => {
      withSpool(open, (spool) => {
        spool.write([rec(1, 'a'), rec(2, 'b'), rec(3, 'a', 20)]);
        spool.write([rec(4, 'a', 5)], [1, 3, 99]);
        assert.deepEqual(spool.read('a', 0, 100, 100).map((r) => [r.seq, r.payload.length]), [[4, 5]]);
        assert.deepEqual(seqsOf(spool.read('b', 0, 100, 100)), [2]);
        spool.write([], [2]);
        assert.deepEqual(spool.summary().map((s) => [s.stream, s.records]), [['a', 1]]);
      });
    });

    it("a row keeps the delivery counts of the groups written with it; a group's read falls back on the row's own", () => {
      withSpool(open, (s) => {
        s.write([{ ...rec(1, 'a'), owers: 0b011, groupAttempts: [{ bit: 0b010, attempt: 3, failures: 2 }] }, { ...rec(2, 'a', 10, 2, 4), failures: 1 }]);
        assert.deepEqual(s.readFor('a', 0, 10, 10, 0b010).map((r) => [r.seq, r.attempt, r.failures]), [[1, 3, 2]]);
        assert.deepEqual(s.readFor('a', 0, 10, 10, 0b001).map((r) => [r.seq, r.attempt, r.failures]), [[1, 0, 0], [2, 4, 1]], "group 0 had none for row 1; row 2 was written with one group: its columns");
        s.setGroupAttempts([{ seq: 2, bit: 0b001, attempt: 5, failures: 3 }]);
        assert.deepEqual(s.readFor('a', 1, 10, 10, 0b001).map((r) => [r.attempt, r.failures]), [[5, 3]], 'a group count once written is the one read');
      });
    });

    it("a delete takes the deleted rows' group counts with them and leaves every other row's", () => {
      withSpool(open, (s) => {
        const counted = (seq: number) => ({ ...rec(seq, 'a'), owers: 0b110, groupAttempts: [{ bit: 0b100, attempt: seq, failures: 1 }] });
        s.write([counted(1), counted(12), counted(15), counted(21)]);
        s.delete([1]);
        s.write([counted(30)], [21]);
        assert.deepEqual(s.readFor('a', 0, 100, 100, 0b100).map((r) => [r.seq, r.attempt, r.failures]), [[12, 12, 1], [15, 15, 1], [30, 30, 1]]);
        assert.deepEqual(s.readFor('a', 0, 100, 100, 0b010).map((r) => [r.seq, r.attempt]), [[12, 0], [15, 0], [30, 0]]);
      });
    });

    it('setAttempts updates the attempts of the given records and ignores unknown seqs', () => {
      withSpool(open, (spool) => {
        spool.write([rec(1, 'a'), rec(2, 'b'), rec(3, 'a')]);
        spool.setAttempts([{ seq: 3, attempt: 4 }, { seq: 2, attempt: 1 }, { seq: 77, attempt: 9 }]);
        assert.deepEqual(spool.read('a', 0, 100, 100).map((r) => [r.seq, r.attempt]), [[1, 0], [3, 4]]);
        assert.deepEqual(spool.read('b', 0, 100, 100).map((r) => [r.seq, r.attempt]), [[2, 1]]);
        spool.setAttempts([{ seq: 3, attempt: 5, failures: 2 }]);
        assert.deepEqual(spool.read('a', 2, 3, 1).map((r) => [r.attempt, r.failures]), [[5, 2]], 'and the failed deliveries of them (the poison count)');
      });
    });

    it('summary counts records, payload bytes and the highest seq of every non-empty stream', () => {
      withSpool(open, (spool) => {
        assert.deepEqual(spool.summary(), []);
        spool.write([rec(1, 'a', 3), rec(2, 'b', 7), rec(3, 'a', 0), rec(8, 'a', 11)]);
        const sorted = () => [...spool.summary()].sort((x, y) => x.stream.localeCompare(y.stream));
        assert.deepEqual(sorted(), [
          { stream: 'a', records: 3, payloadBytes: 14, maxSeq: 8 },
          { stream: 'b', records: 1, payloadBytes: 7, maxSeq: 2 },
        ]);
        spool.delete([2]);
        assert.deepEqual(sorted(), [{ stream: 'a', records: 3, payloadBytes: 14, maxSeq: 8 }], 'an emptied stream leaves the summary');
        spool.write([rec(9, 'b', 1)]);
        assert.deepEqual(sorted()[1], { stream: 'b', records: 1, payloadBytes: 1, maxSeq: 9 }, 'and comes back when written again');
      });
    });

    it('agrees with a list model on random operations', () => {
      const op = fc.oneof(
        fc.record({ op: fc.constant('write' as const), n: fc.integer({ min: 1, max: 5 }), stream: fc.constantFrom(...STREAMS) }),
        fc.record({ op: fc.constant('oldest' as const), stream: fc.constantFrom(...STREAMS), after: fc.nat(40), upto: fc.nat(60), n: fc.integer({ min: 0, max: 4 }) }),
        fc.record({ op: fc.constant('born' as const), stream: fc.constantFrom(...STREAMS), after: fc.nat(40), before: fc.nat(60) }),
        fc.record({ op: fc.constant('delete' as const), seqs: fc.array(fc.nat(60), { maxLength: 6 }) }),
        fc.record({ op: fc.constant('attempts' as const), seqs: fc.array(fc.nat(60), { maxLength: 3 }), attempt: fc.nat(9) }),
      );
      fc.assert(
        fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
          withSpool(open, (spool) => {
            let model: StoredRecord[] = [];
            let seq = 1;
            const inRange = (r: StoredRecord, stream: string, after: number, upto: number) => r.stream === stream && r.seq > after && r.seq <= upto;
            const removed = (gone: StoredRecord[]) => {
              model = model.filter((r) => !gone.includes(r));
              return { records: gone.length, payloadBytes: gone.reduce((a, r) => a + r.payload.length, 0) };
            };
            const removedOldest = (gone: StoredRecord[], after: number) => ({ ...removed(gone), last: gone.at(-1)?.seq ?? after });
            for (const o of ops) {
              if (o.op === 'write') {
                const batch = Array.from({ length: o.n }, () => rec(seq, o.stream, seq % 7, seq++ * 3));
                spool.write(batch);
                model.push(...batch);
              } else if (o.op === 'oldest') {
                assert.deepEqual(spool.deleteOldest(o.stream, o.after, o.upto, o.n), removedOldest(model.filter((r) => inRange(r, o.stream, o.after, o.upto)).slice(0, Math.max(0, o.n)), o.after));
              } else if (o.op === 'born') {
                assert.deepEqual(spool.deleteBornBefore(o.stream, o.after, 1e9, o.before), removed(model.filter((r) => inRange(r, o.stream, o.after, 1e9) && r.born < o.before)));
              } else if (o.op === 'delete') {
                spool.delete(o.seqs);
                removed(model.filter((r) => o.seqs.includes(r.seq)));
              } else {
                spool.setAttempts(o.seqs.map((s) => ({ seq: s, attempt: o.attempt })));
                model = model.map((r) => (o.seqs.includes(r.seq) ? { ...r, attempt: o.attempt } : r));
              }
              for (const s of STREAMS) assert.deepEqual(spool.read(s, 0, 1e9, 1e9).map((r) => [r.seq, r.attempt, r.payload.length]), model.filter((r) => r.stream === s).map((r) => [r.seq, r.attempt, r.payload.length]));
            }
          });
        }),
        { numRuns: 40 },
      );
    });
  });
}
