/**
 * Exact examples of the core's reliability rules: durable group commit,
 * a failing spool never costs records a consumer can take, poison counts
 * failures of the record (not of a stuck or gone consumer), shares by
 * credit when records trickle, configured streams always have room, stream
 * names are bounded, idle streams are forgotten, and owed records a damaged
 * spool lost are counted as `corrupt`, and a spool that refuses deletes
 * still gives its backlog back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemorySpool } from '../spool/memory-spool.js';
import { SPOOL_ROW_OVERHEAD_BYTES, SpoolError } from '../spool/spool-port.js';
import { SickSpool } from '../../test/helpers/faulty-spool.js';
import { Pipeline, type PipelineOptions } from './pipeline.js';
import { RECORD_OVERHEAD_BYTES } from './record.js';
import type { StreamSpec } from './stream.js';

const spec = (s: Partial<StreamSpec> = {}): StreamSpec => ({
  priority: 1,
  capacityRecords: 100,
  capacityBytes: 1 << 20,
  whenFull: 'spill',
  replay: 'fifo',
  backlogShare: 0.2,
  ttlMs: 0,
  ...s,
});

const pipeline = (o: Partial<PipelineOptions> = {}) =>
  new Pipeline({ memoryBudgetBytes: 1 << 20, maxStreams: 8, maxCredit: 100, ackTimeoutMs: 1_000, maxAttempts: 3, specFor: () => spec(), ...o });

const body = (n = 10) => new Uint8Array(n);
const seqsOf = (p: Pipeline, now = 0) => p.dispatch(now).flatMap((d) => d.records.map((r) => r.seq));
const totalsBalance = (p: Pipeline) => {
  const t = p.totals();
  assert.equal(t.recovered + t.ingested, t.acked + t.dropped + t.buffered + t.spooled + t.inflight, 'conservation');
};
/** The conservation identity of each group (docs/PROTOCOL.md, Groups). */
const groupsBalance = (p: Pipeline) => {
  for (const g of p.groups()) assert.equal(g.recovered + g.ingested, g.acked + g.dropped + g.backlog + g.inflight, `conservation in ${g.name}`);
};

/**
 * A memory budget of two records, filled by two of stream hi (priority 0),
 * then one of lo (priority 2, `whenFull`): what ingest answered for it.
 */
const loIntoFullBudget = (whenFull: StreamSpec['whenFull'], spool?: MemorySpool, o: Partial<PipelineOptions> = {}) => {
  const p = pipeline({
    ...o,
    memoryBudgetBytes: 2 * (10 + RECORD_OVERHEAD_BYTES),
    ...(spool === undefined ? {} : { spool }),
    specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2, whenFull: n === 'hi' ? 'spill' : whenFull }),
  });
  p.ingest('hi', body(), 0, 0);
  assert.equal(p.hasRoom('hi', 10), true, 'room for one more record and its overhead');
  p.ingest('hi', body(), 0, 0);
  assert.equal(p.hasRoom('hi', 10), false, 'the budget is full');
  assert.equal(p.hasRoom('lo', 10), false, 'a stream not seen yet asks the same budget');
  return { p, outcome: p.ingest('lo', body(), 0, 0) };
};

describe('durable group commit', () => {
  it('writes the records of a turn in one transaction, only when commit() runs', () => {
    const spool = new MemorySpool();
    let writes = 0;
    const write = spool.write.bind(spool);
    spool.write = (recs) => {
      writes++;
      write(recs);
    };
    const p = pipeline({ spool, durable: true });
    for (let i = 0; i < 20; i++) assert.equal(p.ingest('s', body(), i, i), 'accepted');
    assert.equal(writes, 0, 'nothing written before the commit');
    assert.equal(p.uncommitted, 20);
    assert.equal(p.commit(), true);
    assert.equal(writes, 1, 'one transaction for the twenty');
    assert.equal(spool.summary()[0]?.records, 20);
    assert.equal(p.uncommitted, 0);
    assert.equal(p.commit(), true, 'an empty commit succeeds');
    assert.equal(writes, 1);
  });

  it('takes the deletes of the records acked since the last commit along in its one transaction', () => {
    const spool = new MemorySpool();
    const calls: string[] = [];
    const write = spool.write.bind(spool);
    const del = spool.delete.bind(spool);
    spool.write = (recs, deletes = []) => {
      calls.push(`write ${recs.map((r) => r.seq).join(',')} delete ${deletes.join(',')}`);
      write(recs, deletes);
    };
    spool.delete = (seqs) => {
      calls.push(`delete ${seqs.join(',')}`);
      del(seqs);
    };
    const p = pipeline({ spool, durable: true });
    p.connect(1, 'c');
    p.credit(1, 10);
    for (let i = 0; i < 3; i++) p.ingest('s', body(), i, i);
    assert.equal(p.commit(), true);
    assert.deepEqual(seqsOf(p), [1, 2, 3]);
    p.ack(1, [1, 3]);
    p.ingest('s', body(), 4, 4);
    assert.equal(p.commit(), true);
    assert.deepEqual(calls, ['write 1,2,3 delete ', 'write 4 delete 1,3'], 'one call a commit: no transaction of its own for the deletes');
    assert.deepEqual(spool.read('s', 0, 10, 10).map((r) => r.seq), [2, 4]);
    p.flushSpool();
    assert.equal(calls.length, 2, 'nothing left to delete');
    totalsBalance(p);
  });

  it('skips records acked or dropped before the commit, and keeps the others in memory when the write fails', () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, durable: true });
    p.connect(1, 'c');
    p.credit(1, 2);
    for (let i = 0; i < 5; i++) p.ingest('s', body(), i, i);
    const sent = seqsOf(p);
    assert.deepEqual(sent, [1, 2]);
    p.ack(1, [1]);
    spool.full = true;
    assert.equal(p.commit(), false, 'the disk is full: not durable, the sources must not be acked');
    assert.equal(p.totals().dropped, 0, 'nothing dropped for it');
    assert.equal(p.totals().buffered, 3);
    spool.full = false;
    for (let i = 0; i < 2; i++) p.ingest('s', body(), i, i);
    assert.equal(p.commit(), true);
    assert.equal(spool.summary()[0]?.records, 2, 'only the records of the new batch: the failed batch is not retried behind its sources');
    totalsBalance(p);
  });
});

describe('durable group commit, when records spill', () => {
  it('counts every record accepted for the next commit, with one group or two, spilled or not, and the commit writes each once', () => {
    for (const groups of [undefined, () => [{ name: 'a', selects: () => true }, { name: 'b', selects: () => true }]]) {
      const spool = new MemorySpool();
      const p = pipeline({ spool, durable: true, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 2 }), ...(groups === undefined ? {} : { groups }) });
      assert.deepEqual([1, 2, 3].map(() => p.ingest('s', body(), 0, 0)), ['accepted', 'accepted', 'accepted']);
      assert.equal(p.uncommitted, 3, 'the third went the slow way (its ring full): counted too');
      assert.equal(p.commit(), true);
      assert.equal(p.uncommitted, 0);
      assert.equal(spool.summary()[0]?.records, 3, 'one row each, however many groups');
    }
  });
});

describe('a failing spool', () => {
  it('does not drop ring records a consumer can still take: the newcomer is refused as spool_full', () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, specFor: () => spec({ capacityRecords: 4 }), spillBatchRecords: 2 });
    for (let i = 0; i < 4; i++) p.ingest('s', body(), i, i);
    spool.full = true;
    assert.equal(p.ingest('s', body(), 9, 9), 'dropped');
    const s = [...p.streams()][0];
    assert.equal(s?.dropped.spool_full, 1, 'the newcomer, counted');
    assert.equal(s?.ring.length, 4, 'the four waiting records stay');
    p.connect(1, 'c');
    p.credit(1, 10);
    assert.deepEqual(seqsOf(p), [1, 2, 3, 4]);
    assert.equal(p.totals().spoolFailing, true);
    spool.full = false;
    for (let i = 0; i < 4; i++) p.ingest('s', body(), i, i);
    p.ingest('s', body(), 9, 9); // the ring is full again: this spill works
    assert.equal(p.totals().spooled, 2);
    assert.equal(p.totals().spoolFailing, false, 'a write succeeded: the spool is healthy again');
    totalsBalance(p);
  });

  it('under the memory budget, drops a less important ring record rather than refuse a more important one', () => {
    const spool = new MemorySpool();
    const cost = 10 + RECORD_OVERHEAD_BYTES;
    const p = pipeline({ spool, memoryBudgetBytes: cost * 3, specFor: (name) => spec({ priority: name === 'hi' ? 0 : 2 }) });
    for (let i = 0; i < 3; i++) p.ingest('lo', body(), i, i);
    spool.full = true;
    assert.equal(p.ingest('hi', body(), 5, 5), 'accepted');
    const lo = [...p.streams()].find((s) => s.name === 'lo');
    assert.equal(lo?.dropped.spool_full, 1);
    assert.equal(p.ingest('lo', body(), 6, 6), 'dropped', 'same priority as everything that could leave: refused');
    assert.equal(lo?.dropped.spool_full, 2);
    totalsBalance(p);
  });
});

describe('a backlog that cannot be read now', () => {
  const setup = (bPriority: number) => {
    const spool = new SickSpool();
    const p = pipeline({ spool, spillBatchRecords: 2, specFor: (name) => spec({ capacityRecords: 2, priority: name === 'a' ? 1 : bPriority }) });
    for (let i = 0; i < 4; i++) p.ingest('a', body(), i, i); // seqs 1, 2 spilled, 3, 4 in the ring: FIFO sends 1, 2 first
    p.ingest('b', body(), 5, 5); // seq 5
    assert.equal(p.totals().spooled, 2);
    spool.unreadable = true;
    p.connect(1, 'c');
    p.credit(1, 10);
    return { p, spool };
  };

  it("does not hold back a stream of the same priority: it goes on while a's rows cannot be read", () => {
    const { p, spool } = setup(1);
    assert.deepEqual(seqsOf(p), [5], 'a waits for its backlog (FIFO), b goes on');
    assert.equal(p.totals().spoolFailing, true);
    spool.unreadable = false;
    assert.deepEqual(seqsOf(p), [1, 2, 3, 4], 'readable again: the backlog, then the ring, in order');
  });

  it('does not let a less important stream overtake it', () => {
    const { p } = setup(2);
    assert.deepEqual(seqsOf(p), [], "b is less important than a's backlog, which waits");
  });
});

describe('a spool that refuses deletes (a WAL that filled the disk)', () => {
  it('still gives its backlog back, in order, and deletes the rows done with once it can', () => {
    const spool = new SickSpool();
    const p = pipeline({ spool, spillBatchRecords: 2, replayBatchRecords: 2, specFor: () => spec({ capacityRecords: 2 }) });
    for (let i = 0; i < 6; i++) p.ingest('s', body(), i, i); // 1-4 spilled, 5 and 6 in the ring
    assert.equal(p.totals().spooled, 4);
    p.connect(1, 'c');
    p.credit(1, 2);
    assert.deepEqual(seqsOf(p), [1, 2]);
    spool.refuseDeletes = true;
    p.ack(1, [1, 2]);
    p.credit(1, 2);
    assert.deepEqual(seqsOf(p), [3, 4], 'rows 1 and 2 cannot be deleted: the read passes over them');
    p.ack(1, [3, 4]);
    p.credit(1, 10);
    assert.deepEqual(seqsOf(p), [5, 6]);
    p.ack(1, [5, 6]);
    assert.equal(p.totals().acked, 6);
    assert.equal(spool.summary()[0]?.records, 4, 'the four rows wait for their delete');
    assert.equal(p.totals().spoolFailing, true);
    totalsBalance(p);
    spool.refuseDeletes = false;
    p.flushSpool();
    assert.deepEqual(spool.summary(), [], 'deleted once the spool takes deletes again');
    assert.equal(p.totals().spoolFailing, false, 'a delete went through and the disk has room: healthy again, no spill needed');
    assert.deepEqual(seqsOf(p), [], 'nothing is sent again');
  });

  /**
   * lo (priority 2, TTL 100, a ring of one): seqs 1-4 spilled and read back, 5 in the ring, 1 sent;
   * then seq 3 (born 0, the others 50) expires out of the replay tier while deletes are refused.
   * hi (priority 0) sends 6 and 7 at once, and lo's ring record goes to disk for 7; for 8 every ring
   * is empty, so lo's replay records 2 and 4 are given back: the span they join, (1, 4], reaches
   * over row 3, still on disk.
   */
  const givenBackOverAnExpiredRow = () => {
    const spool = new SickSpool();
    const p = pipeline({
      spool,
      memoryBudgetBytes: 5 * (10 + RECORD_OVERHEAD_BYTES),
      spillBatchRecords: 1,
      replayBatchRecords: 10,
      specFor: (n) => (n === 'hi' ? spec({ priority: 0 }) : spec({ priority: 2, capacityRecords: 1, ttlMs: 100 })),
    });
    for (let i = 1; i <= 5; i++) assert.equal(p.ingest('lo', body(), 0, i === 3 ? 0 : 50), 'accepted');
    p.connect(1, 'c');
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [1]);
    spool.refuseDeletes = true;
    assert.equal(p.expireTtl(110), 1, 'seq 3, from the replay tier');
    const lo = () => [...p.streams()].find((s) => s.name === 'lo');
    for (const seq of [6, 7]) {
      assert.equal(p.ingest('hi', body(), 0, 200), 'accepted');
      p.credit(1, 1);
      assert.deepEqual(seqsOf(p), [seq]);
    }
    assert.deepEqual([lo()?.buffered, lo()?.ring.length, lo()?.spooled], [2, 0, 1], 'seq 5 went to disk');
    assert.equal(p.ingest('hi', body(), 0, 200), 'accepted');
    assert.deepEqual([lo()?.buffered, lo()?.spooled, lo()?.dropped.expired], [0, 3, 1], 'seqs 2 and 4 given back');
    p.ack(1, [1, 6, 7]);
    return { p, spool };
  };

  it('passes over the row of an expired record that a span given back reaches over, while its delete waits', () => {
    const { p, spool } = givenBackOverAnExpiredRow();
    p.credit(1, 10);
    assert.deepEqual(seqsOf(p), [8, 2, 4, 5], 'seq 3 is not sent again');
    p.ack(1, [8, 2, 4, 5]);
    assert.deepEqual([p.totals().acked, p.totals().dropped], [7, 1]);
    totalsBalance(p);
    spool.refuseDeletes = false;
    p.flushSpool();
    assert.deepEqual(spool.summary(), [], 'every row deleted once the spool takes deletes');
  });

  it('leaves the TTL of rows on disk for later while the deletes before them are refused, and counts each expired record once', () => {
    const { p, spool } = givenBackOverAnExpiredRow();
    assert.equal(p.expireTtl(160), 0, 'rows 2, 4 and 5 are old enough, but row 3 waits for its delete: a range delete now would count it twice');
    spool.refuseDeletes = false;
    assert.equal(p.expireTtl(160), 3, 'rows 2, 4 and 5 (seq 3 was counted before)');
    assert.deepEqual([p.groups()[0]?.droppedBy.expired, p.totals().spooled], [3 + 1, 0]);
    totalsBalance(p);
    p.flushSpool();
    assert.deepEqual(spool.summary(), [], 'row 3 deleted, then the expired rows');
  });

  it('passes over the rows whose delete waits as they are at each read: one more between two reads, or as many as before but others after a flush', () => {
    const spool = new SickSpool();
    const p = pipeline({
      spool,
      memoryBudgetBytes: 8 * (10 + RECORD_OVERHEAD_BYTES),
      spillBatchRecords: 1,
      replayBatchRecords: 10,
      specFor: (n) => (n === 'hi' ? spec({ priority: 0 }) : n === 'pre' ? spec({ capacityRecords: 1 }) : spec({ priority: 2, capacityRecords: 1, ttlMs: 100 })),
    });
    const lane = (name: string) => [...p.streams()].find((s) => s.name === name);
    const lo = () => [lane('lo')?.buffered, lane('lo')?.spooled];
    p.connect(1, 'c');
    // pre: a read while the deletes of rows 1 and 2 wait, then every row deleted.
    for (let i = 0; i < 3; i++) p.ingest('pre', body(), 0, 200); // 1, 2 on disk, 3 in the ring
    p.credit(1, 3);
    assert.deepEqual(seqsOf(p), [1, 2, 3]);
    spool.refuseDeletes = true;
    p.ack(1, [1, 2, 3]);
    for (let i = 0; i < 2; i++) p.ingest('pre', body(), 0, 200); // 4 on disk, 5 in the ring
    p.credit(1, 2);
    assert.deepEqual(seqsOf(p), [4, 5], 'row 4 read while the deletes of rows 1 and 2 wait');
    p.ack(1, [4, 5]);
    spool.refuseDeletes = false;
    p.flushSpool();
    assert.deepEqual([spool.summary(), p.totals().spoolPendingDeletes], [[], 0]);
    // lo (priority 2, TTL 100, a ring of one): 6-11 on disk, 12 in the ring; 8 born at 0, 10 at 60, the others at 200.
    for (let seq = 6; seq <= 12; seq++) assert.equal(p.ingest('lo', body(), 0, seq === 8 ? 0 : seq === 10 ? 60 : 200), 'accepted');
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [6]);
    assert.deepEqual(lo(), [6, 0], '7-11 read back, 12 in the ring');
    spool.refuseDeletes = true;
    assert.equal(p.expireTtl(110), 1, 'seq 8, from the replay tier: its delete waits');
    // hi (priority 0) sends 13-16 at once; for 15 lo's ring goes to disk, for 16 its replay is given back: (6, 11] reaches over row 8.
    for (const seq of [13, 14, 15, 16]) {
      assert.equal(p.ingest('hi', body(), 0, 200), 'accepted');
      p.credit(1, 1);
      assert.deepEqual(seqsOf(p), [seq]);
    }
    assert.deepEqual(lo(), [0, 5], '7, 9, 10, 11 given back, 12 on disk');
    p.ack(1, [6, 13, 14, 15, 16]); // the deletes of 8 and 6 wait: two, as many as of 1 and 2 at pre's read
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [7]);
    assert.deepEqual(lo(), [3, 1], '9, 10, 11 read back, 12 still on disk: row 8 passed over, though the rows that waited at the last read were others');
    assert.equal(p.expireTtl(170), 1, 'seq 10, from the replay tier: its delete waits too');
    // hi sends 17-22; for 22 lo's replay (9, 11) is given back: (8, 11] reaches over row 10.
    for (const seq of [17, 18, 19, 20, 21, 22]) {
      assert.equal(p.ingest('hi', body(), 0, 200), 'accepted');
      p.credit(1, 1);
      assert.deepEqual(seqsOf(p), [seq]);
    }
    assert.deepEqual(lo(), [0, 3], '9 and 11 given back, 12 on disk');
    p.ack(1, [7, 17, 18, 19, 20, 21, 22]);
    p.credit(1, 10);
    assert.deepEqual(seqsOf(p), [9, 11, 12], 'row 10, whose delete came after the last read, is passed over too');
    assert.deepEqual([lane('lo')?.dropped.expired, p.totals().dropped, p.totals().spoolPendingDeletes], [2, 2, 4]);
    totalsBalance(p);
    p.ack(1, [9, 11, 12]);
    spool.refuseDeletes = false;
    p.flushSpool();
    assert.deepEqual(spool.summary(), []);
    assert.deepEqual(seqsOf(p), []);
  });

  it('reads on past a batch made only of rows whose delete waits (durable: ring records that TTL dropped, inside the span a later spill extends)', () => {
    const spool = new SickSpool();
    const p = pipeline({ spool, durable: true, spillBatchRecords: 1, replayBatchRecords: 2, specFor: () => spec({ capacityRecords: 4, ttlMs: 100 }) });
    const lane = () => [...p.streams()][0];
    for (const born of [200, 0, 0, 200]) p.ingest('s', body(), 0, born); // 2 and 3 born at 0
    assert.equal(p.commit(), true, '1-4 on disk, and in the ring');
    p.ingest('s', body(), 0, 200); // the ring is full: 1 spilled (its row is there), span (0, 1]
    assert.equal(p.commit(), true);
    spool.refuseDeletes = true;
    assert.equal(p.expireTtl(110), 2, "the ring's head 2, then 3: their deletes wait");
    for (let i = 0; i < 3; i++) p.ingest('s', body(), 0, 200); // 6, 7, then 8: 4 spilled, the span now (0, 4]
    assert.deepEqual([lane()?.spooled, lane()?.buffered, p.totals().spoolPendingDeletes], [2, 4, 2]);
    p.connect(1, 'c');
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [1], 'the read of (0, 4], two rows a batch: 1 and 2, 2 passed over');
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [4], 'then 2 and 3, both passed over, then 4');
    assert.deepEqual([lane()?.spooled, lane()?.dropped.spool_full, lane()?.dropped.expired], [0, 0, 2], 'nothing counted lost');
    p.credit(1, 10);
    assert.deepEqual(seqsOf(p), [5, 6, 7, 8]);
    totalsBalance(p);
  });

  it('with two groups, a group applies the releases it owes before TTL on disk, and waits while the spool refuses them', () => {
    const all = (name: string) => ({ name, selects: () => true });
    const setup = () => {
      const spool = new SickSpool();
      const p = pipeline({ spool, spillBatchRecords: 2, replayBatchRecords: 1, specFor: () => spec({ capacityRecords: 2, ttlMs: 100 }), groups: () => [all('a'), all('b')] });
      for (let i = 0; i < 4; i++) p.ingest('s', body(1), 0, 0); // 1, 2 on disk for both
      p.connect(1, 'a', { group: 'a' });
      p.credit(1, 1);
      assert.deepEqual(seqsOf(p), [1], 'a read row 1 back (not 2)');
      p.ack(1, [1]); // a releases row 1, which b still owes
      return { spool, p };
    };
    const expired = (p: Pipeline) => p.groups().map((g) => [g.name, g.droppedBy.expired]);

    const { p } = setup();
    assert.equal(p.expireTtl(120), 7, "a: row 2 and the ring's 3, 4; b: rows 1, 2 and 3, 4");
    assert.deepEqual(expired(p), [['a', 3], ['b', 4]]);
    groupsBalance(p);

    const sick = setup();
    sick.spool.refuseRowReleases = true;
    assert.equal(sick.p.expireTtl(120), 6, "a's row 2 waits for its release of row 1");
    assert.deepEqual([expired(sick.p), sick.p.totals().spoolFailures, sick.p.totals().spoolFailing], [[['a', 2], ['b', 4]], 1, true]);
    sick.spool.refuseRowReleases = false;
    assert.equal(sick.p.expireTtl(120), 1);
    assert.deepEqual([expired(sick.p), sick.p.totals().spoolFailing], [[['a', 3], ['b', 4]], false]);
    groupsBalance(sick.p);
    assert.deepEqual(sick.spool.summary(), []);
  });

  it('with two groups, a group whose releases the spool refuses gives none of its rows to a full quota', () => {
    const all = (name: string) => ({ name, selects: () => true });
    const spool = new SickSpool();
    const p = pipeline({ spool, spoolQuotaBytes: 2 * (1 + SPOOL_ROW_OVERHEAD_BYTES), spillBatchRecords: 2, replayBatchRecords: 1, specFor: () => spec({ capacityRecords: 2 }), groups: () => [all('a'), all('b')] });
    for (let i = 0; i < 4; i++) p.ingest('s', body(1), 0, 0); // 1, 2 on disk for both: the quota is full
    p.connect(1, 'a', { group: 'a' });
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [1]);
    p.ack(1, [1]); // a's release of row 1 waits for the next flush
    spool.refuseRowReleases = true;
    assert.equal(p.ingest('s', body(1), 0, 0), 'dropped', '3, 4 cannot go to disk');
    const a = p.groups().find((g) => g.name === 'a');
    assert.deepEqual([a?.droppedBy.spool_full, a?.backlog], [1, 3], 'a keeps its row 2 and its ring (3, 4): only the newcomer is dropped for it');
    assert.equal(p.totals().spoolFailing, true);
    groupsBalance(p);
  });

  it('stays failing after a delete while the disk would still refuse a write (below the reserve)', () => {
    const spool = new SickSpool();
    spool.room = false;
    const p = pipeline({ spool, spillBatchRecords: 2, specFor: () => spec({ capacityRecords: 2 }) });
    for (let i = 0; i < 4; i++) p.ingest('s', body(), i, i); // 1, 2 spilled
    spool.full = true;
    p.ingest('s', body(), 5, 5); // the spill of 3, 4 fails
    assert.equal(p.totals().spoolFailing, true);
    spool.full = false; // deletes go through again, writes would not (hasRoom false)
    p.connect(1, 'c');
    p.credit(1, 2);
    assert.deepEqual(seqsOf(p), [1, 2]);
    p.ack(1, [1, 2]);
    p.flushSpool();
    assert.deepEqual(spool.summary(), [], 'the delete went through');
    assert.equal(p.totals().spoolFailing, true, 'no room for a write: still failing');
    totalsBalance(p);
  });
});

describe('taken-back records', () => {
  it('go out again in seq order, whatever order they came back in, ahead of newer ones', () => {
    const p = pipeline({ ackTimeoutMs: 100 });
    p.connect(1, 'c');
    for (let i = 0; i < 7; i++) p.ingest('s', body(), i, i);
    p.credit(1, 5);
    assert.deepEqual(seqsOf(p), [1, 2, 3, 4, 5]);
    for (const seq of [4, 2, 5, 1, 3]) p.nack(1, [seq]);
    p.credit(1, 7);
    assert.deepEqual(seqsOf(p), [1, 2, 3, 4, 5, 6, 7]);
    p.credit(1, 2);
    p.nack(1, [7, 3]);
    assert.deepEqual(seqsOf(p), [3, 7], 'into an empty queue, and behind nothing');
    totalsBalance(p);
  });
});

describe('poison', () => {
  it('drops a record after exactly maxAttempts nacks', () => {
    const p = pipeline({ maxAttempts: 3 });
    p.connect(1, 'c');
    p.ingest('s', body(), 0, 0);
    for (let attempt = 1; attempt <= 3; attempt++) {
      p.credit(1, 1);
      const d = p.dispatch(0);
      assert.equal(d[0]?.records[0]?.attempt, attempt);
      p.nack(1, [1]);
      const s = [...p.streams()][0];
      assert.equal(s?.dropped.poison, attempt === 3 ? 1 : 0, `after nack ${attempt}`);
    }
    totalsBalance(p);
  });

  /** Record 1 sent to `id` (after a grant of 1) and timed out: its delivery number. */
  const timeOut = (p: Pipeline, id: number, now: number): number | undefined => {
    p.credit(id, 1);
    const attempt = p.dispatch(now)[0]?.records[0]?.attempt;
    assert.equal(p.expire(now + 200), 1);
    return attempt;
  };
  const poison = (p: Pipeline) => [...p.streams()][0]?.dropped.poison;

  it('does not count ack timeouts at a stuck consumer (send buffer full), nor its leaving, however often', () => {
    const p = pipeline({ maxAttempts: 2, ackTimeoutMs: 100 });
    p.connect(1, 'stuck');
    p.ingest('s', body(), 0, 0);
    let now = 0;
    for (let round = 1; round <= 5; round++) {
      p.credit(1, 1);
      assert.deepEqual(seqsOf(p, now), [1]);
      p.setWritable(1, false);
      now += 200;
      assert.equal(p.expire(now), 1);
      p.setWritable(1, true);
    }
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p, now), [1]);
    p.setWritable(1, false);
    assert.equal(p.disconnect(1), 1);
    assert.equal(poison(p), 0, 'six deliveries, none failed because of the record');
    totalsBalance(p);
  });

  it('does not count ack timeouts at a consumer that answers nothing, nor its leaving, however often: it is not reading', () => {
    const p = pipeline({ maxAttempts: 2, ackTimeoutMs: 100 });
    p.connect(1, 'silent');
    p.ingest('s', body(), 0, 0);
    for (let round = 1; round <= 5; round++) assert.equal(timeOut(p, 1, round * 1_000), round, 'attempt still counts every delivery');
    p.credit(1, 1);
    p.dispatch(10_000);
    p.disconnect(1);
    assert.equal(poison(p), 0);
    totalsBalance(p);
  });

  it('counts ack timeouts at a consumer that answers other records sent with it: it reads, and not this one', () => {
    const p = pipeline({ maxAttempts: 2, ackTimeoutMs: 100 });
    p.connect(1, 'reader');
    p.ingest('s', body(), 0, 0);
    for (let round = 1; round <= 2; round++) {
      const now = round * 1_000;
      p.ingest('s', body(), now, now);
      p.credit(1, 2);
      const sent = seqsOf(p, now);
      assert.deepEqual(sent, [1, round + 1]);
      p.ack(1, [round + 1]);
      assert.equal(p.expire(now + 200), 1);
      assert.equal(poison(p), round === 2 ? 1 : 0, `after timeout ${round}`);
    }
    totalsBalance(p);
  });

  /** Record 1 sent to a new consumer `id`, which then leaves (it died while reading). */
  const dieOn = (p: Pipeline, id: number, now: number): void => {
    p.connect(id, `c${id}`);
    p.credit(id, 1);
    assert.deepEqual(seqsOf(p, now), [1]);
    assert.equal(p.disconnect(id), 1);
  };

  it('counts a record whose consumers leave holding it, one after another: it kills them wherever it goes', () => {
    const p = pipeline({ maxAttempts: 2, ackTimeoutMs: 100 });
    p.ingest('s', body(), 0, 0);
    dieOn(p, 1, 0); // the first: forgiven (the consumer may have died of something else)
    dieOn(p, 2, 1_000); // the second: counted (1)
    assert.equal(poison(p), 0);
    p.connect(3, 'c3');
    timeOut(p, 3, 2_000); // unread at a third, after one that died of it: counted (2 = maxAttempts)
    assert.equal(poison(p), 1);
    totalsBalance(p);
  });

  it('does not count a record unread at consumers that stay connected, however many (their own downstream is down)', () => {
    const p = pipeline({ maxAttempts: 2, ackTimeoutMs: 100 });
    p.ingest('s', body(), 0, 0);
    p.connect(1, 'a');
    p.connect(2, 'b');
    for (let round = 0; round < 6; round++) timeOut(p, 1 + (round % 2), round * 1_000);
    p.setWritable(1, false);
    p.credit(1, 1);
    p.setWritable(1, true);
    assert.equal(poison(p), 0, 'six timeouts at two silent consumers, alternating');
    p.credit(1, 1);
    p.dispatch(10_000);
    p.setWritable(1, false);
    p.disconnect(1); // closed as stuck (its send buffer full): not a death
    assert.equal(poison(p), 0);
    totalsBalance(p);
  });

  it('forgets at a spill which consumer forgave a record, but not that one did: the next consumer to die of it counts', () => {
    const spool = new MemorySpool();
    const p = pipeline({ maxAttempts: 1, ackTimeoutMs: 100, spool, memoryBudgetBytes: 10 + RECORD_OVERHEAD_BYTES });
    p.ingest('s', body(), 0, 0);
    p.connect(1, 'a');
    timeOut(p, 1, 0); // forgiven at a; record 1 waits in memory as a taken-back record
    p.disconnect(1);
    p.ingest('s', body(), 1, 1); // the budget holds one: record 1 goes to disk for it
    assert.deepEqual(spool.summary().map((x) => x.records), [1]);
    assert.deepEqual([...p.bufferedRecords()].map((r) => r.seq), [2], 'record 1 is on disk only');
    dieOn(p, 2, 1_000);
    assert.equal(poison(p), 1, 'read back and died of at another consumer: counted (maxAttempts 1)');
    totalsBalance(p);
  });

  it('sends nothing to a consumer that is not writable, and everything to the others', () => {
    const p = pipeline();
    p.connect(1, 'stuck');
    p.connect(2, 'good');
    p.credit(1, 50);
    p.credit(2, 50);
    p.setWritable(1, false);
    for (let i = 0; i < 30; i++) p.ingest('s', body(), i, i);
    const d = p.dispatch(0);
    assert.deepEqual(d.map((x) => [x.consumer.id, x.records.length]), [[2, 30]]);
  });
});

describe('shares by credit', () => {
  /** Records one at a time to consumers that ack and grant back what they got: who got each, in order. */
  const receivers = (grants: readonly number[], records: number): string => {
    const p = pipeline({ maxCredit: 10 });
    grants.forEach((g, i) => {
      p.connect(i + 1, `c${i}`);
      p.credit(i + 1, g);
    });
    let order = '';
    for (let i = 0; i < records; i++) {
      p.ingest('s', body(), i, i);
      for (const d of p.dispatch(i)) {
        order += 'ABCD'[d.consumer.id - 1]?.repeat(d.records.length) ?? '?';
        p.ack(d.consumer.id, d.records.map((r) => r.seq));
        p.credit(d.consumer.id, d.records.length);
      }
    }
    return order;
  };

  it('one record at a time, credit 2 and 1: the one owed the most gets each, in a fixed cycle', () => {
    // Owed before each record (the fraction carried): A 2/3, B 1/3 -> A; A 1/3, B 2/3 -> B; A 1, B 0 -> A.
    assert.equal(receivers([2, 1], 9), 'ABAABAABA');
  });

  it('one record at a time, equal credit: they take turns, a tie going to the consumer that connected first', () => {
    // Halves and quarters are exact in binary, so these ties are ties (thirds are not: which of
    // three equal consumers is owed the most then rests on a rounding, as fair over time).
    assert.equal(receivers([1, 1], 6), 'ABABAB');
    assert.equal(receivers([2, 2, 2, 2], 8), 'ABCDABCD');
  });

  it('fewer waiting than the credit, all at once: each gets the whole part of its share, what is left the largest fraction', () => {
    /** `waiting` records, then one dispatch to consumers granted `grants`: how many each got. */
    const split = (grants: readonly number[], waiting: number): number[] => {
      const p = pipeline();
      for (let i = 0; i < waiting; i++) p.ingest('s', body(), i, i);
      grants.forEach((g, i) => {
        p.connect(i + 1, `c${i}`);
        p.credit(i + 1, g);
      });
      return p.dispatch(0).map((d) => d.records.length);
    };
    // 4 records to credits 2 and 5: shares 8/7 and 20/7; whole parts 1 and 2, the fourth to the larger fraction (6/7).
    assert.deepEqual(split([2, 5], 4), [1, 3]);
    // 5 to credits 4 and 4: 2.5 each; the fifth to the first of the tie.
    assert.deepEqual(split([4, 4], 5), [3, 2]);
  });

  it('with more waiting than all the credit, one dispatch fills every consumer to its credit', () => {
    const p = pipeline();
    p.connect(1, 'a');
    p.connect(2, 'b');
    p.credit(1, 5);
    p.credit(2, 7);
    for (let i = 0; i < 20; i++) p.ingest('s', body(), i, i);
    assert.deepEqual(
      p.dispatch(0).map((d) => [d.consumer.id, d.records.length]),
      [
        [1, 5],
        [2, 7],
      ],
    );
    assert.equal(p.totals().buffered, 8);
  });

  it('serves a small grant its share when records trickle in one at a time', () => {
    const p = pipeline({ maxCredit: 10_000 });
    p.connect(1, 'big');
    p.connect(2, 'small');
    p.credit(1, 9_000);
    p.credit(2, 1_000);
    const got = new Map<number, number>([
      [1, 0],
      [2, 0],
    ]);
    for (let i = 0; i < 1_000; i++) {
      p.ingest('s', body(), i, i);
      for (const d of p.dispatch(0)) {
        got.set(d.consumer.id, (got.get(d.consumer.id) ?? 0) + d.records.length);
        p.ack(d.consumer.id, d.records.map((r) => r.seq));
        p.credit(d.consumer.id, d.records.length);
      }
    }
    assert.equal((got.get(1) ?? 0) + (got.get(2) ?? 0), 1_000);
    assert.equal(got.get(2), 100, 'one record in ten, as one credit in ten');
  });
});

describe('round robin', () => {
  it('streams of one priority take turns record by record, also past the point where the queue is compacted (1,024 turns)', () => {
    const p = pipeline({ specFor: () => spec({ capacityRecords: 2_000 }) });
    for (let i = 0; i < 1_100; i++) for (const name of ['a', 'b']) p.ingest(name, body(1), 0, 0);
    p.connect(1, 'c');
    const names: string[] = [];
    for (let i = 0; i < 2_200; i++) {
      p.credit(1, 1);
      for (const d of p.dispatch(0)) {
        for (const r of d.records) names.push(r.stream.name);
        p.ack(1, d.records.map((r) => r.seq));
      }
    }
    assert.equal(names.length, 2_200);
    assert.deepEqual(names.filter((n, i) => n !== (i % 2 === 0 ? 'a' : 'b')), [], 'a, b, a, b, ... to the end');
  });
});

describe('streams', () => {
  it("a block stream's records never make room for a newcomer as important: it is blocked; a more important one takes their room", () => {
    const cost = 10 + RECORD_OVERHEAD_BYTES;
    const policy: Record<string, StreamSpec['whenFull']> = { b: 'block', o: 'drop-oldest', alarm: 'drop-oldest' };
    const p = pipeline({ memoryBudgetBytes: 4 * cost, specFor: (n) => spec({ priority: n === 'alarm' ? 0 : 1, whenFull: policy[n] }) });
    const outcomes = ['b', 'b', 'b', 'o', 'b', 'o', 'o'].map((n) => p.ingest(n, body(), 0, 0));
    // b 1-3, o 4; b's next is blocked (the budget is full: b keeps its records, and o's 4 is younger
    // than b's, so b's oldest would have gone); o's next two each drop o's own oldest.
    assert.deepEqual(outcomes, ['accepted', 'accepted', 'accepted', 'accepted', 'blocked', 'accepted', 'accepted']);
    const state = () => [...p.streams()].map((x) => [x.name, x.buffered, x.dropped.overflow]);
    assert.deepEqual(state(), [['b', 3, 0], ['o', 1, 2]]);
    assert.equal(p.hasRoom('b', 10), false, 'its source stays held back');
    assert.equal(p.ingest('alarm', body(), 0, 0), 'accepted');
    assert.deepEqual(state(), [['b', 2, 1], ['o', 1, 2], ['alarm', 1, 0]], 'the least important, oldest went for the more important record: b 1 (older than o 6)');
    p.connect(1, 'c');
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [7], 'the alarm first (the blocked record spent no seq)');
    p.ack(1, [7]);
    assert.equal(p.hasRoom('b', 10), true, 'an ack gives the room back: the source is woken');
    assert.equal(p.ingest('b', body(), 0, 0), 'accepted');
    totalsBalance(p);
  });

  it('configured streams always have room, outside maxStreams', () => {
    const p = pipeline({ maxStreams: 2, configuredStream: (n) => n === 'sensors/alarm' });
    assert.equal(p.ingest('a', body(), 0, 0), 'accepted');
    assert.equal(p.ingest('b', body(), 0, 0), 'accepted');
    assert.equal(p.ingest('c', body(), 0, 0), 'rejected');
    assert.equal(p.rejection, 'too_many_streams');
    assert.equal(p.hasRoom('sensors/alarm', 10), true);
    assert.equal(p.ingest('sensors/alarm', body(), 0, 0), 'accepted');
  });

  it('rejects a stream name longer than maxStreamNameBytes (in UTF-8 bytes)', () => {
    const p = pipeline({ maxStreamNameBytes: 8 });
    assert.equal(p.ingest('12345678', body(), 0, 0), 'accepted');
    assert.equal(p.ingest('ééééé', body(), 0, 0), 'rejected', '10 bytes in UTF-8');
    assert.equal(p.rejection, 'stream_name_too_long');
    assert.equal(p.totals().ingested, 1);
  });

  it('whenFull block: a full ring refuses the record (blocked) without spending a seq or dropping, and takes again once there is room', () => {
    const p = pipeline({ specFor: () => spec({ capacityRecords: 2, whenFull: 'block' }) });
    p.connect(1, 'c');
    assert.deepEqual([p.ingest('s', body(), 0, 0), p.ingest('s', body(), 0, 0), p.ingest('s', body(), 0, 0)], ['accepted', 'accepted', 'blocked']);
    assert.equal(p.nextSeq, 3, 'the refused record spent no seq');
    assert.deepEqual([p.totals().ingested, p.totals().dropped, p.totals().buffered], [2, 0, 2]);
    assert.equal(p.hasRoom('s', 10), false, 'what a block source asks before it reads on');
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [1]);
    assert.equal(p.hasRoom('s', 10), true);
    assert.equal(p.ingest('s', body(), 0, 0), 'accepted', 'room again: the ring holds 2 waiting records');
    assert.deepEqual([p.totals().ingested, p.totals().buffered, p.totals().inflight], [3, 2, 1]);
  });

  it('a record larger than its ring can ever hold is dropped as overflow, whatever the policy', () => {
    for (const whenFull of ['spill', 'drop-oldest', 'drop-newest'] as const) {
      const p = pipeline({ spool: new MemorySpool(), specFor: () => spec({ capacityBytes: 50, whenFull }) });
      assert.equal(p.ingest('s', body(51), 0, 0), 'dropped', whenFull);
      assert.deepEqual([...p.streams()].map((st) => [st.dropped.overflow, st.dropped.spool_full]), [[1, 0]], whenFull);
      assert.equal(p.ingest('s', body(50), 0, 0), 'accepted', `${whenFull}: one that fits still does`);
    }
  });

  it('a full ring: drop-newest drops the new record, drop-oldest the oldest, spill moves the oldest to disk', () => {
    const after = (whenFull: StreamSpec['whenFull'], spool: MemorySpool | null = new MemorySpool()) => {
      const p = pipeline({ ...(spool === null ? {} : { spool }), specFor: () => spec({ capacityRecords: 2, whenFull }), spillBatchRecords: 1 });
      const outcomes = [1, 2, 3].map(() => p.ingest('s', body(), 0, 0));
      const s = [...p.streams()][0];
      return { outcomes, memory: [...p.bufferedRecords()].map((r) => r.seq), spooled: p.totals().spooled, overflow: s?.dropped.overflow };
    };
    assert.deepEqual(after('drop-newest'), { outcomes: ['accepted', 'accepted', 'dropped'], memory: [1, 2], spooled: 0, overflow: 1 });
    assert.deepEqual(after('drop-oldest'), { outcomes: ['accepted', 'accepted', 'accepted'], memory: [2, 3], spooled: 0, overflow: 1 });
    assert.deepEqual(after('spill'), { outcomes: ['accepted', 'accepted', 'accepted'], memory: [2, 3], spooled: 1, overflow: 0 });
    assert.deepEqual(after('spill', null), { outcomes: ['accepted', 'accepted', 'accepted'], memory: [2, 3], spooled: 0, overflow: 1 }, 'spill without a spool: the oldest is dropped');
  });

  it('the memory budget full of more important records: a less important one blocks, goes straight to disk, or is dropped, by its policy', () => {
    const after = (whenFull: StreamSpec['whenFull'], spool?: MemorySpool) => {
      const { p, outcome } = loIntoFullBudget(whenFull, spool);
      const lo = [...p.streams()].find((st) => st.name === 'lo');
      return [outcome, p.totals().ingested, p.totals().spooled, lo?.dropped.overflow ?? 0, lo?.dropped.spool_full ?? 0, p.nextSeq];
    };
    assert.deepEqual(after('block', new MemorySpool()), ['blocked', 2, 0, 0, 0, 3], 'block: refused, no seq spent');
    assert.deepEqual(after('spill', new MemorySpool()), ['accepted', 3, 1, 0, 0, 4], 'spill: straight to disk');
    assert.deepEqual(after('spill'), ['dropped', 3, 0, 1, 0, 4], 'spill without a spool: overflow');
    assert.deepEqual(after('spill', new SickSpool({ refuseWrites: true })), ['dropped', 3, 0, 0, 1, 4], 'spill to a spool that refuses: spool_full');
    assert.deepEqual(after('drop-newest', new MemorySpool()), ['dropped', 3, 0, 1, 0, 4], 'drop-newest: overflow');
  });

  it('one group with a backlog bound sheds by it; memory mode leaves nothing uncommitted', () => {
    const p = pipeline({ groups: () => [{ name: 'cloud', selects: () => true, maxBacklogRecords: 2 }] });
    for (let i = 0; i < 3; i++) assert.equal(p.ingest('s', body(), 0, 0), 'accepted');
    assert.deepEqual(p.groups().map((g) => [g.backlog, g.droppedBy.lagging]), [[2, 1]]);
    assert.equal(p.uncommitted, 0);
  });

  it('the same with two groups (the shared ingest path): block, the full-ring policies and the full budget, each group counting its drops', () => {
    const two = { groups: () => [{ name: 'a', selects: () => true }, { name: 'b', selects: () => true }] };
    const drops = (p: Pipeline) => p.groups().map((g) => [g.droppedBy.overflow, g.droppedBy.spool_full]);
    const ring = (whenFull: StreamSpec['whenFull']) => {
      const p = pipeline({ ...two, spool: new MemorySpool(), specFor: () => spec({ capacityRecords: 2, whenFull }), spillBatchRecords: 1 });
      const outcomes = [1, 2, 3].map(() => p.ingest('s', body(), 0, 0));
      return { outcomes, nextSeq: p.nextSeq, spooled: p.totals().spooled, drops: drops(p) };
    };
    assert.deepEqual(ring('block'), { outcomes: ['accepted', 'accepted', 'blocked'], nextSeq: 3, spooled: 0, drops: [[0, 0], [0, 0]] });
    const oneFull = pipeline({ ...two, specFor: () => spec({ capacityRecords: 2, whenFull: 'block' }) });
    oneFull.ingest('s', body(), 0, 0);
    oneFull.ingest('s', body(), 0, 0);
    oneFull.connect(1, 'c', { group: 'a' });
    oneFull.credit(1, 2);
    assert.deepEqual(seqsOf(oneFull), [1, 2]);
    assert.equal(oneFull.hasRoom('s', 10), false, "a's ring has room, b's is full");
    assert.equal(oneFull.ingest('s', body(), 0, 0), 'blocked', "a's ring has room, b's is full: blocked for both");
    assert.deepEqual(ring('drop-newest'), { outcomes: ['accepted', 'accepted', 'dropped'], nextSeq: 4, spooled: 0, drops: [[1, 0], [1, 0]] });
    assert.deepEqual(ring('drop-oldest'), { outcomes: ['accepted', 'accepted', 'accepted'], nextSeq: 4, spooled: 0, drops: [[1, 0], [1, 0]] });
    assert.deepEqual(ring('spill'), { outcomes: ['accepted', 'accepted', 'accepted'], nextSeq: 4, spooled: 1, drops: [[0, 0], [0, 0]] });

    const budget = (whenFull: StreamSpec['whenFull'], spool?: MemorySpool) => {
      const { p, outcome } = loIntoFullBudget(whenFull, spool, two);
      return { outcome, nextSeq: p.nextSeq, spooled: p.totals().spooled, drops: drops(p) };
    };
    assert.deepEqual(budget('block', new MemorySpool()), { outcome: 'blocked', nextSeq: 3, spooled: 0, drops: [[0, 0], [0, 0]] });
    assert.deepEqual(budget('spill', new MemorySpool()), { outcome: 'accepted', nextSeq: 4, spooled: 1, drops: [[0, 0], [0, 0]] });
    assert.deepEqual(budget('spill'), { outcome: 'dropped', nextSeq: 4, spooled: 0, drops: [[1, 0], [1, 0]] });
    assert.deepEqual(budget('spill', new SickSpool({ refuseWrites: true })), { outcome: 'dropped', nextSeq: 4, spooled: 0, drops: [[0, 1], [0, 1]] });
    assert.deepEqual(budget('drop-newest', new MemorySpool()), { outcome: 'dropped', nextSeq: 4, spooled: 0, drops: [[1, 0], [1, 0]] });
  });

  it('a reserved share keeps memory for its priority: less important records use only the rest, until it is taken', () => {
    const c = 10 + RECORD_OVERHEAD_BYTES;
    const p = pipeline({ memoryBudgetBytes: 4 * c, reservedShares: { 0: 0.5 }, specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2, whenFull: 'drop-oldest' }) });
    const held = () => [...p.bufferedRecords()].map((r) => `${r.stream.name}${r.seq}`);
    for (let i = 0; i < 3; i++) assert.equal(p.ingest('lo', body(), 0, 0), 'accepted');
    assert.deepEqual(held(), ['lo2', 'lo3'], 'lo may use half: its oldest made room for the third');
    p.ingest('hi', body(), 0, 0);
    p.ingest('hi', body(), 0, 0);
    assert.deepEqual(held().sort(), ['hi4', 'hi5', 'lo2', 'lo3'], 'the reserved half takes hi without evicting lo');
    p.connect(1, 'c');
    p.credit(1, 1);
    const [first] = seqsOf(p);
    p.ack(1, [first as number]);
    assert.equal(first, 4, 'hi first');
    assert.equal(p.ingest('lo', body(), 0, 0), 'accepted');
    assert.deepEqual(held().sort(), ['hi5', 'lo3', 'lo6'], "hi's freed room is still reserved for hi: lo drops its oldest again");
    assert.equal([...p.streams()].find((st) => st.name === 'lo')?.dropped.overflow, 2);
  });

  it('a record that costs more than the whole memory budget is dropped as overflow; one that costs exactly the budget is taken', () => {
    const budget = 100 + RECORD_OVERHEAD_BYTES;
    const p = pipeline({ memoryBudgetBytes: budget, specFor: () => spec({ whenFull: 'drop-oldest' }) });
    assert.equal(p.ingest('s', body(101), 0, 0), 'dropped');
    assert.equal(p.ingest('s', body(100), 0, 0), 'accepted');
    assert.deepEqual([p.totals().heldBytes, [...p.streams()][0]?.dropped.overflow], [budget, 1]);
  });

  it('forgets idle streams that hold nothing, keeps their counts, and frees their slot', () => {
    const p = pipeline({ maxStreams: 2, configuredStream: (n) => n === 'cfg', specFor: (n) => spec(n === 'b' ? { capacityRecords: 1, whenFull: 'drop-oldest' } : {}) });
    p.connect(1, 'c');
    p.ingest('a', body(), 0, 1_000);
    p.ingest('b', body(), 0, 1_000);
    p.ingest('b', body(), 0, 1_000); // b holds one: its first is dropped (overflow)
    p.ingest('cfg', body(), 0, 1_000);
    assert.deepEqual(p.forgetIdle(5_000, 1_000), [], 'records still wait');
    p.credit(1, 3);
    const sent = seqsOf(p);
    assert.deepEqual(p.forgetIdle(5_000, 1_000), [], 'records still in flight');
    p.nack(1, [sent[0] as number]);
    p.credit(1, 1);
    const again = seqsOf(p);
    p.ack(1, [...sent.slice(1), ...again]);
    assert.deepEqual(p.forgetIdle(1_500, 1_000), [], 'not idle long enough');
    assert.deepEqual(p.forgetIdle(2_000, 1_000).sort(), ['a', 'b'], 'the configured stream stays');
    assert.equal(p.forgottenStreams, 2);
    const f = p.forgotten()[0];
    assert.deepEqual([f?.ingested, f?.acked, f?.redelivered, f?.dropped.overflow], [3, 2, 1, 1], "the forgotten streams' counts, summed");
    assert.equal(p.ingest('c', body(), 0, 3_000), 'accepted', 'a new stream has room again');
    const acked = [...p.streams(), ...p.forgotten()].reduce((a, s) => a + s.acked, 0);
    assert.equal(acked, p.totals().acked, 'counts by stream still add up');
  });
});

describe('a damaged spool', () => {
  it('counts owed records it could not give back as recovered and dropped (corrupt)', () => {
    const spool = new MemorySpool();
    spool.write([{ seq: 7, stream: 's', prio: 1, ts: 0, born: 0, attempt: 0, payload: body() }]);
    const p = pipeline({ spool });
    assert.equal(p.recover([{ stream: 's', records: 5 }]), 1);
    const t = p.totals();
    assert.equal(t.recovered, 6);
    assert.equal(t.dropped, 5);
    assert.equal([...p.streams()][0]?.dropped.corrupt, 5);
    assert.deepEqual([[...p.streams()][0]?.spooled, [...p.streams()][0]?.spooledBytes, p.totals().spoolBytes], [1, 10, 10 + SPOOL_ROW_OVERHEAD_BYTES], 'the row it gave back, counted once');
    assert.equal(p.nextSeq, 8, 'seqs go on above the highest recovered');
    totalsBalance(p);
  });
});

describe('rows missing from the spool (deleted outside, a damaged page)', () => {
  it('are counted lost (spool_full) when the backlog is read, their quota freed, and the stream goes on', () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, spillBatchRecords: 2, specFor: () => spec({ capacityRecords: 2 }) });
    for (let i = 0; i < 4; i++) p.ingest('s', body(), 0, 0); // 1, 2 on disk
    assert.deepEqual([p.totals().spooled, p.totals().spoolBytes], [2, 2 * (10 + SPOOL_ROW_OVERHEAD_BYTES)]);
    spool.delete([1, 2]);
    p.connect(1, 'c');
    p.credit(1, 10);
    assert.deepEqual(seqsOf(p), [3, 4]);
    const [s] = [...p.streams()];
    assert.deepEqual([s?.spooled, s?.spooledBytes, s?.dropped.spool_full], [0, 0, 2]);
    assert.deepEqual([p.totals().spooled, p.totals().dropped, p.totals().spoolBytes], [0, 2, 0]);
    totalsBalance(p);
  });

  it('are counted lost when a full quota looks for rows to give way, and the write goes on in the room they held', () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, spoolQuotaBytes: 2 * (1 + SPOOL_ROW_OVERHEAD_BYTES), spillBatchRecords: 2, specFor: () => spec({ capacityRecords: 2 }) });
    for (let i = 0; i < 4; i++) p.ingest('s', body(1), 0, 0); // 1, 2 on disk: the quota is full
    spool.delete([1, 2]);
    assert.equal(p.ingest('s', body(1), 0, 0), 'accepted'); // 3, 4 must go to disk
    const [s] = [...p.streams()];
    assert.deepEqual([s?.spooled, s?.dropped.spool_full, p.totals().spoolBytes], [2, 2, 2 * (1 + SPOOL_ROW_OVERHEAD_BYTES)]);
    assert.deepEqual(spool.summary(), [{ stream: 's', records: 2, payloadBytes: 2, maxSeq: 4 }]);
    totalsBalance(p);
  });
});

describe('the spool quota bounds the disk, WAL included', () => {
  /** A memory spool that reports a disk use as SQLite would: rows as estimated, and a WAL the test sets. */
  class MeasuredSpool extends MemorySpool {
    wal = 0;
    diskUse() {
      const live = this.sizeOnDisk();
      return { live, file: live, wal: this.wal, pageSize: 4_096 };
    }
  }
  const QUOTA = 100_000;
  /** Where SQLite's pages are counted: room for the WAL's share (50,000 bytes, twice) and a write's frames and its delete's (16 pages each). */
  const WAL_QUOTA = 400_000;
  const PAGES_16 = 16 * (4_096 + 24);
  const setup = () => {
    const spool = new MeasuredSpool();
    const p = pipeline({ spool, spoolQuotaBytes: WAL_QUOTA, spillBatchRecords: 10, specFor: () => spec({ capacityRecords: 10 }) });
    return { spool, p };
  };
  const row = 1_000 + SPOOL_ROW_OVERHEAD_BYTES;

  it('with two groups, a lane whose spill the WAL refuses counts its drop as refused for the WAL, though the other group takes the record', () => {
    const spool = new MeasuredSpool();
    const p = pipeline({ spool, spoolQuotaBytes: WAL_QUOTA, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }), groups: () => [{ name: 'a', selects: () => true }, { name: 'b', selects: () => true }] });
    p.recover();
    p.ingest('s', body(), 0, 0);
    p.connect(1, 'b1', { group: 'b' });
    p.credit(1, 1);
    p.dispatch(0); // b's ring is empty again, a's still holds seq 1
    spool.wal = WAL_QUOTA;
    assert.equal(p.ingest('s', body(), 0, 0), 'accepted');
    assert.deepEqual(p.groups().map((g) => g.droppedBy.spool_full), [1, 0]);
    assert.equal(p.totals().spoolWalRefused, 1);
  });

  it('a write the WAL leaves no room for is refused, and no stored record is dropped for it', () => {
    const { spool, p } = setup();
    for (let i = 0; i < 40; i++) assert.equal(p.ingest('s', body(1_000), i, i), 'accepted');
    assert.equal(p.totals().spooled, 30);
    // The rows fit the quota with the WAL's share (twice 50,000 bytes), but the WAL and the write's own frames (10 rows of 1,048 bytes: twice 2.6 pages, 6, + 10) do not.
    spool.wal = WAL_QUOTA - 30 * row - 10 * row - PAGES_16 + 1;
    const outcomes = Array.from({ length: 10 }, (_, i) => p.ingest('s', body(1_000), 40 + i, 40 + i));
    const s = [...p.streams()][0];
    assert.equal(p.totals().spooled, 30, 'nothing more was written');
    assert.equal(s?.dropped.spool_full ?? 0, outcomes.filter((o) => o !== 'accepted').length, 'what was refused is counted as spool_full');
    assert.ok((s?.dropped.spool_full ?? 0) > 0);
    assert.equal(p.totals().spoolWalRefused, s?.dropped.spool_full, 'each counted as refused for the WAL');
    assert.deepEqual([...spool.summary()].map((x) => x.records), [30], 'the stored rows are all there');
  });

  it('at shutdown, what is owed is written within the quota, the most important first, then the oldest; the rest is dropped as spool_full', () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, spoolQuotaBytes: 3 * (10 + SPOOL_ROW_OVERHEAD_BYTES), specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2 }) });
    for (const name of ['lo', 'lo', 'hi', 'lo', 'hi']) assert.equal(p.ingest(name, body(), 0, 0), 'accepted'); // lo 1, 2, 4; hi 3, 5
    assert.equal(p.persist(), 3);
    const rows = (stream: string) => spool.read(stream, 0, 99, 99).map((r) => r.seq);
    assert.deepEqual([rows('hi'), rows('lo')], [[3, 5], [1]]);
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.dropped.spool_full]), [['lo', 2], ['hi', 0]]);
    assert.equal(p.totals().spoolBytes, 3 * (10 + SPOOL_ROW_OVERHEAD_BYTES));

    // Of equally important records, the oldest first, wherever they wait (seq 1 in flight, after the ring's).
    const spool2 = new MemorySpool();
    const q = pipeline({ spool: spool2, spoolQuotaBytes: 2 * (10 + SPOOL_ROW_OVERHEAD_BYTES) });
    for (let i = 0; i < 3; i++) q.ingest('s', body(), 0, 0);
    q.connect(1, 'c');
    q.credit(1, 1);
    assert.deepEqual(seqsOf(q), [1]);
    assert.equal(q.persist(), 2);
    assert.deepEqual(spool2.read('s', 0, 99, 99).map((r) => r.seq), [1, 2]);
  });

  it('a full quota drops the least important stream’s oldest rows, of equally important streams the one with the oldest rows', () => {
    const row = 1 + SPOOL_ROW_OVERHEAD_BYTES;
    const setup = () => pipeline({ spool: new MemorySpool(), spoolQuotaBytes: 4 * row, spillBatchRecords: 2, specFor: (n) => spec({ capacityRecords: 2, priority: n === 'lo' ? 2 : 1 }) });
    const onDisk = (p: Pipeline) => [...p.streams()].map((s) => [s.name, s.spooled, s.dropped.spool_full]);
    const p = setup();
    for (const name of ['hi', 'hi', 'hi', 'hi', 'lo', 'lo', 'lo', 'lo']) p.ingest(name, body(1), 0, 0); // hi 1, 2 and lo 5, 6 on disk: the quota is full
    p.ingest('hi', body(1), 0, 0);
    p.ingest('hi', body(1), 0, 0); // hi 3, 4 must go to disk
    assert.deepEqual(onDisk(p), [['hi', 4, 0], ['lo', 0, 2]]);

    const q = setup();
    q.ingest('b', body(1), 0, 0); // seq 1, sent: b's rows will be the newer
    q.connect(1, 'c');
    q.credit(1, 1);
    assert.deepEqual(seqsOf(q), [1]);
    for (const name of ['a', 'a', 'a', 'a', 'b', 'b', 'b', 'b']) q.ingest(name, body(1), 0, 0); // a 2, 3 and b 6, 7 on disk
    q.ingest('a', body(1), 0, 0);
    q.ingest('a', body(1), 0, 0); // a 4, 5 must go to disk
    assert.deepEqual(onDisk(q), [['b', 2, 0], ['a', 2, 2]], "a's rows 2 and 3 are older than b's 6 and 7");

    const r = setup();
    for (const name of ['a', 'a', 'a', 'a', 'b', 'b', 'b', 'b', 'b', 'b']) r.ingest(name, body(1), 0, 0); // a 1, 2, then b 5, 6 on disk; b 7, 8 must go
    assert.deepEqual(onDisk(r), [['a', 0, 2], ['b', 4, 0]], "a's rows are the older");
  });

  it('a record larger than the whole quota is refused without dropping the rows there for it', () => {
    const row = 1 + SPOOL_ROW_OVERHEAD_BYTES;
    const p = pipeline({ spool: new MemorySpool(), spoolQuotaBytes: 2 * row, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 2 }) });
    const lane = () => [...p.streams()].map((s) => [s.buffered, s.spooled, s.dropped.spool_full]);
    for (let i = 0; i < 4; i++) p.ingest('s', body(1), 0, 0); // 1, 2 on disk: the quota is full
    assert.equal(p.ingest('s', body(3 * row), 0, 0), 'accepted'); // 3 to disk, row 1 gives way
    assert.equal(p.ingest('s', body(1), 0, 0), 'accepted'); // 4 to disk, row 2 gives way
    assert.deepEqual(lane(), [[2, 2, 2]]);
    assert.equal(p.ingest('s', body(1), 0, 0), 'dropped', 'the big record cannot go to disk: the newcomer is refused');
    assert.deepEqual(lane(), [[2, 2, 3]], 'rows 3 and 4 stay');
  });

  it('a memory budget whose spill the quota refuses (more important rows hold it) drops the newcomer as spool_full, not overflow, with one group or two', () => {
    const row = 1 + SPOOL_ROW_OVERHEAD_BYTES;
    const all = (name: string) => ({ name, selects: () => true });
    for (const groups of [undefined, () => [all('a'), all('b')]]) {
      const p = pipeline({
        spool: new MemorySpool(),
        spoolQuotaBytes: 2 * row,
        memoryBudgetBytes: 3 * (1 + RECORD_OVERHEAD_BYTES),
        spillBatchRecords: 1,
        specFor: (n) => spec({ priority: n === 'hi' ? 0 : 1, capacityRecords: n === 'hi' ? 1 : 100 }),
        ...(groups === undefined ? {} : { groups }),
      });
      const lanes = groups === undefined ? 1 : 2;
      for (let i = 0; i < 3; i++) assert.equal(p.ingest('hi', body(1), 0, 0), 'accepted'); // 1, 2 on disk, 3 in memory
      for (let i = 0; i < 2; i++) assert.equal(p.ingest('a', body(1), 0, 0), 'accepted'); // the budget is full
      assert.equal(p.ingest('a', body(1), 0, 0), 'dropped');
      assert.deepEqual([...p.streams()].map((s) => [s.name, s.buffered, s.spooled, s.dropped.overflow, s.dropped.spool_full]), [['hi', 1, 2, 0, 0], ['a', 2, 0, 0, lanes]], `${lanes} group(s)`);
      assert.equal(p.totals().spoolFailing, false, 'a full quota is not a failing spool');
    }
  });

  it('a durable commit makes room only below the least important record it writes', () => {
    const row = 1 + SPOOL_ROW_OVERHEAD_BYTES;
    const p = pipeline({ spool: new MemorySpool(), durable: true, spoolQuotaBytes: 3 * row, spillBatchRecords: 2, specFor: (n) => spec({ priority: n === 'hi' ? 1 : 2, capacityRecords: 2 }) });
    for (let i = 0; i < 2; i++) p.ingest('hi', body(1), 0, 0);
    assert.equal(p.commit(), true);
    for (let i = 0; i < 2; i++) p.ingest('hi', body(1), 0, 0); // 1, 2 only on disk now
    p.ingest('lo', body(1), 0, 0);
    assert.equal(p.commit(), false, 'hi 3, 4 and lo 5 need three rows, one is free');
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.spooled, s.dropped.spool_full]), [['hi', 2, 0], ['lo', 0, 0]], "lo's priority does not reach hi's rows");
  });

  it('with two groups, a full quota first counts the rows both released (their flush), then writes: nothing is dropped', () => {
    const row = 1 + SPOOL_ROW_OVERHEAD_BYTES;
    const all = (name: string) => ({ name, selects: () => true });
    const p = pipeline({ spool: new MemorySpool(), spoolQuotaBytes: 2 * row, spillBatchRecords: 2, specFor: () => spec({ capacityRecords: 2 }), groups: () => [all('a'), all('b')] });
    for (let i = 0; i < 4; i++) assert.equal(p.ingest('s', body(1), 0, i), 'accepted'); // 1, 2 on disk: the quota is full
    p.connect(1, 'a', { group: 'a' });
    p.connect(2, 'b', { group: 'b' });
    p.credit(1, 2);
    p.credit(2, 2);
    assert.deepEqual(seqsOf(p), [1, 2, 1, 2], 'each group read rows 1 and 2 back, before the other released them');
    p.ack(1, [1, 2]);
    p.ack(2, [1, 2]);
    assert.deepEqual([p.totals().spoolBytes, p.totals().spoolPendingDeletes], [2 * row, 4], 'neither group knew it released them last');
    for (let i = 0; i < 2; i++) assert.equal(p.ingest('s', body(1), 0, 10 + i), 'accepted'); // 3, 4 spill
    assert.deepEqual([p.totals().spooled, p.totals().dropped, p.totals().spoolBytes, p.totals().spoolPendingDeletes], [2, 0, 2 * row, 0]);
  });

  it('a full quota keeps taking the newest: the oldest rows give way for a write and the WAL, though the file never shrinks', () => {
    /** As SQLite's file: deleted rows leave free pages that later writes reuse; the file does not shrink (until reclaim). */
    class FileSpool extends MemorySpool {
      file = 0;
      diskUse() {
        const live = this.sizeOnDisk();
        this.file = Math.max(this.file, live);
        return { live, file: this.file, wal: 0, pageSize: 4_096 };
      }
    }
    const spool = new FileSpool();
    const p = pipeline({ spool, spoolQuotaBytes: WAL_QUOTA, spillBatchRecords: 10, specFor: () => spec({ capacityRecords: 10 }) });
    for (let i = 0; i < 300; i++) p.ingest('s', body(1_000), 0, 0);
    const seqs = spool.read('s', 0, 999, 999).map((r) => r.seq);
    // 150 rows and a write of 10 (167,680 bytes), the write's WAL frames and those of the delete
    // that makes room for it (16 pages each, 65,920 bytes) and twice the WAL's share of the quota
    // (100,000) take 399,520 of the 400,000; 291-300 are in the ring.
    assert.deepEqual([seqs.length, seqs[0], seqs.at(-1), spool.file], [160, 131, 290, 160 * row]);
    assert.equal([...p.streams()][0]?.dropped.spool_full, 130, 'the oldest, each counted');
  });

  it('streams of one priority give way oldest first across them: a backlog is judged by where its rows start now', () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, spoolQuotaBytes: QUOTA, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 10 }) });
    for (let i = 0; i < 300; i++) p.ingest(i % 2 === 0 ? 'a' : 'b', body(1_000), 0, 0); // a: odd seqs, b: even
    const disk = [...spool.read('a', 0, 999, 999), ...spool.read('b', 0, 999, 999)].map((r) => r.seq).sort((x, y) => x - y);
    // 95 rows (99,560 bytes) of the newest, 186-280; 281-300 in the rings. Judged by where a backlog
    // once started, one stream gave way until it had nothing on disk (a lost 140, b 50).
    assert.deepEqual([disk.length, disk[0], disk.at(-1), disk.every((seq, i) => seq === 186 + i)], [95, 186, 280, true]);
    assert.deepEqual([...p.streams()].map((x) => [x.name, x.dropped.spool_full, x.spooled, x.buffered]), [['a', 93, 47, 10], ['b', 92, 48, 10]]);
  });

  it('with two groups a full quota drops the same oldest rows for both: none is given up by one group while the other keeps it on disk', () => {
    const spool = new MemorySpool();
    const all = (name: string) => ({ name, selects: () => true });
    const p = pipeline({ spool, spoolQuotaBytes: QUOTA, spillBatchRecords: 10, specFor: () => spec({ capacityRecords: 10 }), groups: () => [all('a'), all('b')] });
    for (let i = 0; i < 300; i++) p.ingest('s', body(1_000), 0, 0);
    const seqs = spool.read('s', 0, 999, 999).map((r) => [r.seq, r.owers]);
    // 90 rows (94,320 bytes) of the newest, owed by both; 291-300 in both rings. When a group's backlog
    // was judged by where it once started, group a gave up 40 rows that stayed on disk for b.
    assert.deepEqual([seqs.length, seqs[0], seqs.at(-1)], [90, [201, 0b110], [290, 0b110]]);
    assert.deepEqual(p.groups().map((g) => [g.name, g.droppedBy.spool_full, g.backlog]), [['a', 200, 100], ['b', 200, 100]]);
    groupsBalance(p);
  });

  it('measures the disk again after the flush it makes room with: rows whose delete was pending no longer take room there', () => {
    const all = (name: string) => ({ name, selects: () => true });
    // 110,000 bytes: a write of 10 rows of 1,048 bytes takes them, its WAL frames (16 pages, 65,920) and twice
    // the WAL's share (13,750): 103,900; with the 10 rows before it still on disk, 114,380 do not fit.
    for (const groups of [undefined, () => [all('a'), all('b')]]) {
      const spool = new MeasuredSpool();
      const p = pipeline({ spool, spoolQuotaBytes: 110_000, spillBatchRecords: 10, specFor: () => spec({ capacityRecords: 10 }), ...(groups === undefined ? {} : { groups }) });
      const names = groups === undefined ? ['default'] : ['a', 'b'];
      for (let i = 0; i < 11; i++) assert.equal(p.ingest('s', body(1_000), 0, 0), 'accepted'); // 1-10 on disk, 11 in the ring
      assert.equal(spool.sizeOnDisk(), 10 * row);
      names.forEach((group, i) => {
        p.connect(i + 1, group, { group });
        p.credit(i + 1, 10);
      });
      assert.deepEqual(seqsOf(p), names.flatMap(() => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
      names.forEach((_, i) => p.ack(i + 1, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
      assert.equal(spool.sizeOnDisk(), 10 * row, 'their rows are still there: deleted by the next flush');
      for (let i = 0; i < 10; i++) assert.equal(p.ingest('s', body(1_000), 0, 0), 'accepted'); // 12-20, then 21: 11-20 spill
      assert.deepEqual([spool.read('s', 0, 99, 99).map((r) => r.seq), p.totals().spoolBytes, p.totals().spoolPendingDeletes], [[11, 12, 13, 14, 15, 16, 17, 18, 19, 20], 10 * row, 0], `${names.length} group(s)`);
      assert.deepEqual(p.groups().map((g) => [g.name, g.dropped, g.backlog]), names.map((n) => [n, 0, 11]));
    }
  });

  it('rows that take more than the estimate (page slack) count in the last check of the disk too', () => {
    /** A spool whose pages hold 5,000 bytes more than the rows' estimate (page slack, the index), with a WAL the test sets. */
    class SlackSpool extends MeasuredSpool {
      override diskUse() {
        const live = this.sizeOnDisk() + 5_000;
        return { live, file: live, wal: this.wal, pageSize: 4_096 };
      }
    }
    // 10 rows of 1,048 bytes (10,480) and their slack, the write's WAL frames (16 pages, 65,920): 81,400 of the
    // 400,000 beside the WAL; without the slack 76,400.
    for (const [wal, outcome] of [
      [400_000 - 81_400 + 1, 'dropped'],
      [400_000 - 81_400, 'accepted'],
    ] as const) {
      const spool = new SlackSpool();
      const p = pipeline({ spool, spoolQuotaBytes: WAL_QUOTA, spillBatchRecords: 10, specFor: () => spec({ capacityRecords: 10 }) });
      for (let i = 0; i < 10; i++) assert.equal(p.ingest('s', body(1_000), 0, 0), 'accepted');
      spool.wal = wal;
      assert.equal(p.ingest('s', body(1_000), 0, 0), outcome, `a WAL of ${wal} bytes`);
      const refused = outcome === 'dropped' ? 1 : 0;
      assert.deepEqual([p.totals().spooled, p.totals().spoolBytes, [...p.streams()][0]?.dropped.spool_full, p.totals().spoolWalRefused], [10 * (1 - refused), 10 * row * (1 - refused), refused, refused]);
    }
  });

  it('at shutdown without a spool, nothing is written', () => {
    const p = pipeline();
    p.ingest('s', body(), 0, 0);
    assert.equal(p.persist(), 0);
    assert.equal(p.totals().buffered, 1);
  });

  it('at shutdown, the WAL frames of everything written so far count against the quota', () => {
    const spool = new MeasuredSpool();
    const p = pipeline({ spool, spoolQuotaBytes: WAL_QUOTA });
    for (let i = 0; i < 90; i++) p.ingest('s', body(1_000), 0, 0);
    // 81 rows: 81 × 1,048 + (42 pages + 10) × (4,096 + 24), and twice the WAL's share of the quota
    // (50,000): 399,128 bytes; an 82nd would take 404,296 (43 pages).
    assert.equal(p.persist(), 81);
    assert.deepEqual([p.totals().spoolBytes, [...p.streams()][0]?.dropped.spool_full, p.totals().spoolWalRefused], [81 * row, 9, 0]);
  });

  it('at shutdown, records of several priorities land between one another: their frames count four times their bytes', () => {
    const spool = new MeasuredSpool();
    const p = pipeline({ spool, spoolQuotaBytes: WAL_QUOTA, specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2 }) });
    for (let i = 0; i < 90; i++) p.ingest(i % 2 === 0 ? 'lo' : 'hi', body(1_000), 0, 0); // lo odd seqs, hi even
    // hi first (2 to 90), then lo from seq 1: 48 rows take 48 × 1,048 + (50 pages + 10) × (4,096 + 24)
    // and twice the WAL's share (50,000): 397,504 bytes; a 49th 402,672 (51 pages). Appended, 81 would fit.
    assert.equal(p.persist(), 48);
    assert.deepEqual(Object.fromEntries([...p.streams()].map((s) => [s.name, s.dropped.spool_full])), { hi: 0, lo: 42 });
    assert.deepEqual(spool.read('lo', 0, 999, 999).map((r) => r.seq), [1, 3, 5]);
  });

  it('one byte less of WAL and the same write fits', () => {
    const { spool, p } = setup();
    for (let i = 0; i < 40; i++) p.ingest('s', body(1_000), i, i);
    spool.wal = WAL_QUOTA - 30 * row - 10 * row - PAGES_16;
    for (let i = 0; i < 10; i++) assert.equal(p.ingest('s', body(1_000), 40 + i, 40 + i), 'accepted');
    assert.equal(p.totals().spooled, 40);
    assert.equal([...p.streams()][0]?.dropped.spool_full ?? 0, 0);
  });
});

describe('streams of two groups (the shared ingest path), exactly', () => {
  const two = { groups: () => [{ name: 'a', selects: () => true }, { name: 'b', selects: () => true }] };

  it('a record larger than its ring can ever hold is dropped as overflow by each group, whatever the policy', () => {
    for (const whenFull of ['spill', 'drop-oldest', 'drop-newest'] as const) {
      const spool = new MemorySpool();
      const p = pipeline({ ...two, spool, specFor: () => spec({ capacityBytes: 50, whenFull }) });
      assert.equal(p.ingest('s', body(51), 0, 0), 'dropped', whenFull);
      assert.deepEqual(p.groups().map((g) => [g.name, g.droppedBy.overflow, g.droppedBy.spool_full, g.backlog]), [['a', 1, 0, 0], ['b', 1, 0, 0]], whenFull);
      assert.equal(p.ingest('s', body(50), 0, 0), 'accepted', `${whenFull}: one that fits still does`);
      assert.deepEqual([p.nextSeq, p.groups().map((g) => g.backlog), spool.summary()], [3, [1, 1], []], whenFull);
    }
  });
});

describe('durable group commit, a taken-back record the memory budget drops before it', () => {
  /**
   * Durable, a budget of one record: lo (priority 2, `whenFull`) seq 1 is sent and nacked before
   * any commit, then hi (priority 0) takes its room: the budget's last resort drops the taken-back
   * lo (overflow without `spill`; spool_full when its move to disk is refused). What the commit wrote,
   * and what a restart finds.
   */
  const afterCommit = (whenFull: StreamSpec['whenFull'], groups?: PipelineOptions['groups']) => {
    const spool = new SickSpool();
    const o = { spool, durable: true, ...(groups === undefined ? {} : { groups }) };
    const p = pipeline({ ...o, memoryBudgetBytes: 1 + RECORD_OVERHEAD_BYTES, specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2, whenFull: n === 'hi' ? 'spill' : whenFull }) });
    p.recover();
    assert.equal(p.ingest('lo', body(1), 0, 0), 'accepted');
    p.connect(1, 'c', groups === undefined ? {} : { group: 'a' });
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [1]);
    p.nack(1, [1]);
    spool.refuseWrites = whenFull === 'spill';
    assert.equal(p.ingest('hi', body(1), 0, 0), 'accepted');
    spool.refuseWrites = false;
    const drops = p.groups().map((g) => [g.name, g.droppedBy.overflow, g.droppedBy.spool_full, g.backlog]);
    assert.equal(p.commit(), true);
    groupsBalance(p);
    const q = pipeline({ ...o });
    return { drops, rows: spool.summary(), spoolBytes: p.totals().spoolBytes, recovered: q.recover() };
  };
  const hiOnly = { rows: [{ stream: 'hi', records: 1, payloadBytes: 1, maxSeq: 2 }], spoolBytes: 1 + SPOOL_ROW_OVERHEAD_BYTES, recovered: 1 };

  it('is not written by the commit: a restart does not bring it back, with one group', () => {
    assert.deepEqual(afterCommit('drop-oldest'), { drops: [['default', 1, 0, 1]], ...hiOnly });
    assert.deepEqual(afterCommit('spill'), { drops: [['default', 0, 1, 1]], ...hiOnly });
  });

  it('is not written by the commit with two groups either (lo selected by one of them)', () => {
    const groups = () => [{ name: 'a', selects: () => true }, { name: 'b', selects: (s: string) => s === 'hi' }];
    assert.deepEqual(afterCommit('drop-oldest', groups), { drops: [['a', 1, 0, 1], ['b', 0, 0, 1]], ...hiOnly });
    assert.deepEqual(afterCommit('spill', groups), { drops: [['a', 0, 1, 1], ['b', 0, 0, 1]], ...hiOnly });
  });
});

describe('drops counted as refused for the WAL, exactly', () => {
  /** A memory spool that reports a disk use as SQLite would, with a WAL the test sets (as in the quota's examples above). */
  class WalSpool extends MemorySpool {
    wal = 0;
    diskUse() {
      const live = this.sizeOnDisk();
      return { live, file: live, wal: this.wal, pageSize: 4_096 };
    }
  }

  it('after a spill the WAL refused, a drop for another reason (poison) is not counted as refused for the WAL', () => {
    const spool = new WalSpool();
    const p = pipeline({ spool, spoolQuotaBytes: 400_000, spillBatchRecords: 1, maxAttempts: 1, specFor: () => spec({ capacityRecords: 1 }) });
    p.recover();
    assert.equal(p.ingest('s', body(), 0, 0), 'accepted');
    spool.wal = 400_000;
    assert.equal(p.ingest('s', body(), 0, 0), 'dropped', 'seq 1 could not move to disk (the WAL leaves no room): the newcomer is dropped');
    assert.equal(p.totals().spoolWalRefused, 1);
    p.connect(1, 'c');
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [1]);
    p.nack(1, [1]);
    const s = [...p.streams()][0];
    assert.deepEqual([s?.dropped.spool_full, s?.dropped.poison, p.totals().spoolWalRefused], [1, 1, 1]);
  });
});

describe('durable group commit, records acked first', () => {
  it('a record acked before its commit is not written by it: the commit writes only what is still owed', () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, durable: true });
    for (let i = 0; i < 3; i++) p.ingest('s', body(), i, i);
    p.connect(1, 'c');
    p.credit(1, 2);
    assert.deepEqual(seqsOf(p), [1, 2]);
    p.ack(1, [1]);
    assert.equal(p.commit(), true);
    assert.deepEqual(spool.read('s', 0, 10, 10).map((r) => r.seq), [2, 3]);
    assert.deepEqual([p.totals().spoolBytes, p.uncommitted], [2 * (10 + SPOOL_ROW_OVERHEAD_BYTES), 0]);
    p.ack(1, [2]);
    p.flushSpool();
    assert.deepEqual(spool.read('s', 0, 10, 10).map((r) => r.seq), [3]);
    totalsBalance(p);
  });
});

describe('a TTL sweep and the spool', () => {
  it('asks the spool only for streams with rows there: the deletes pending since the acks wait for the flush, a refusal counted once', () => {
    const spool = new SickSpool();
    const p = pipeline({ spool, spillBatchRecords: 2, specFor: () => spec({ capacityRecords: 2, ttlMs: 100 }) });
    for (let i = 0; i < 4; i++) p.ingest('s', body(), 0, 0); // 1, 2 on disk, 3, 4 in the ring
    p.connect(1, 'c');
    p.credit(1, 4);
    assert.deepEqual(seqsOf(p), [1, 2, 3, 4]);
    p.ack(1, [1, 2, 3, 4]); // rows 1 and 2 to delete at the next flush
    spool.refuseDeletes = true;
    const state = () => [p.totals().spoolPendingDeletes, p.totals().spoolFailures, p.totals().spoolFailing];
    assert.equal(p.expireTtl(1_000), 0);
    assert.deepEqual(state(), [2, 0, false], 'nothing of s on disk: the sweep did not touch the spool');
    p.flushSpool();
    assert.deepEqual(state(), [2, 1, true], 'the flush tried, and was refused');
    spool.refuseDeletes = false;
    assert.equal(p.expireTtl(1_000), 0);
    assert.deepEqual(state(), [2, 1, true], 'still left to the flush');
    p.flushSpool();
    assert.deepEqual([...state(), spool.summary()], [0, 1, false, []]);
    totalsBalance(p);
  });
});

describe('at shutdown, what each group owes', () => {
  const all = (name: string) => ({ name, selects: () => true });

  it('writes the delivery counts of the records already on disk, those exactly (one group)', () => {
    class AttemptsSpool extends MemorySpool {
      readonly attempts: unknown[] = [];
      override setAttempts(records: Parameters<MemorySpool['setAttempts']>[0]) {
        this.attempts.push(records);
        super.setAttempts(records);
      }
    }
    const spool = new AttemptsSpool();
    const p = pipeline({ spool, spillBatchRecords: 2, specFor: () => spec({ capacityRecords: 2 }) });
    for (let i = 0; i < 3; i++) p.ingest('s', body(), 0, 0); // 1, 2 on disk, 3 in the ring
    assert.equal(p.persist(), 1, 'seq 3');
    assert.deepEqual(spool.attempts, [[]], 'nothing was read back: no count to write');
    const q = pipeline({ spool, spillBatchRecords: 2, specFor: () => spec({ capacityRecords: 2 }) });
    assert.equal(q.recover(), 3);
    q.connect(1, 'c');
    q.credit(1, 1);
    assert.deepEqual(seqsOf(q), [1], 'rows 1-3 read back');
    q.nack(1, [1]);
    assert.equal(q.persist(), 0);
    assert.deepEqual(spool.attempts, [[], [1, 2, 3].map((seq) => ({ seq, attempt: seq === 1 ? 1 : 0, failures: seq === 1 ? 1 : 0 }))]);
  });

  it('with two groups, a record the first group could not write within the quota is written for the second, owed by it alone', () => {
    class MeasuredSpool extends MemorySpool {
      diskUse() {
        const live = this.sizeOnDisk();
        return { live, file: live, wal: 0, pageSize: 4_096 };
      }
    }
    const spool = new MeasuredSpool();
    const groups = () => [all('a'), all('b')];
    const p = pipeline({ spool, spoolQuotaBytes: 400_000, groups });
    for (let i = 0; i < 90; i++) p.ingest('s', body(1_000), 0, 0);
    // a: 81 rows and their WAL frames take the quota (as with one group); b: the 9 others, a write of their own.
    assert.equal(p.persist(), 90);
    assert.deepEqual(p.groups().map((g) => [g.name, g.droppedBy.spool_full]), [['a', 9], ['b', 0]]);
    const bit = (g: string) => 2 ** (spool.groupBits().get(g) as number);
    const owers = spool.read('s', 0, 999, 999).map((r) => r.owers);
    assert.deepEqual([owers.length, owers.slice(0, 81).every((o) => o === (bit('a') | bit('b'))), owers.slice(81).every((o) => o === bit('b'))], [90, true, true]);
    const q = pipeline({ spool, spoolQuotaBytes: 400_000, groups });
    assert.equal(q.recover(), 90);
    assert.deepEqual(q.groups().map((g) => [g.name, g.recovered]), [['a', 81], ['b', 90]]);
  });

  it('with two groups, no delivery count is left for a record the quota kept off the disk: the record that takes its seq after a restart is sent as a first delivery', () => {
    const spool = new MemorySpool();
    const o = { spool, spoolQuotaBytes: 2 * (10 + SPOOL_ROW_OVERHEAD_BYTES), spillBatchRecords: 1, groups: () => [all('a'), all('b')] };
    const p = pipeline(o);
    for (let i = 0; i < 3; i++) p.ingest('s', body(), 0, 0);
    p.connect(1, 'a', { group: 'a' });
    p.credit(1, 3);
    assert.deepEqual(seqsOf(p), [1, 2, 3]);
    assert.equal(p.persist(), 2, 'seq 3 does not fit, for a nor b');
    const q = pipeline({ ...o, spoolQuotaBytes: 3 * (10 + SPOOL_ROW_OVERHEAD_BYTES), specFor: () => spec({ capacityRecords: 1 }) });
    assert.equal(q.recover(), 2);
    q.ingest('s', body(), 0, 0);
    q.ingest('s', body(), 0, 0); // seq 3 again, spilled for 4
    q.connect(1, 'a', { group: 'a' });
    q.credit(1, 4);
    assert.deepEqual(q.dispatch(0).flatMap((d) => d.records.map((r) => [r.seq, r.attempt])), [[1, 2], [2, 2], [3, 1], [4, 1]]);
  });
});

describe('a backlog read again after making room for it', () => {
  it('that cannot be read now waits, counted as a spool failure, and holds back a less important stream; it comes once it can be read', () => {
    /** Unreadable from the first write after `sickAfterWrite` is set: the spill that makes room for the backlog. */
    class SpoolSickAfterWrite extends SickSpool {
      sickAfterWrite = false;
      override write(...a: Parameters<SickSpool['write']>) {
        super.write(...a);
        if (this.sickAfterWrite) this.unreadable = true;
      }
    }
    const spool = new SpoolSickAfterWrite();
    const p = pipeline({ spool, memoryBudgetBytes: 2 * (10 + RECORD_OVERHEAD_BYTES), spillBatchRecords: 1, specFor: (n) => spec({ priority: n === 'a' ? 1 : 2, capacityRecords: 1 }) });
    p.ingest('a', body(), 0, 0);
    p.ingest('a', body(), 0, 0); // a: seq 1 on disk, 2 in the ring
    p.ingest('b', body(), 0, 0); // b: seq 3 in the ring; the budget is full
    spool.sickAfterWrite = true;
    p.connect(1, 'c');
    p.credit(1, 10);
    assert.deepEqual(seqsOf(p), [], "row 1 read, b's seq 3 spilled for it, then the read again refused: a waits, and b behind it");
    const lanes = () => [...p.streams()].map((s) => [s.name, s.buffered, s.spooled]);
    assert.deepEqual(lanes(), [['a', 1, 1], ['b', 0, 1]]);
    assert.deepEqual([p.totals().spoolFailures, p.totals().spoolFailing], [1, true]);
    spool.unreadable = false;
    spool.sickAfterWrite = false;
    assert.deepEqual(seqsOf(p), [1, 2]);
    totalsBalance(p);
  });
});

describe('with two groups, a spool that refuses releases', () => {
  const all = (name: string) => ({ name, selects: () => true });
  /**
   * Durable, groups a and b, a ring of four, TTL 100: b holds 1-4 in flight; 2 and 3 (born at 0) expire
   * from a's ring while releases are refused, then a's spill of 4 makes its span (0, 4], over them; a
   * reads row 1 (and 2, passed over). In a's ring 5-8, 5 and 6 born at 50, 7 and 8 at `born78`.
   */
  const aReadOverWaitingReleases = (born78: number) => {
    const spool = new SickSpool();
    const p = pipeline({ spool, durable: true, spillBatchRecords: 1, replayBatchRecords: 2, specFor: () => spec({ capacityRecords: 4, ttlMs: 100 }), groups: () => [all('a'), all('b')] });
    const aSeqs = () => p.dispatch(0).filter((d) => d.consumer.id === 1).flatMap((d) => d.records.map((r) => r.seq));
    for (const born of [200, 0, 0, 200]) p.ingest('s', body(), 0, born);
    assert.equal(p.commit(), true, '1-4 on disk, and in both rings');
    p.connect(2, 'b', { group: 'b' });
    p.credit(2, 4);
    assert.deepEqual(seqsOf(p), [1, 2, 3, 4], 'b holds 1-4 in flight: they stay owed by b');
    p.ingest('s', body(), 0, 50); // 5: a's ring spills 1, a's span (0, 1]
    assert.equal(p.commit(), true);
    spool.refuseRowReleases = true;
    assert.equal(p.expireTtl(110), 2, "a's ring head 2, then 3: their releases wait");
    for (const born of [50, born78, born78]) p.ingest('s', body(), 0, born); // 6-8; for 8 a spills 4, its span now (0, 4]
    assert.equal(p.commit(), true);
    p.connect(1, 'a', { group: 'a' });
    p.credit(1, 1);
    assert.deepEqual(aSeqs(), [1], 'rows 1 and 2 read, 2 passed over');
    return { p, spool, aSeqs };
  };

  it('a read passes over the rows whose release waits as they are now, after a flush took the ones before and as many others came', () => {
    const { p, spool, aSeqs } = aReadOverWaitingReleases(200);
    spool.refuseRowReleases = false;
    p.flushSpool(); // a's releases of 2 and 3 go through
    spool.refuseRowReleases = true;
    assert.equal(p.expireTtl(160), 4, "5 and 6 from a's ring, and from b's: a's two releases wait, as many as before");
    for (let i = 0; i < 3; i++) p.ingest('s', body(), 0, 200); // 9-11: for 11 a spills 7, its span now (1, 7], over rows 5 and 6
    assert.equal(p.commit(), true);
    p.credit(1, 10);
    assert.deepEqual(aSeqs(), [4, 7, 8, 9, 10, 11], 'rows 5 and 6 passed over: a is done with them');
    const a = p.groups().find((g) => g.name === 'a');
    assert.deepEqual([a?.droppedBy.expired, a?.backlog, a?.inflight], [4, 0, 7]);
    groupsBalance(p);
  });

  it('a read passes over the rows whose delete waits too, however many came beside the releases still waiting', () => {
    const { p, aSeqs } = aReadOverWaitingReleases(50);
    p.credit(2, 4);
    assert.deepEqual(seqsOf(p), [5, 6, 7, 8], "from b's ring");
    p.ack(2, [5, 6, 7, 8]);
    assert.equal(p.expireTtl(160), 4, "5-8 from a's ring: a's deletes of their rows wait behind its releases of 2 and 3");
    for (let i = 0; i < 5; i++) p.ingest('s', body(), 0, 200); // 9-13: for 13 a spills 9, its span now (1, 9], over rows 5-8
    p.credit(1, 10);
    assert.deepEqual(aSeqs(), [4, 9, 10, 11, 12, 13], 'rows 5-8 passed over');
    assert.deepEqual(p.groups().map((g) => [g.name, g.droppedBy.expired, g.backlog, g.inflight]), [['a', 6, 0, 7], ['b', 0, 5, 4]]);
    assert.equal(p.totals().spoolPendingDeletes, 4 + 2 + 4, 'a: deletes of 5-8, releases of 2 and 3; b: releases of 5-8');
    groupsBalance(p);
  });
});

describe('shares by credit, across dispatches', () => {
  /** Consumers A, B, … with these grants (maxCredit 10): each batch of records is ingested, dispatched once, acked and its credit granted back. Who got what, per dispatch. */
  const batches = (grants: readonly number[], sizes: readonly number[]): string[] => {
    const p = pipeline({ maxCredit: 10 });
    grants.forEach((g, i) => {
      p.connect(i + 1, `c${i}`);
      p.credit(i + 1, g);
    });
    let seq = 0;
    return sizes.map((n) => {
      for (let i = 0; i < n; i++) p.ingest('s', body(), seq, seq++);
      let got = '';
      for (const d of p.dispatch(0)) {
        got += 'ABCD'[d.consumer.id - 1]?.repeat(d.records.length) ?? '?';
        p.ack(d.consumer.id, d.records.map((r) => r.seq));
        p.credit(d.consumer.id, d.records.length);
      }
      return got;
    });
  };

  it('a dispatch that fills every consumer to its credit settles what each was owed: the shares start over', () => {
    // Credit 3 and 1, one record at a time from nothing owed: A B owed 3/4 1/4 -> A; 1/2 1/2 -> A (a tie to
    // the first); 1/4 3/4 -> B; 1 0 -> A. The first record leaves A a quarter ahead; then 4 records for
    // 4 credits fill both, after which nobody is owed anything and the cycle starts again from the top.
    assert.deepEqual(batches([3, 1], [1, 4, 1, 1, 1, 1]), ['A', 'AAAB', 'A', 'A', 'B', 'A']);
    assert.deepEqual(batches([3, 1], [1, 1, 1, 1]), ['A', 'A', 'B', 'A'], 'the same cycle with nothing before it');
  });
});

describe('a backlog that cannot be read, with several consumers', () => {
  /** Two consumers of credit `credit` each; seqs 1, 2 spilled and 3, 4 in the ring, and the spool cannot read. */
  const setup = (credit: number) => {
    const spool = new SickSpool();
    const p = pipeline({ spool, spillBatchRecords: 2, specFor: () => spec({ capacityRecords: 2 }) });
    for (let i = 0; i < 4; i++) p.ingest('s', body(), i, i);
    assert.deepEqual([p.totals().buffered, p.totals().spooled], [2, 2]);
    spool.unreadable = true;
    for (const id of [1, 2]) {
      p.connect(id, `c${id}`);
      p.credit(id, credit);
    }
    const sends = () => p.dispatch(0).map((d) => [d.consumer.id, d.records.map((r) => r.seq)]);
    return { p, spool, sends };
  };

  it('a dispatch tries the read once, not once more for each consumer, and stops there', () => {
    // 4 waiting for credit 1 + 1: every consumer could be filled.
    const { p, spool, sends } = setup(1);
    assert.deepEqual(sends(), [], 'FIFO: the ring waits behind the backlog on disk');
    assert.deepEqual([p.totals().spoolFailures, p.totals().spoolFailing], [1, true], 'one failed read for the dispatch');
    spool.unreadable = false;
    assert.deepEqual(sends(), [
      [1, [1]],
      [2, [2]],
    ]);
    assert.equal(p.totals().spoolFailures, 1);
  });

  it('what each consumer was owed meanwhile is paid in whole records, in connection order; the rest stays owed', () => {
    // 4 waiting for credit 3 + 3. A dispatch that can read nothing adds 2 (4 × 3/6) to what each is
    // owed, up to its credit: after two, A and B are owed 3 each. Readable again, A takes the 3 it is
    // owed, B what is left; B is still owed 2, so the next record is B's.
    const { p, spool, sends } = setup(3);
    assert.deepEqual(sends(), []);
    assert.deepEqual(sends(), []);
    assert.equal(p.totals().spoolFailures, 2);
    spool.unreadable = false;
    assert.deepEqual(sends(), [
      [1, [1, 2, 3]],
      [2, [4]],
    ]);
    p.ack(1, [1, 2, 3]);
    p.ack(2, [4]);
    p.credit(1, 3);
    p.credit(2, 1);
    p.ingest('s', body(), 4, 4);
    assert.deepEqual(sends(), [[2, [5]]]);
  });
});

describe('the memory budget makes room', () => {
  /** A memory budget of `n` records of 10 bytes. */
  const records = (n: number) => n * (10 + RECORD_OVERHEAD_BYTES);
  /** Per stream: [buffered, spooled, overflow drops, spool_full drops]. */
  const where = (p: Pipeline) => Object.fromEntries([...p.streams()].map((s) => [s.name, [s.buffered, s.spooled, s.dropped.overflow, s.dropped.spool_full]]));
  /** `n` records of each stream named, sent to consumer 1 and nacked: they wait as taken-back records, and the rings are empty. */
  const takenBack = (p: Pipeline, names: readonly string[]) => {
    let seq = 0;
    for (const name of names) p.ingest(name, body(), seq, seq++);
    p.connect(1, 'c');
    p.credit(1, names.length);
    const seqs = seqsOf(p);
    assert.equal(seqs.length, names.length);
    p.nack(1, seqs);
  };
  /** A spool whose writes of delivery counts (`setAttempts`) fail while `refuseAttempts`. */
  class NoAttemptsSpool extends SickSpool {
    refuseAttempts = false;
    attemptWrites = 0;
    override setAttempts(...a: Parameters<SickSpool['setAttempts']>) {
      if (this.refuseAttempts) throw new SpoolError('spool write failed: SQLITE_FULL');
      this.attemptWrites++;
      return super.setAttempts(...a);
    }
  }

  it("a block stream's newcomer takes the room of a less important record, in its ring or taken back", () => {
    const ring = pipeline({ memoryBudgetBytes: records(2), specFor: (n) => spec({ priority: n === 'blk' ? 0 : 2, whenFull: n === 'blk' ? 'block' : 'spill' }) });
    ring.ingest('lo', body(), 0, 0);
    ring.ingest('lo', body(), 1, 1);
    assert.equal(ring.ingest('blk', body(), 2, 2), 'accepted');
    assert.deepEqual(where(ring), { lo: [1, 0, 1, 0], blk: [1, 0, 0, 0] }, "lo's oldest leaves (no spool: overflow)");
    const retry = pipeline({ memoryBudgetBytes: records(2), specFor: (n) => spec({ priority: n === 'blk' ? 0 : 2, whenFull: n === 'blk' ? 'block' : 'spill' }) });
    takenBack(retry, ['lo', 'lo']);
    assert.equal(retry.ingest('blk', body(), 2, 2), 'accepted');
    assert.deepEqual(where(retry), { lo: [1, 0, 1, 0], blk: [1, 0, 0, 0] }, 'the first taken-back record of lo leaves');
  });

  it("a newcomer's room: a drop-oldest ring record is dropped as overflow, not spilled, though a spool is there", () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, memoryBudgetBytes: records(2), specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2, whenFull: n === 'hi' ? 'spill' : 'drop-oldest' }) });
    p.ingest('lo', body(), 0, 0);
    p.ingest('lo', body(), 1, 1);
    assert.equal(p.ingest('hi', body(), 2, 2), 'accepted');
    assert.deepEqual(where(p), { lo: [1, 0, 1, 0], hi: [1, 0, 0, 0] });
    assert.deepEqual(spool.summary(), []);
  });

  it("a backlog's room may take a block stream's ring record: the backlog is older, and FIFO cannot go on without it", () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, memoryBudgetBytes: records(2), specFor: (n) => spec({ priority: 1, whenFull: n === 'blk' ? 'block' : 'spill' }) });
    p.ingest('blk', body(), 0, 0); // seq 1
    p.ingest('blk', body(), 1, 1); // seq 2: the budget is full
    assert.equal(p.ingest('a', body(), 2, 2), 'accepted', 'seq 3, straight to disk: blk neither gives nor takes for a newcomer');
    assert.deepEqual(where(p), { blk: [2, 0, 0, 0], a: [0, 1, 0, 0] });
    p.connect(1, 'c');
    p.credit(1, 3);
    assert.deepEqual(seqsOf(p), [1, 3], "blk's seq 1 goes (in flight, still in memory), then a's backlog comes back in place of blk's seq 2");
    assert.deepEqual(where(p), { blk: [0, 0, 1, 0], a: [0, 0, 0, 0] });
  });

  it('across groups, of equally unimportant ring records the oldest leaves, whichever group holds it', () => {
    const p = pipeline({
      memoryBudgetBytes: records(2),
      specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2 }),
      groups: () => [
        { name: 'cloud', selects: (s) => s !== 'y' },
        { name: 'archive', selects: (s) => s === 'y' },
      ],
    });
    p.ingest('y', body(), 0, 0); // seq 1, archive's
    p.ingest('x', body(), 1, 1); // seq 2, cloud's
    assert.equal(p.ingest('hi', body(), 2, 2), 'accepted');
    assert.deepEqual(p.groups().map((g) => [g.name, g.backlog, g.droppedBy.overflow]), [
      ['cloud', 2, 0],
      ['archive', 0, 1],
    ]);
  });

  it('of taken-back records, the least important stream gives one up first; of equally unimportant ones, the first seen', () => {
    // Streams seen in the order b (priority 1), a (2), c (2); each holds one taken-back record.
    const p = pipeline({ memoryBudgetBytes: records(3), specFor: (n) => spec({ priority: n === 'h' ? 0 : n === 'b' ? 1 : 2 }) });
    takenBack(p, ['b', 'a', 'c']);
    assert.equal(p.ingest('h', body(), 3, 3), 'accepted');
    assert.deepEqual(where(p), { b: [1, 0, 0, 0], a: [0, 0, 1, 0], c: [1, 0, 0, 0], h: [1, 0, 0, 0] });
  });

  it('a newcomer takes the room of a taken-back record of its own priority (not of a block stream)', () => {
    const p = pipeline({ memoryBudgetBytes: records(2), specFor: () => spec({ priority: 1 }) });
    takenBack(p, ['s', 's']);
    assert.equal(p.ingest('t', body(), 2, 2), 'accepted');
    assert.deepEqual(where(p), { s: [1, 0, 1, 0], t: [1, 0, 0, 0] });
  });

  it('without a spool, a taken-back record of a spill stream gives way as overflow', () => {
    const p = pipeline({ memoryBudgetBytes: records(2), specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2 }) });
    takenBack(p, ['lo', 'lo']);
    assert.equal(p.ingest('hi', body(), 2, 2), 'accepted');
    assert.deepEqual(where(p), { lo: [1, 0, 1, 0], hi: [1, 0, 0, 0] });
    assert.equal(p.totals().spoolFailures, 0);
  });

  it('a taken-back record the spool refuses to write is dropped as spool_full, and the room it left is taken', () => {
    const spool = new SickSpool();
    const p = pipeline({ spool, memoryBudgetBytes: records(2), specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2 }) });
    takenBack(p, ['lo', 'lo']);
    spool.refuseWrites = true;
    assert.equal(p.ingest('hi', body(), 2, 2), 'accepted');
    assert.deepEqual(where(p), { lo: [1, 0, 0, 1], hi: [1, 0, 0, 0] });
  });

  it('a taken-back record with no row yet leaves for the disk in a row of its own, its delivery count in it: nothing else is written for it', () => {
    const spool = new NoAttemptsSpool({});
    spool.refuseAttempts = true;
    const p = pipeline({ spool, memoryBudgetBytes: records(2), specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2 }) });
    takenBack(p, ['lo', 'lo']); // seqs 1, 2: never written
    assert.equal(p.ingest('hi', body(), 2, 2), 'accepted', 'seq 3');
    assert.deepEqual(where(p), { lo: [1, 1, 0, 0], hi: [1, 0, 0, 0] }, "seq 1's row written, with its count: no count of its own to write");
    assert.deepEqual([p.totals().spoolFailures, spool.attemptWrites], [0, 0]);
    assert.deepEqual(spool.read('lo', 0, 9, 9).map((r) => [r.seq, r.attempt]), [[1, 1]]);
  });
  it('a taken-back record read back from the spool leaves memory only once its delivery count is written to its row: a failure is counted, and it stays', () => {
    const spool = new NoAttemptsSpool({});
    const p = pipeline({ spool, memoryBudgetBytes: records(2), spillBatchRecords: 2, replayBatchRecords: 2, specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2 }) });
    for (let i = 0; i < 3; i++) p.ingest('lo', body(), i, i); // seqs 1-3
    p.ingest('hi', body(), 3, 3); // seq 4: lo's 1, 2 spill
    p.connect(1, 'c');
    p.credit(1, 2);
    assert.deepEqual(seqsOf(p), [4, 1], 'seq 1 read back from the spool');
    p.ack(1, [4]);
    p.nack(1, [1]);
    p.ingest('hi', body(), 4, 4); // seq 5: lo's 3 spills
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [5]);
    assert.deepEqual(where(p), { lo: [1, 2, 0, 0], hi: [0, 0, 0, 0] }, 'seq 1 waits taken back (its row still there), 2 and 3 on disk');
    spool.refuseAttempts = true;
    assert.equal(p.ingest('hi', body(), 5, 5), 'accepted', 'seq 6, straight to disk');
    assert.deepEqual(where(p), { lo: [1, 2, 0, 0], hi: [0, 1, 0, 0] }, 'seq 1 stays: its count could not be written');
    assert.equal(p.totals().spoolFailures, 1);
    spool.refuseAttempts = false;
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [6], "hi's backlog comes back in place of seq 1");
    assert.deepEqual(where(p), { lo: [0, 3, 0, 0], hi: [0, 0, 0, 0] });
    assert.deepEqual(spool.read('lo', 0, 9, 9).map((r) => [r.seq, r.attempt]), [[1, 1], [2, 0], [3, 0]], "seq 1's row says it was delivered once");
  });

  it('of a stream holding as many records read back as taken back, the read-back ones go back to the disk for a more important newcomer, their bytes with them', () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, memoryBudgetBytes: records(3), spillBatchRecords: 2, replayBatchRecords: 2, specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2 }) });
    for (let i = 0; i < 3; i++) p.ingest('lo', body(), i, i); // seqs 1-3
    for (let i = 3; i < 6; i++) p.ingest('hi', body(), i, i); // seqs 4-6: lo's three spill
    p.connect(1, 'c');
    p.credit(1, 3);
    assert.deepEqual(seqsOf(p), [4, 5, 6]);
    p.ack(1, [4, 5, 6]);
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [1], 'lo reads 1 and 2 back; 1 is sent');
    p.nack(1, [1]); // lo holds 2 read back, 1 taken back
    p.ingest('hi', body(), 6, 6); // seq 7
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [7], 'in flight: the memory is full, and no ring holds a record');
    const lo = () => [...p.streams()].find((s) => s.name === 'lo');
    assert.deepEqual([lo()?.buffered, lo()?.spooled, lo()?.spooledBytes], [2, 1, 10]);
    assert.equal(p.ingest('hi', body(), 7, 7), 'accepted', 'seq 8');
    assert.deepEqual(where(p), { lo: [1, 2, 0, 0], hi: [1, 0, 0, 0] }, 'seq 2 went back to the disk; seq 8 is in memory');
    assert.equal(lo()?.spooledBytes, 20);
  });
  it("a backlog coming back takes the room of a block stream's taken-back record of its own priority (a newcomer would not): dropped as overflow", () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, memoryBudgetBytes: records(2), specFor: (n) => spec({ priority: 1, whenFull: n === 'blk' ? 'block' : 'spill' }) });
    takenBack(p, ['blk', 'blk']); // seqs 1, 2
    assert.equal(p.ingest('a', body(), 2, 2), 'accepted', 'seq 3, straight to disk: the block records stay for a newcomer');
    assert.deepEqual(where(p), { blk: [2, 0, 0, 0], a: [0, 1, 0, 0] });
    p.credit(1, 3);
    assert.deepEqual(seqsOf(p), [1, 3], "blk's seq 1 (in flight, still in memory), then a's backlog in place of blk's seq 2");
    assert.deepEqual(where(p), { blk: [0, 0, 1, 0], a: [0, 0, 0, 0] }, "blk's seq 2 dropped as overflow (block does not spill)");
  });

  it("durable: a taken-back record of a stream that does not spill gives way as overflow without its delivery count written first", () => {
    const spool = new NoAttemptsSpool({});
    const p = pipeline({ spool, durable: true, memoryBudgetBytes: records(2), specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2, whenFull: n === 'hi' ? 'spill' : 'drop-oldest' }) });
    takenBack(p, ['lo', 'lo']);
    assert.equal(p.commit(), true, 'their rows are written');
    spool.refuseAttempts = true;
    assert.equal(p.ingest('hi', body(), 2, 2), 'accepted');
    assert.deepEqual(where(p), { lo: [1, 0, 1, 0], hi: [1, 0, 0, 0] });
    assert.deepEqual([p.totals().spoolFailures, spool.attemptWrites], [0, 0]);
  });
});

describe('mutants of the 2026-12-04 run (spool-tier)', () => {
  type Row = Parameters<MemorySpool['write']>[0][number];
  const row = (seq: number, stream: string, o: Partial<Row> = {}): Row => ({ seq, stream, prio: 1, ts: 0, born: 0, attempt: 0, payload: body(), ...o });
  const ROW = 10 + SPOOL_ROW_OVERHEAD_BYTES;
  const seqsIn = (spool: MemorySpool, stream: string) => spool.read(stream, 0, 99, 99).map((r) => r.seq);

  it("a start whose read of a backlog's first row fails counts each failure and starts the spans at 0; of two backlogs starting there, the first seen (the older rows) gives way to a full quota", () => {
    const spool = new SickSpool();
    spool.write([row(1, 'x'), row(2, 'x'), row(3, 'y'), row(4, 'y')]);
    spool.unreadable = true;
    const p = pipeline({ spool, spoolQuotaBytes: 4 * ROW, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }) });
    assert.equal(p.recover(), 4);
    assert.deepEqual([p.totals().spoolFailures, p.totals().spoolFailing], [2, true], "x's and y's first rows could not be read");
    spool.unreadable = false;
    p.ingest('z', body(), 0, 0); // seq 5, in z's ring
    assert.equal(p.ingest('z', body(), 0, 0), 'accepted', 'seq 6: z spills 5, and the quota is full');
    assert.deepEqual([seqsIn(spool, 'x'), seqsIn(spool, 'y'), seqsIn(spool, 'z')], [[2], [3, 4], [5]], "x's row 1 gave way: both spans start at 0, x was seen first");
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.spooled, s.dropped.spool_full]), [['x', 1, 1], ['y', 2, 0], ['z', 1, 0]]);
    totalsBalance(p);
  });

  it('a start that finds a backlog no read finds a row of (a damaged page) starts its span at 0 without a failure, and counts the rows lost once it is read', () => {
    class HidingSpool extends MemorySpool {
      override read(...a: Parameters<MemorySpool['read']>) {
        return a[0] === 'gone' ? [] : super.read(...a);
      }
    }
    const spool = new HidingSpool();
    spool.write([row(1, 'gone'), row(2, 'gone'), row(3, 's')]);
    const p = pipeline({ spool });
    assert.equal(p.recover(), 3);
    assert.equal(p.totals().spoolFailures, 0);
    p.connect(1, 'c');
    p.credit(1, 10);
    assert.deepEqual(seqsOf(p), [3]);
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.spooled, s.dropped.spool_full]), [['gone', 0, 2], ['s', 0, 0]]);
    totalsBalance(p);
  });

  it('a row read back brings its failed deliveries along: one more failure reaches maxAttempts, and the record is dropped as poison', () => {
    const spool = new MemorySpool();
    spool.write([row(1, 's', { attempt: 2, failures: 2 })]);
    const p = pipeline({ spool, maxAttempts: 3 });
    assert.equal(p.recover(), 1);
    p.connect(1, 'c');
    p.credit(1, 1);
    assert.deepEqual(p.dispatch(0).flatMap((d) => d.records.map((r) => [r.seq, r.attempt])), [[1, 3]]);
    p.nack(1, [1]);
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.buffered, s.dropped.poison]), [['s', 0, 1]], 'its third failed delivery');
    totalsBalance(p);
  });

  it('a full quota drops the rows of the less important stream though a more important one seen after it has the older rows', () => {
    const p = pipeline({ spool: new MemorySpool(), spoolQuotaBytes: 4 * (1 + SPOOL_ROW_OVERHEAD_BYTES), spillBatchRecords: 2, specFor: (n) => spec({ capacityRecords: 2, priority: n === 'lo' ? 2 : 1 }) });
    p.ingest('lo', body(1), 0, 0); // seq 1: lo is seen first; sent, so lo's rows will be the newer
    p.connect(1, 'c');
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [1]);
    for (const name of ['hi', 'hi', 'hi', 'hi', 'lo', 'lo', 'lo', 'lo']) p.ingest(name, body(1), 0, 0); // hi 2, 3 and lo 6, 7 on disk: the quota is full
    p.ingest('hi', body(1), 0, 0); // hi 4, 5 must go to disk
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.spooled, s.dropped.spool_full]), [['lo', 0, 2], ['hi', 4, 0]]);
  });

  /**
   * A spool of `n` rows of stream s (born 0, the last born 50, owed by
   * `owers`), made up as they are read rather than held; deletes and
   * releases refused (a WAL that filled the disk).
   */
  class ManyRowsSpool extends SickSpool {
    readonly n: number;
    readonly owers: number;
    constructor(n: number, owers: number) {
      super({ refuseDeletes: true, refuseRowReleases: true });
      this.n = n;
      this.owers = owers;
    }
    override summary() {
      return [{ stream: 's', records: this.n, payloadBytes: this.n, maxSeq: this.n }];
    }
    override summaryFor(bit: number) {
      return (this.owers & bit) === 0 ? [] : this.summary();
    }
    override read(stream: string, after: number, upto: number, limit: number) {
      const rows: Row[] = [];
      const payload = body(1);
      for (let seq = after + 1; stream === 's' && seq <= Math.min(upto, this.n) && rows.length < limit; seq++) rows.push({ seq, stream, prio: 1, ts: 0, born: seq === this.n ? 50 : 0, attempt: 0, failures: 0, payload, owers: this.owers });
      return rows;
    }
    override readFor(stream: string, after: number, upto: number, limit: number, bit: number) {
      return (this.owers & bit) === 0 ? [] : this.read(stream, after, upto, limit);
    }
    override releaseBornBefore(): never {
      throw new SpoolError('spool release failed: SQLITE_FULL');
    }
  }
  const MAX_PENDING = 1_000_000;
  /** Rows 1 to MAX_PENDING + 2 read back at once (TTL 100); row 1 goes out to consumer 1 (of `group`), the others wait in memory. */
  const readBackMany = (owers: number, o: Partial<PipelineOptions> = {}, group?: string) => {
    const spool = new ManyRowsSpool(MAX_PENDING + 2, owers);
    if (group !== undefined) spool.setGroupBits(new Map([['a', 0], ['b', 1]]));
    const p = pipeline({ spool, memoryBudgetBytes: 2 ** 40, replayBatchRecords: MAX_PENDING + 2, specFor: () => spec({ ttlMs: 100 }), ...o });
    assert.equal(p.recover(), MAX_PENDING + 2);
    p.connect(1, 'c', group === undefined ? {} : { group });
    p.credit(1, 1);
    assert.deepEqual(seqsOf(p), [1]);
    return p;
  };
  const pending = (p: Pipeline) => [p.totals().spoolPendingDeletes, p.totals().spoolPendingDeleteBytes];

  it('keeps exactly a million deletes the spool refuses for the next flush, and gives them all up at one more (their rows come back once after a restart)', () => {
    const p = readBackMany(1);
    assert.equal(p.expireTtl(110), MAX_PENDING, 'rows 2 to 1,000,001 (born 0), read back, expire: their deletes wait');
    p.flushSpool();
    assert.deepEqual(pending(p), [MAX_PENDING, MAX_PENDING * (1 + SPOOL_ROW_OVERHEAD_BYTES)], 'refused, kept: a million');
    assert.equal(p.expireTtl(160), 1, 'the last row (born 50)');
    p.flushSpool();
    assert.deepEqual(pending(p), [0, 0], 'refused again, one more than a million: given up');
    assert.equal(p.totals().spoolFailures, 2);
    totalsBalance(p);
  });

  it('with two groups, keeps exactly a million releases the spool refuses for the next flush, and gives them all up at one more', () => {
    const groups = () => [{ name: 'a', selects: () => true }, { name: 'b', selects: () => true }];
    const p = readBackMany(0b11, { groups }, 'a'); // rows owed by a and b; only a reads them back
    assert.deepEqual(p.groups().map((g) => [g.name, g.index]), [['a', 0], ['b', 1]]);
    assert.equal(p.expireTtl(110), MAX_PENDING, "a's copies of rows 2 to 1,000,001 expire: b still owes the rows, a's releases wait");
    p.flushSpool();
    assert.deepEqual(pending(p), [MAX_PENDING, 0], 'refused, kept: a million');
    assert.equal(p.expireTtl(160), 1);
    p.flushSpool();
    assert.deepEqual(pending(p), [0, 0], 'refused again, one more than a million: given up');
    assert.deepEqual(p.groups().map((g) => [g.name, g.backlog, g.droppedBy.expired]), [['a', 0, MAX_PENDING + 1], ['b', MAX_PENDING + 2, 0]]);
    groupsBalance(p);
  });
});
