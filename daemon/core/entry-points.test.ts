/**
 * Exact examples of the pipeline's entry points that the property models
 * reach only loosely: a reload of each limit (ack timeout, credit, attempts,
 * memory budget, spool quota, reserved shares) and of priorities, TTL on
 * every tier with its exact boundary, acks and nacks that are ignored and
 * counted, taps counted per group, `hasRoom` at `maxStreams`, a source's
 * priority, stream names at their byte limit, the view of a stream read
 * by several groups, the spool quota against what the disk holds, and the
 * memory budget's last resort (taken-back records leave memory).
 * Found by mutation testing (docs/MUTATION.md): each of these survived a
 * planted bug before.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemorySpool } from '../spool/memory-spool.js';
import { SPOOL_ROW_OVERHEAD_BYTES, SpoolError } from '../spool/spool-port.js';
import { SickSpool } from '../../test/helpers/faulty-spool.js';
import { Pipeline, type GroupSpec, type PipelineOptions } from './pipeline.js';
import { REJECTIONS } from './pipeline-types.js';
import { RECORD_OVERHEAD_BYTES } from './record.js';
import type { StreamSpec } from './stream.js';

const spec = (s: Partial<StreamSpec> = {}): StreamSpec => ({ priority: 1, capacityRecords: 100, capacityBytes: 1 << 20, whenFull: 'spill', replay: 'fifo', backlogShare: 0.2, ttlMs: 0, ...s });
const pipeline = (o: Partial<PipelineOptions> = {}) =>
  new Pipeline({ memoryBudgetBytes: 1 << 20, maxStreams: 8, maxCredit: 100, ackTimeoutMs: 1_000, maxAttempts: 3, specFor: () => spec(), ...o });
const all = (name: string): GroupSpec => ({ name, selects: () => true });
const one = () => new Uint8Array(1);
/** [consumer, seq, attempt] of each record a dispatch sends. */
const sent = (p: Pipeline, now = 0) => p.dispatch(now).flatMap((d) => d.records.map((r) => [d.consumer.id, r.seq, r.attempt]));
const fill = (p: Pipeline, stream: string, n: number, age = (i: number) => i) => {
  for (let i = 0; i < n; i++) assert.equal(p.ingest(stream, one(), 0, age(i)), 'accepted');
};

describe('reload of the limits', () => {
  it('a shorter ack timeout applies to the next deliveries, even behind older ones with the longer deadline', () => {
    const p = pipeline();
    fill(p, 's', 3);
    p.connect(1, 'a');
    p.credit(1, 1);
    assert.deepEqual(sent(p, 0), [[1, 1, 1]]); // deadline 1,000
    p.ackTimeoutMs = 50;
    p.credit(1, 1);
    assert.deepEqual(sent(p, 10), [[1, 2, 1]]); // deadline 60
    assert.equal(p.expire(59), 0);
    assert.equal(p.expire(60), 1, 'taken back at its own deadline, not at the older record’s');
    assert.equal(p.expire(999), 0);
    assert.equal(p.expire(1_000), 1);
    p.credit(1, 1);
    assert.deepEqual(sent(p, 2_000), [[1, 1, 2]], 'the oldest first again');
    assert.equal(p.expire(2_049), 0);
    assert.equal(p.expire(2_050), 1);
  });

  it('a lower maxCredit clamps the next grants of consumers and taps', () => {
    const p = pipeline();
    fill(p, 's', 10);
    p.connect(1, 'a');
    p.connect(9, 'tap', { tap: true });
    p.maxCredit = 2;
    p.credit(1, 5);
    p.credit(9, 5);
    assert.deepEqual(sent(p), [[1, 1, 1], [1, 2, 1], [9, 1, 1], [9, 2, 1]]);
    assert.deepEqual([p.consumer(9)?.credit, p.consumer(9)?.sent], [0, 2]);
  });

  it('a lower maxAttempts drops the record at its next failed delivery', () => {
    const p = pipeline();
    fill(p, 's', 1);
    p.connect(1, 'a');
    p.credit(1, 1);
    sent(p);
    p.maxAttempts = 1;
    p.nack(1, [1]);
    assert.deepEqual([p.totals().dropped, p.groups()[0]?.droppedBy.poison], [1, 1]);
  });

  it('a smaller memory budget refuses what the old one had room for; a larger one takes it', () => {
    const cost = 1 + RECORD_OVERHEAD_BYTES;
    const p = pipeline({ specFor: (n) => spec({ priority: n === 'alarm' ? 0 : 2, whenFull: 'block' }) });
    fill(p, 'alarm', 2);
    p.memoryBudgetBytes = 2 * cost;
    assert.equal(p.ingest('routine', one(), 0, 0), 'blocked', 'the budget is full of more important records');
    p.memoryBudgetBytes = 3 * cost;
    assert.equal(p.ingest('routine', one(), 0, 0), 'accepted');
    assert.equal(p.totals().dropped, 0);
  });

  it('a smaller spool quota makes the next spill drop the oldest on disk (spool_full)', () => {
    const p = pipeline({ spool: new MemorySpool(), spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }) });
    fill(p, 's', 2); // seq 1 spilled
    p.spoolQuotaBytes = 1 + SPOOL_ROW_OVERHEAD_BYTES; // that row fills it
    assert.equal(p.ingest('s', one(), 0, 0), 'accepted');
    assert.deepEqual([p.totals().spooled, p.totals().dropped, p.groups()[0]?.droppedBy.spool_full], [1, 1, 1]);
    p.connect(1, 'a');
    p.credit(1, 5);
    assert.deepEqual(sent(p), [[1, 2, 1], [1, 3, 1]], 'seq 1 made room for seq 2 on disk');
  });

  it('a reload that lowers the budget brings what is held within it at once: the least important, oldest first (spilled, or dropped as overflow); what is in flight stays', () => {
    const cost = 1 + RECORD_OVERHEAD_BYTES;
    const p = pipeline({ spool: new MemorySpool(), spillBatchRecords: 1, specFor: (n) => spec({ priority: n === 'alarm' ? 0 : 2, whenFull: n === 'logs' ? 'drop-oldest' : 'spill' }) });
    fill(p, 'alarm', 2); // seqs 1, 2
    fill(p, 'routine', 2); // 3, 4
    fill(p, 'logs', 2); // 5, 6
    p.connect(1, 'a');
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, 1, 1]]);
    const state = () => [p.totals().heldBytes / cost, p.totals().spooled, p.groups()[0]?.droppedBy.overflow];
    p.memoryBudgetBytes = 3 * cost;
    p.reconfigure();
    assert.deepEqual(state(), [3, 2, 1], 'seqs 3 and 4 spilled, then 5 dropped: the least important, oldest first');
    p.memoryBudgetBytes = cost;
    p.reconfigure();
    assert.deepEqual(state(), [1, 3, 2], 'then 6 dropped and 2 spilled: only the record in flight is held');
    p.memoryBudgetBytes = cost - 1;
    p.reconfigure();
    assert.deepEqual(state(), [1, 3, 2], 'what is in flight stays until its ack');
    p.ack(1, [1]);
    p.memoryBudgetBytes = 1 << 20;
    p.reconfigure();
    p.credit(1, 10);
    assert.deepEqual(sent(p), [[1, 2, 1], [1, 3, 1], [1, 4, 1]], 'what was spilled comes back');
  });

  it('a ring a reload shrinks gives its oldest records at once by its policy: spilled, or dropped as overflow', () => {
    let capacityRecords = 5;
    const p = pipeline({ spool: new MemorySpool(), spillBatchRecords: 1, specFor: (n) => spec({ capacityRecords, whenFull: n === 'kept' ? 'spill' : 'drop-newest' }) });
    fill(p, 'kept', 5); // seqs 1-5
    fill(p, 'shed', 5); // 6-10
    capacityRecords = 2;
    p.reconfigure();
    const view = (name: string) => [...p.streams()].find((s) => s.name === name);
    assert.deepEqual([view('kept')?.buffered, view('kept')?.spooled, view('shed')?.buffered, view('shed')?.dropped.overflow], [2, 3, 2, 3]);
    p.connect(1, 'a');
    p.credit(1, 20);
    assert.deepEqual(sent(p).map(([, seq]) => seq).sort((a, b) => (a as number) - (b as number)), [1, 2, 3, 4, 5, 9, 10]);
  });

  it('a reload that lowers the quota drops the least important, oldest spooled records at once (spool_full)', () => {
    const row = 1 + SPOOL_ROW_OVERHEAD_BYTES;
    const p = pipeline({ spool: new MemorySpool(), spillBatchRecords: 1, specFor: (n) => spec({ capacityRecords: 1, priority: n === 'alarm' ? 0 : 2 }) });
    fill(p, 'alarm', 3); // seqs 1, 2 spilled; 3 in memory
    fill(p, 'routine', 3); // 4, 5 spilled; 6 in memory
    p.spoolQuotaBytes = 3 * row;
    p.reconfigure();
    assert.deepEqual([p.totals().spooled, p.totals().spoolBytes, p.groups()[0]?.droppedBy.spool_full], [3, 3 * row, 1], 'seq 4 dropped');
    p.spoolQuotaBytes = row;
    p.reconfigure();
    assert.deepEqual([p.totals().spooled, p.totals().spoolBytes, p.groups()[0]?.droppedBy.spool_full], [1, row, 3], 'then 5, then the alarm\'s oldest, 1');
    p.connect(1, 'a');
    p.credit(1, 10);
    assert.deepEqual(sent(p), [[1, 2, 1], [1, 3, 1], [1, 6, 1]]);
  });

  it('a stream whose priority a reload raised brings its backlog back from disk past less important records in memory', () => {
    const cost = 1 + RECORD_OVERHEAD_BYTES;
    let routine = 2;
    const p = pipeline({
      spool: new MemorySpool(),
      memoryBudgetBytes: 2 * cost,
      spillBatchRecords: 1,
      specFor: (n) => spec({ capacityRecords: n === 'routine' ? 1 : 100, priority: n === 'routine' ? routine : 1 }),
    });
    fill(p, 'routine', 2); // seq 1 spilled (a ring of one), 2 in memory
    fill(p, 'other', 1); // 3: the budget is full
    routine = 0; // its rows on disk still say 2
    p.reconfigure();
    p.connect(1, 'a');
    p.credit(1, 10);
    assert.deepEqual(sent(p), [[1, 1, 1], [1, 2, 1]], 'seq 3 went to disk to make room for seq 1');
    p.ack(1, [1, 2]);
    assert.deepEqual(sent(p), [[1, 3, 1]]);
    assert.equal(p.totals().dropped, 0);
  });

  it('after a restart the quota drops the oldest rows first across streams of one priority, from the first drop', () => {
    const row = 1 + SPOOL_ROW_OVERHEAD_BYTES;
    const spool = new MemorySpool();
    const stored = (seq: number, stream: string) => ({ seq, stream, prio: 1, ts: 0, born: 0, attempt: 0, payload: one() });
    spool.write([stored(2, 'b'), stored(3, 'b'), stored(4, 'a'), stored(5, 'a')]);
    const p = pipeline({ spool, spillBatchRecords: 1 });
    assert.equal(p.recover(), 4);
    p.spoolQuotaBytes = 3 * row;
    p.reconfigure();
    assert.deepEqual(spool.summary().map((s) => [s.stream, s.records]).sort(), [['a', 2], ['b', 1]], "b's seq 2 went, the oldest");
    p.spoolQuotaBytes = 2 * row;
    p.reconfigure();
    assert.deepEqual(spool.summary().map((s) => [s.stream, s.records]).sort(), [['a', 2]]);
  });

  it('reserved shares set on reload keep their part of the budget from other priorities', () => {
    const cost = 1 + RECORD_OVERHEAD_BYTES;
    const p = pipeline({ memoryBudgetBytes: 4 * cost, specFor: (n) => spec({ priority: n === 'alarm' ? 0 : 2, whenFull: 'drop-oldest' }) });
    fill(p, 'routine', 2);
    p.reservedShares = { 0: 0.5 };
    assert.equal(p.ingest('routine', one(), 0, 0), 'accepted');
    assert.equal(p.totals().dropped, 1, 'half the budget is kept for priority 0: the oldest routine record made room');
    fill(p, 'alarm', 2);
    assert.equal(p.totals().dropped, 1);
    p.reservedShares = {};
    assert.equal(p.ingest('routine', one(), 0, 0), 'accepted');
    assert.deepEqual([p.totals().dropped, p.totals().buffered], [2, 4]);
  });

  it('a reload that changes priorities reorders what waits', () => {
    let priority: Record<string, number> = { a: 1, b: 2 };
    const p = pipeline({ specFor: (n) => spec({ priority: priority[n] }) });
    for (let i = 0; i < 2; i++) fill(p, 'a', 1), fill(p, 'b', 1);
    priority = { a: 2, b: 1 };
    assert.deepEqual(p.reconfigure(), { added: [], removed: [] });
    p.connect(1, 'x');
    p.credit(1, 4);
    assert.deepEqual(sent(p), [[1, 2, 1], [1, 4, 1], [1, 1, 1], [1, 3, 1]]);
  });

  it("a source's priority applies from the first record that carries one, then stays", () => {
    const p = pipeline({ specFor: (n, sourcePriority) => spec({ priority: sourcePriority ?? (n === 's' ? 5 : 3) }) });
    p.ingest('s', one(), 0, 0);
    p.ingest('u', one(), 0, 0);
    const priorities = () => [...p.streams()].map((s) => [s.name, s.priority]);
    assert.deepEqual(priorities(), [['s', 5], ['u', 3]]);
    p.ingest('s', one(), 0, 0, 0);
    assert.deepEqual(priorities(), [['s', 0], ['u', 3]]);
    p.ingest('s', one(), 0, 0, 7);
    assert.deepEqual(priorities(), [['s', 0], ['u', 3]], 'the first priority a source gave stays');
    p.connect(1, 'a');
    p.credit(1, 10);
    assert.deepEqual(sent(p), [[1, 1, 1], [1, 3, 1], [1, 4, 1], [1, 2, 1]]);
  });
});

describe('TTL', () => {
  it('drops records older than the TTL from the retry tier, the ring and the replay tier, exactly at the boundary; TTL 0 keeps them', () => {
    const p = pipeline({ spool: new MemorySpool(), spillBatchRecords: 2, specFor: (n) => spec({ capacityRecords: 2, ttlMs: n === 'keep' ? 0 : 100 }) });
    fill(p, 't', 6, (i) => i * 10); // born 0, 10, ..., 50: four spilled, two in the ring
    p.ingest('keep', one(), 0, 0);
    p.connect(1, 'a');
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, 1, 1]]);
    p.nack(1, [1]); // seq 1 waits for redelivery
    assert.equal(p.expireTtl(119), 2, 'born 0 (retry) and 10 (read back): older than 119 - 100');
    assert.equal(p.expireTtl(120), 0, 'born 20 is not older than 20');
    assert.equal(p.expireTtl(155), 4);
    assert.equal(p.expireTtl(1e9), 0, 'TTL 0: kept until delivered');
    assert.deepEqual([p.groups()[0]?.droppedBy.expired, p.totals().buffered], [6, 1]);
  });

  it('drops records older than the TTL while they are only on disk', () => {
    const p = pipeline({ spool: new MemorySpool(), spillBatchRecords: 2, specFor: () => spec({ capacityRecords: 2, ttlMs: 100 }) });
    fill(p, 't', 6, (i) => i * 10);
    assert.equal(p.totals().spooled, 4);
    assert.equal(p.expireTtl(125), 3, 'born 0, 10, 20, on disk');
    assert.deepEqual([p.totals().spooled, p.totals().buffered], [1, 2]);
    assert.equal(p.expireTtl(155), 3, 'born 30 on disk, 40 and 50 in the ring');
    assert.deepEqual([p.totals().spooled, p.totals().buffered, p.totals().dropped], [0, 0, 6]);
  });
});

describe('consumers and taps', () => {
  it('acks and nacks that match no delivery are ignored and counted: unknown consumer, foreign seq, a tap, already acked', () => {
    const p = pipeline();
    fill(p, 's', 3);
    p.connect(1, 'a');
    p.connect(2, 'b');
    p.connect(9, 'tap', { tap: true });
    p.credit(1, 1);
    p.credit(9, 1);
    assert.deepEqual(sent(p), [[1, 1, 1], [9, 1, 1]]);
    assert.equal(p.ack(7, [1, 2]), 2, 'unknown consumer');
    assert.equal(p.ack(2, [1]), 1, "another consumer's delivery");
    assert.equal(p.ack(9, [1]), 1, "a tap's");
    assert.equal(p.ack(1, [1]), 0);
    assert.equal(p.ack(1, [1]), 1, 'already acked');
    assert.equal(p.nack(7, [1]), 1);
    assert.equal(p.nack(9, [2]), 1);
    assert.deepEqual([p.totals().acksIgnored, p.totals().acked], [7, 1]);
  });

  it('taps count on the group they name; a tap of no group or of an unknown one counts on none; a consumer of an unknown group is refused', () => {
    const p = pipeline({ groups: () => [all('cloud'), all('dash')] });
    const taps = () => p.groups().map((g) => [g.name, g.taps]);
    p.connect(9, 't', { tap: true, group: 'cloud' });
    p.connect(8, 't2', { tap: true });
    assert.notEqual(p.connect(7, 't3', { tap: true, group: 'nope' }), undefined);
    assert.equal(p.connect(6, 'c', { group: 'nope' }), undefined);
    assert.deepEqual([taps(), p.taps], [[['cloud', 1], ['dash', 0]], 3]);
    assert.deepEqual([p.disconnect(8), taps()], [0, [['cloud', 1], ['dash', 0]]]);
    assert.deepEqual([p.disconnect(9), taps()], [0, [['cloud', 0], ['dash', 0]]]);
    assert.deepEqual([p.disconnect(7), p.disconnect(55), p.taps], [0, 0, 0]);
    p.setWritable(55, false); // unknown: nothing to do, and no throw
  });

  it('a tap counts what it was sent and sees a record at its first delivery only', () => {
    const p = pipeline();
    fill(p, 's', 2);
    p.connect(1, 'a');
    p.connect(9, 'tap', { tap: true });
    p.credit(9, 10);
    p.credit(1, 2);
    assert.deepEqual(sent(p), [[1, 1, 1], [1, 2, 1], [9, 1, 1], [9, 2, 1]]);
    p.nack(1, [1, 2]);
    p.credit(1, 2);
    assert.deepEqual(sent(p), [[1, 1, 2], [1, 2, 2]], 'redeliveries are not offered to taps');
    assert.deepEqual([p.consumer(9)?.sent, p.consumer(9)?.credit], [2, 8]);
  });
});

describe('streams', () => {
  it('hasRoom for a stream not seen yet: refused once maxStreams unconfigured streams exist, unless the config names it', () => {
    const p = pipeline({ maxStreams: 1, configuredStream: (n) => n === 'conf' });
    assert.equal(p.hasRoom('a', 1), true);
    p.ingest('a', one(), 0, 0);
    assert.deepEqual([p.hasRoom('b', 1), p.hasRoom('conf', 1), p.hasRoom('a', 1)], [false, true, true]);
    assert.equal(p.ingest('b', one(), 0, 0), 'rejected');
    assert.equal(p.rejection, 'too_many_streams');
  });

  it('stream names are bounded in UTF-8 bytes, not characters', () => {
    const p = pipeline({ maxStreamNameBytes: 6 });
    assert.equal(p.ingest('abcdef', one(), 0, 0), 'accepted');
    assert.equal(p.ingest('abcdefg', one(), 0, 0), 'rejected');
    assert.equal(p.rejection, 'stream_name_too_long');
    assert.equal(p.ingest('ééé', one(), 0, 0), 'accepted', 'six bytes');
    assert.equal(p.ingest('éééé', one(), 0, 0), 'rejected', 'four characters, eight bytes');
  });

  it("a stream of several groups is shown as its lanes summed (acks, redeliveries, drops) and the fullest lane's tiers", () => {
    const p = pipeline({
      spool: new MemorySpool(),
      spillBatchRecords: 2,
      specFor: () => spec({ capacityRecords: 3 }),
      groups: () => [all('cloud'), { ...all('dash'), maxBacklogRecords: 6 }],
    });
    for (let i = 0; i < 7; i++) p.ingest('s', new Uint8Array(i + 1), 0, 0); // 4 spilled, sizes 1..7
    p.connect(1, 'a', { group: 'cloud' });
    p.credit(1, 2);
    sent(p);
    p.ack(1, [1]);
    p.nack(1, [2]);
    p.credit(1, 1);
    sent(p);
    // cloud: seqs 3-7 buffered (read back and the ring), seq 2 in flight again; dash: 2-4 on disk, 5-7 in the ring, seq 1 dropped (lagging).
    const [v] = [...p.streams()];
    assert.deepEqual(
      { ring: v?.ring, buffered: v?.buffered, bufferedBytes: v?.bufferedBytes, spooled: v?.spooled, spooledBytes: v?.spooledBytes, ingested: v?.ingested, acked: v?.acked, redelivered: v?.redelivered, spilled: v?.spilled, lagging: v?.dropped.lagging },
      { ring: { length: 3, bytes: 18, capacityRecords: 3, capacityBytes: 1 << 20 }, buffered: 5, bufferedBytes: 25, spooled: 3, spooledBytes: 9, ingested: 7, acked: 1, redelivered: 1, spilled: 4, lagging: 1 },
    );
    assert.deepEqual(p.groups().map((g) => [g.name, g.backlog, g.inflight, g.dropped]), [['cloud', 5, 1, 0], ['dash', 6, 0, 1]]);
  });
});

/** A memory spool that says what the disk holds as the test sets it (SQLite's pages, its WAL). */
class MeasuredSpool extends MemorySpool {
  use = { live: 0, file: 0, wal: 0, pageSize: 4096 };
  measured = 0;
  diskUse() {
    this.measured++;
    return this.use;
  }
}

describe('the spool quota bounds what the disk holds', () => {
  // One record of 1 byte is one row of 1 + SPOOL_ROW_OVERHEAD_BYTES estimated bytes; a write
  // appends to the WAL twice its bytes in pages (of which 8 bytes are the page header) plus 10
  // (index, interior pages, header, pointer map, freelist), each page with a 24-byte frame header,
  // and the database never shrinks below its file.
  const ROW = 1 + SPOOL_ROW_OVERHEAD_BYTES;
  const frames = (pageSize: number) => (Math.ceil((2 * ROW) / (pageSize - 8)) + 10) * (pageSize + 24);
  const spillOne = (use: Partial<MeasuredSpool['use']>, quota = 100_000) => {
    const spool = new MeasuredSpool();
    Object.assign(spool.use, use);
    const p = pipeline({ spool, spoolQuotaBytes: quota, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }) });
    const outcomes = [p.ingest('s', one(), 0, 0), p.ingest('s', one(), 0, 0)];
    const t = p.totals();
    return { outcomes, spooled: t.spooled, spoolBytes: t.spoolBytes, spoolFull: p.groups()[0]?.droppedBy.spool_full, walRefused: t.spoolWalRefused, measured: spool.measured };
  };
  const kept = (measured = 1) => ({ outcomes: ['accepted', 'accepted'], spooled: 1, spoolBytes: ROW, spoolFull: 0, walRefused: 0, measured });
  const refused = { outcomes: ['accepted', 'dropped'], spooled: 0, spoolBytes: 0, spoolFull: 1, walRefused: 1, measured: 1 };

  it('a spill fits while the WAL with its frames leaves room for it, to the byte', () => {
    assert.deepEqual(spillOne({ wal: 100_000 - ROW - frames(4096) }), kept());
    assert.deepEqual(spillOne({ wal: 100_000 - ROW - frames(4096) + 1 }), refused, 'refused for the WAL: counted as such');
  });

  it('the database file counts when it is larger than its rows', () => {
    assert.deepEqual(spillOne({ file: 100_000 - frames(4096) }), kept());
    assert.deepEqual(spillOne({ file: 100_000 - frames(4096) + 1 }), { ...refused, walRefused: 0 }, 'the file refused it, not the WAL');
  });

  it('a write takes whole pages of the WAL', () => {
    assert.deepEqual(spillOne({ pageSize: 16, wal: 100_000 - ROW - frames(16) }), kept());
    assert.deepEqual(spillOne({ pageSize: 16, wal: 100_000 - ROW - frames(16) + 1 }), refused);
  });

  it('the oldest row is deleted for a newcomer only while the WAL has room for that delete and the write after it', () => {
    // The database file has free pages (620 kB), the WAL is waiting for its checkpoint: the delete
    // and the write would each append their frames (one row: the same). Before the check the
    // delete ran, the write after it fitted the file's free pages, and the WAL passed the quota.
    const Q = 1_000_000;
    const walRoom = 2 * (Q / 8) + frames(4096);
    const run = (wal: number) => {
      const spool = new (class extends MeasuredSpool {
        override deleteOldest(stream: string, afterSeq: number, uptoSeq: number, n: number) {
          const d = super.deleteOldest(stream, afterSeq, uptoSeq, n);
          this.use.live -= d.payloadBytes + d.records * SPOOL_ROW_OVERHEAD_BYTES;
          return d;
        }
      })();
      Object.assign(spool.use, { file: 620_000, wal });
      const p = pipeline({ spool, spoolQuotaBytes: Q, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }) });
      p.ingest('s', one(), 0, 0);
      p.ingest('s', one(), 0, 0); // seq 1 on disk
      // Its pages and others' (what SQLite says): one more row needs the oldest to go, with its delete's frames.
      spool.use.live = Q - ROW - walRoom - frames(4096) + 1;
      const outcome = p.ingest('s', one(), 0, 0); // seq 2 to disk, seq 1 to go for it
      const t = p.totals();
      return { outcome, onDisk: spool.summary().map((s) => s.maxSeq), spoolFull: p.groups()[0]?.droppedBy.spool_full, walRefused: t.spoolWalRefused };
    };
    assert.deepEqual(run(Q - 620_000 - 2 * frames(4096)), { outcome: 'accepted', onDisk: [2], spoolFull: 1, walRefused: 0 }, 'room for both: the oldest gave way');
    assert.deepEqual(run(Q - 620_000 - 2 * frames(4096) + 1), { outcome: 'dropped', onDisk: [1], spoolFull: 1, walRefused: 1 }, 'no room for the delete: nothing deleted, the newcomer refused and counted');
  });

  it('far below the quota the disk is not measured', () => {
    assert.deepEqual(spillOne({ wal: 1e9 }, 1e9), kept(0));
    // Nothing on disk yet, one row to write: twice it and 16 MiB below the quota are far enough.
    const far = 2 * ROW + 16 * 1024 * 1024;
    assert.deepEqual(spillOne({}, far), kept(0));
    assert.deepEqual(spillOne({}, far - 1), kept(1));
  });

  it('a row written between rows already there (an older seq than one written) counts four times its bytes in pages, an appended one twice', () => {
    // Rows of 1,000 B: 1,048 estimated bytes, one page appended (2,096 of 4,088) and two between (4,192).
    const row = 1_000 + SPOOL_ROW_OVERHEAD_BYTES;
    const appended = (Math.ceil((2 * row) / 4_088) + 10) * 4_120;
    const between = (Math.ceil((4 * row) / 4_088) + 10) * 4_120;
    assert.equal(between - appended, 4_120, 'one page more');
    const Q = 1_000_000;
    const run = (wal: number) => {
      const spool = new MeasuredSpool();
      spool.use.wal = wal;
      const p = pipeline({ spool, spoolQuotaBytes: Q, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }) });
      const body = () => new Uint8Array(1_000);
      p.ingest('a', body(), 0, 0); // seq 1 in a's ring
      p.ingest('b', body(), 0, 0); // seq 2 in b's
      const b = p.ingest('b', body(), 0, 0); // seq 2 to disk: appended
      const a = p.ingest('a', body(), 0, 0); // seq 1 to disk: before seq 2, between
      return { outcomes: [b, a], onDisk: spool.summary().map((x) => [x.stream, x.maxSeq]), walRefused: p.totals().spoolWalRefused };
    };
    // Both rows then in the database; the WAL with seq 1's frames at most the quota.
    assert.deepEqual(run(Q - 2 * row - between), { outcomes: ['accepted', 'accepted'], onDisk: [['b', 2], ['a', 1]], walRefused: 0 });
    assert.deepEqual(run(Q - 2 * row - between + 1), { outcomes: ['accepted', 'dropped'], onDisk: [['b', 2]], walRefused: 1 }, 'seq 1 is refused; appended, it would have fitted');
  });

  it('a full quota drops the oldest row of the least important stream first, never a more important one', () => {
    const priority: Record<string, number> = { a: 1, b: 2, c: 2, d: 3 };
    const p = pipeline({ spool: new MemorySpool(), spoolQuotaBytes: 3 * ROW, spillBatchRecords: 1, specFor: (n) => spec({ capacityRecords: 1, priority: priority[n] }) });
    const disk = () => [...p.streams()].map((s) => [s.name, s.spooled, s.dropped.spool_full]);
    p.ingest('b', one(), 0, 0);
    p.connect(1, 'x');
    p.credit(1, 1);
    p.ack(1, [sent(p)[0]?.[1] as number]); // b is known first, its records are newer than c's
    for (const n of ['c', 'c', 'b', 'b', 'a', 'a']) p.ingest(n, one(), 0, 0); // seqs 2, 4, 6 on disk: the quota is full
    assert.deepEqual(disk(), [['b', 1, 0], ['c', 1, 0], ['a', 1, 0]]);
    p.ingest('a', one(), 0, 0);
    assert.deepEqual(disk(), [['b', 1, 0], ['c', 0, 1], ['a', 2, 0]], 'c and b are least important: c has the oldest row');
    p.ingest('a', one(), 0, 0);
    assert.deepEqual(disk(), [['b', 0, 1], ['c', 0, 1], ['a', 3, 0]]);
    p.ingest('a', one(), 0, 0);
    assert.deepEqual(disk(), [['b', 0, 1], ['c', 0, 1], ['a', 3, 1]], 'then its own oldest');
    p.ingest('d', one(), 0, 0);
    p.ingest('d', one(), 0, 0);
    assert.deepEqual(disk(), [['b', 0, 1], ['c', 0, 1], ['a', 3, 1], ['d', 0, 1]], 'a less important spill is refused');
  });
});

describe('the memory budget’s last resort', () => {
  const cost = 1 + RECORD_OVERHEAD_BYTES;
  /** 'lo' (its spec given) holds the whole budget in four taken-back records; every ring is empty when 'hi' (priority 1) sends one. */
  const takenBack = (lo: Partial<StreamSpec>, durable = false) => {
    const spool = new MemorySpool();
    const p = pipeline({ memoryBudgetBytes: 4 * cost, spool, durable, specFor: (name) => (name === 'lo' ? spec(lo) : spec()) });
    fill(p, 'lo', 4);
    if (durable) assert.equal(p.commit(), true);
    p.connect(1, 'a');
    p.credit(1, 4);
    assert.deepEqual(sent(p), [[1, 1, 1], [1, 2, 1], [1, 3, 1], [1, 4, 1]]);
    assert.equal(p.disconnect(1), 4);
    assert.equal(p.ingest('hi', one(), 0, 0), 'accepted');
    const lanes = [...p.streams()].map((s) => [s.name, s.buffered, s.ring.length, s.spooled, s.spooledBytes, s.dropped.overflow]);
    const inMemory = [...p.bufferedRecords()].map((r) => r.seq).sort((a, b) => a - b);
    return { p, spool, lanes, inMemory };
  };

  it('a less important stream’s oldest taken-back record moves to disk, with its delivery count', () => {
    const { p, spool, lanes, inMemory } = takenBack({ priority: 2 });
    assert.deepEqual([lanes, inMemory], [[['lo', 3, 0, 1, 1, 0], ['hi', 1, 1, 0, 0, 0]], [2, 3, 4, 5]]);
    assert.deepEqual(spool.summary(), [{ stream: 'lo', records: 1, payloadBytes: 1, maxSeq: 1 }]);
    p.connect(2, 'b');
    p.credit(2, 10);
    assert.deepEqual(sent(p), [[2, 5, 1], [2, 2, 2], [2, 3, 2], [2, 4, 2]], 'the more important first; seq 1 waits for room');
    p.ack(2, [5, 2, 3, 4]);
    assert.deepEqual(sent(p), [[2, 1, 2]], 'read back with the delivery it had');
  });

  it('durable: already on disk, it leaves memory once its delivery count is written there', () => {
    const { p, spool, lanes, inMemory } = takenBack({ priority: 2 }, true);
    assert.deepEqual([lanes, inMemory], [[['lo', 3, 0, 1, 1, 0], ['hi', 1, 1, 0, 0, 0]], [2, 3, 4, 5]]);
    assert.equal(p.commit(), true);
    assert.deepEqual(spool.summary(), [{ stream: 'lo', records: 4, payloadBytes: 4, maxSeq: 4 }, { stream: 'hi', records: 1, payloadBytes: 1, maxSeq: 5 }]);
    p.connect(2, 'b');
    p.credit(2, 10);
    assert.deepEqual(sent(p), [[2, 5, 1], [2, 2, 2], [2, 3, 2], [2, 4, 2]]);
    p.ack(2, [5, 2, 3, 4]);
    p.flushSpool();
    assert.deepEqual(sent(p), [[2, 1, 2]], 'read back with the delivery it had');
  });

  it('without `spill` it is dropped as overflow', () => {
    const { p, spool, lanes, inMemory } = takenBack({ priority: 2, whenFull: 'drop-newest' });
    assert.deepEqual([lanes, inMemory], [[['lo', 3, 0, 0, 0, 1], ['hi', 1, 1, 0, 0, 0]], [2, 3, 4, 5]]);
    assert.deepEqual([spool.summary(), p.totals().dropped], [[], 1]);
  });

  it('a more important stream’s records stay: the newcomer goes to disk instead', () => {
    const { p, spool, lanes, inMemory } = takenBack({ priority: 0 });
    assert.deepEqual([lanes, inMemory], [[['lo', 4, 0, 0, 0, 0], ['hi', 0, 0, 1, 1, 0]], [1, 2, 3, 4]]);
    assert.deepEqual([spool.summary(), p.totals().dropped], [[{ stream: 'hi', records: 1, payloadBytes: 1, maxSeq: 5 }], 0]);
  });
});

describe('ingest and the state the groups share, exactly', () => {
  const two = { groups: () => [all('a'), all('b')] };

  it('a fresh pipeline reports a healthy spool; an error of the spool that is not a spool failure (a bug) is thrown, not counted', () => {
    const t = pipeline({ spool: new MemorySpool() }).totals();
    assert.deepEqual([t.spoolFailing, t.spoolFailures, t.lastSpoolError, t.spoolWalRefused], [false, 0, '', 0]);
    class Buggy extends MemorySpool {
      override write(): void {
        throw new TypeError('a bug, not a full disk');
      }
    }
    const p = pipeline({ spool: new Buggy(), spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }) });
    assert.equal(p.ingest('s', one(), 0, 0), 'accepted');
    assert.throws(() => p.ingest('s', one(), 0, 0), TypeError, 'the spill hit the bug');
    assert.deepEqual([p.totals().spoolFailing, p.totals().spoolFailures, p.totals().lastSpoolError], [false, 0, '']);
  });

  it('memory mode (not durable): nothing is uncommitted and a commit writes nothing, on the fast and the slow ingest path, with one group or two', () => {
    for (const groups of [{}, two]) {
      const spool = new MemorySpool();
      const p = pipeline({ ...groups, spool, specFor: () => spec({ capacityRecords: 2, whenFull: 'drop-oldest' }) });
      fill(p, 's', 3); // the third the slow way: the ring is full
      assert.equal(p.uncommitted, 0);
      assert.equal(p.commit(), true);
      assert.deepEqual([spool.summary(), p.totals().spoolBytes, p.totals().buffered], [[], 0, 2]);
    }
  });

  it('durable: a commit after a reload removed every group writes nothing and says the records are safe', () => {
    let groups: GroupSpec[] = [all('a')];
    const spool = new MemorySpool();
    const p = pipeline({ spool, durable: true, groups: () => groups });
    p.recover();
    fill(p, 's', 1);
    assert.equal(p.uncommitted, 1);
    groups = [];
    assert.deepEqual(p.reconfigure(), { added: [], removed: [{ name: 'a', consumers: [], released: 1 }] });
    assert.equal(p.commit(), true);
    assert.deepEqual([spool.summary(), p.uncommitted], [[], 0]);
  });

  it('hasRoom asks the lanes of the groups that select the stream, made yet or not, and without groups only says yes', () => {
    let groups: GroupSpec[] = [{ name: 'a', selects: (s) => s === 's' }, { name: 'b', selects: (s) => s === 't' }];
    const p = pipeline({ groups: () => groups, specFor: () => spec({ capacityRecords: 2, whenFull: 'block' }) });
    fill(p, 's', 1);
    assert.equal(p.hasRoom('s', 1), true, 'b has no lane of s');
    groups = [...groups, all('c')];
    assert.deepEqual(p.reconfigure(), { added: ['c'], removed: [] });
    assert.equal(p.hasRoom('s', 1), true, 'c selects s and has no lane of it yet');
    fill(p, 's', 1);
    assert.equal(p.hasRoom('s', 1), false, "a's ring is full");
    assert.deepEqual(p.groups().map((g) => [g.name, g.backlog]), [['a', 2], ['b', 0], ['c', 1]]);
    const none = pipeline({ groups: () => [] });
    assert.equal(none.hasRoom('s', 1), true, 'a stream not seen yet');
    fill(none, 's', 1);
    assert.equal(none.hasRoom('s', 1), true, 'a stream no group selects');
    assert.equal(none.totals().unselected, 1);
  });

  it('a record larger than the memory budget goes straight to disk only while no group that takes it holds a record of the stream in its ring', () => {
    const spool = new MemorySpool();
    const p = pipeline({ ...two, spool, memoryBudgetBytes: 100 + RECORD_OVERHEAD_BYTES });
    fill(p, 's', 1);
    p.connect(1, 'b1', { group: 'b' });
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, 1, 1]], "b's copy is in flight, a's still in its ring");
    assert.equal(p.ingest('s', new Uint8Array(200), 0, 0), 'dropped');
    assert.deepEqual(p.groups().map((g) => [g.name, g.droppedBy.overflow, g.backlog]), [['a', 1, 1], ['b', 1, 0]]);
    assert.deepEqual(spool.summary(), []);
    p.connect(2, 'a1', { group: 'a' });
    p.credit(2, 1);
    assert.deepEqual(sent(p), [[2, 1, 1]]);
    assert.equal(p.ingest('s', new Uint8Array(200), 0, 0), 'accepted', 'both rings empty: one row for both');
    assert.deepEqual(spool.summary(), [{ stream: 's', records: 1, payloadBytes: 200, maxSeq: 3 }]);
    assert.deepEqual(p.groups().map((g) => [g.name, g.droppedBy.overflow, g.backlog]), [['a', 1, 1], ['b', 1, 1]]);
  });

  it('while the spool fails, a newcomer the memory budget has no room for is dropped as spool_full, with one group or two', () => {
    const drops = (groups: Partial<PipelineOptions>) => {
      const spool = new SickSpool();
      const p = pipeline({ ...groups, spool, memoryBudgetBytes: 2 * (1 + RECORD_OVERHEAD_BYTES), specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2, whenFull: n === 'hi' ? 'spill' : 'drop-newest' }) });
      p.recover();
      fill(p, 'hi', 2);
      spool.refuseWrites = true;
      assert.equal(p.ingest('hi', one(), 0, 0), 'dropped', 'its spill refused: the spool fails from now');
      assert.equal(p.totals().spoolFailing, true);
      assert.equal(p.ingest('lo', one(), 0, 0), 'dropped', 'nothing less important to evict; lo does not spill');
      return p.groups().map((g) => [g.name, g.droppedBy.overflow, g.droppedBy.spool_full]);
    };
    assert.deepEqual(drops({}), [['default', 0, 2]]);
    assert.deepEqual(drops(two), [['a', 0, 2], ['b', 0, 2]]);
  });

  it('a group that dropped its copy as spool_full (its move to disk refused) is not written as owing the row another group writes later', () => {
    const spool = new SickSpool();
    const p = pipeline({ ...two, spool, memoryBudgetBytes: 1 + RECORD_OVERHEAD_BYTES });
    p.recover();
    fill(p, 's', 1);
    p.connect(1, 'a1', { group: 'a' });
    p.connect(2, 'b1', { group: 'b' });
    p.credit(1, 1);
    p.credit(2, 1);
    assert.deepEqual(sent(p), [[1, 1, 1], [2, 1, 1]]);
    p.nack(1, [1]);
    spool.refuseWrites = true;
    assert.equal(p.ingest('s', one(), 0, 0), 'dropped', "a's taken-back copy could not go to disk, nor the newcomer");
    assert.deepEqual(p.groups().map((g) => [g.name, g.droppedBy.spool_full, g.backlog, g.inflight]), [['a', 2, 0, 0], ['b', 1, 0, 1]]);
    spool.refuseWrites = false;
    p.nack(2, [1]);
    assert.equal(p.ingest('s', one(), 0, 0), 'accepted', "b's taken-back copy goes to disk and makes room");
    assert.deepEqual(spool.summary(), [{ stream: 's', records: 1, payloadBytes: 1, maxSeq: 1 }]);
    const q = pipeline({ ...two, spool });
    assert.equal(q.recover(), 1);
    assert.deepEqual(q.groups().map((g) => [g.name, g.recovered]), [['a', 0], ['b', 1]], 'only b owes seq 1');
  });
});

describe('hasRoom after a reload, exactly', () => {
  it('hasRoom does not ask the lane of a group that no longer selects the stream, however full its ring', () => {
    let groups: GroupSpec[] = [all('a'), all('b')];
    const p = pipeline({ groups: () => groups, specFor: () => spec({ capacityRecords: 1, whenFull: 'block' }) });
    fill(p, 's', 1);
    p.connect(1, 'a1', { group: 'a' });
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, 1, 1]]);
    p.ack(1, [1]);
    assert.equal(p.hasRoom('s', 1), false, "b's ring is full");
    groups = [all('a'), { name: 'b', selects: (s) => s !== 's' }];
    assert.deepEqual(p.reconfigure(), { added: [], removed: [] });
    assert.equal(p.hasRoom('s', 1), true, "b keeps its lane of s, full, and no longer selects s");
    assert.equal(p.ingest('s', one(), 0, 0), 'accepted');
    assert.deepEqual(p.groups().map((g) => [g.name, g.ingested, g.backlog]), [['a', 2, 1], ['b', 1, 1]]);
  });
});

describe('entry points at their edges', () => {
  it('recover without a spool finds nothing and leaves the pipeline as new', () => {
    const p = pipeline();
    assert.equal(p.recover(), 0);
    assert.deepEqual([[...p.streams()], p.totals().recovered, p.nextSeq], [[], 0, 1]);
    fill(p, 's', 1);
    assert.equal(p.totals().ingested, 1);
  });

  it('recover takes a stream name longer than maxStreamNameBytes from the spool (the limit was lowered since); a source may not start one', () => {
    const spool = new MemorySpool();
    spool.write([{ seq: 4, stream: 'sensor/long', prio: 1, ts: 0, born: 0, attempt: 0, payload: one() }]);
    const p = pipeline({ spool, maxStreamNameBytes: 4 });
    assert.equal(p.recover(), 1);
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.spooled]), [['sensor/long', 1]]);
    assert.equal(p.ingest('sensor/long', one(), 0, 0), 'accepted', 'a stream known is not measured again');
    assert.equal(p.ingest('sensor/new', one(), 0, 0), 'rejected');
    p.connect(1, 'a');
    p.credit(1, 5);
    assert.deepEqual(sent(p), [[1, 4, 1], [1, 5, 1]]);
  });

  it('hasRoom for a stream not seen yet at maxStreams says no when the config names no streams at all', () => {
    const p = pipeline({ maxStreams: 1 });
    fill(p, 'a', 1);
    assert.deepEqual([p.hasRoom('a', 1), p.hasRoom('b', 1)], [true, false]);
  });

  it('a grant from a consumer not connected is ignored; a nack of a seq the consumer was not sent is ignored and counted', () => {
    const p = pipeline();
    fill(p, 's', 2);
    p.credit(7, 5);
    p.connect(1, 'a');
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, 1, 1]]);
    assert.equal(p.nack(1, [2, 99]), 2);
    assert.equal(p.ack(1, [2]), 1);
    assert.deepEqual([p.totals().acksIgnored, p.consumer(1)?.inflight], [3, 1]);
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, 2, 1]], 'seq 2 was not taken back by the nack: it goes out once, first delivery');
  });

  it('without groups, a tap that names no group counts on none, one that names default on it', () => {
    const p = pipeline();
    const taps = () => p.groups().map((g) => g.taps);
    p.connect(9, 't', { tap: true });
    assert.deepEqual(taps(), [0]);
    assert.equal(p.disconnect(9), 0);
    assert.deepEqual(taps(), [0]);
    p.connect(8, 't', { tap: true, group: 'default' });
    assert.deepEqual(taps(), [1]);
    p.disconnect(8);
    assert.deepEqual([taps(), p.taps], [[0], 0]);
  });

  it('the lanes of a group not declared are none', () => {
    const p = pipeline();
    fill(p, 's', 1);
    assert.deepEqual([[...p.groupLanes('nope')], [...p.groupLanes('default')].map((s) => s.name)], [[], ['s']]);
  });

  it('durable without a spool is memory mode: nothing waits for a commit', () => {
    const p = pipeline({ durable: true, specFor: () => spec({ capacityRecords: 1, whenFull: 'drop-oldest' }) });
    fill(p, 's', 2); // the second the slow way: the ring is full
    assert.equal(p.uncommitted, 0);
    assert.equal(p.commit(), true);
  });

  it('configured streams do not take the room of maxStreams: made first, an unconfigured stream still has its slot', () => {
    const p = pipeline({ maxStreams: 1, configuredStream: (n) => n === 'cfg' });
    fill(p, 'cfg', 1);
    assert.equal(p.hasRoom('a', 1), true);
    fill(p, 'a', 1);
    assert.equal(p.ingest('b', one(), 0, 0), 'rejected');
  });

  it("a stream's spec is read when the stream is made and at a reload, not at every record", () => {
    let priority = 1;
    const p = pipeline({ specFor: () => spec({ priority }) });
    fill(p, 's', 1);
    priority = 0;
    fill(p, 's', 1);
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.priority]), [['s', 1]], 'no reload yet');
    p.reconfigure();
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.priority]), [['s', 0]]);
  });

  it('consumers are listed group by group, taps apart', () => {
    const p = pipeline({ groups: () => [all('cloud'), all('dash')] });
    p.connect(1, 'a', { group: 'dash' });
    p.connect(2, 'b', { group: 'cloud' });
    p.connect(3, 'c', { group: 'dash' });
    p.connect(9, 't', { tap: true });
    assert.deepEqual([...p.consumers()].map((c) => c.id), [2, 1, 3]);
  });

  it('a reload that changes no priority leaves the round robin where it was', () => {
    const p = pipeline();
    for (let i = 0; i < 2; i++) fill(p, 'a', 1), fill(p, 'b', 1), fill(p, 'c', 1);
    p.connect(1, 'x');
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, 1, 1]], 'a sent: b, then c, then a again');
    assert.deepEqual(p.reconfigure(), { added: [], removed: [] });
    p.credit(1, 5);
    assert.deepEqual(sent(p), [[1, 2, 1], [1, 3, 1], [1, 4, 1], [1, 5, 1], [1, 6, 1]]);
  });
});

describe('durable: the memory budget’s last resort before the commit', () => {
  it('a taken-back record dropped as overflow to make room is not written by the next commit', () => {
    const cost = 1 + RECORD_OVERHEAD_BYTES;
    const spool = new MemorySpool();
    const p = pipeline({ memoryBudgetBytes: 4 * cost, spool, durable: true, specFor: (name) => (name === 'lo' ? spec({ priority: 2, whenFull: 'drop-newest' }) : spec()) });
    fill(p, 'lo', 4);
    p.connect(1, 'a');
    p.credit(1, 4);
    assert.deepEqual(sent(p), [[1, 1, 1], [1, 2, 1], [1, 3, 1], [1, 4, 1]]);
    assert.equal(p.disconnect(1), 4);
    assert.equal(p.ingest('hi', one(), 0, 0), 'accepted', 'seq 1 (taken back) made room: dropped as overflow');
    assert.deepEqual([p.groups()[0]?.droppedBy.overflow, p.uncommitted], [1, 5]);
    assert.equal(p.commit(), true);
    assert.deepEqual(spool.summary(), [{ stream: 'lo', records: 3, payloadBytes: 3, maxSeq: 4 }, { stream: 'hi', records: 1, payloadBytes: 1, maxSeq: 5 }]);
    assert.equal(p.totals().spoolBytes, 4 * (1 + SPOOL_ROW_OVERHEAD_BYTES));
    p.connect(2, 'b');
    p.credit(2, 10);
    p.ack(2, sent(p).map(([, seq]) => seq as number));
    p.flushSpool();
    assert.deepEqual([spool.summary(), p.totals().spoolBytes], [[], 0], 'nothing left on disk once everything is acked');
  });
});

describe('the spool quota: how far below it a write is', () => {
  it('the rows already on disk count a quarter over their estimate: a write is measured from 16 MiB, twice its bytes and 1.25 times theirs below the quota', () => {
    const row = 4 + SPOOL_ROW_OVERHEAD_BYTES;
    const run = (quota: number) => {
      const spool = new MeasuredSpool();
      const p = pipeline({ spool, spoolQuotaBytes: quota, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }) });
      for (let i = 0; i < 3; i++) assert.equal(p.ingest('s', new Uint8Array(4), 0, 0), 'accepted'); // seq 1 to disk, then seq 2 beside its row
      return [p.totals().spooled, spool.measured];
    };
    const far = 1.25 * row + 2 * row + 16 * 1024 * 1024;
    assert.deepEqual(run(far), [2, 0]);
    assert.deepEqual(run(far - 1), [2, 1], 'measured for seq 2, not for seq 1');
  });
});

describe('the spool quota: the file and the WAL beside it', () => {
  it('a write the database file alone leaves room for, to the byte, is refused for the WAL while the WAL waits for its checkpoint', () => {
    const row = 1 + SPOOL_ROW_OVERHEAD_BYTES;
    const frames = (Math.ceil((2 * row) / (4_096 - 8)) + 10) * (4_096 + 24);
    const run = (use: Partial<MeasuredSpool['use']>) => {
      const spool = new MeasuredSpool();
      Object.assign(spool.use, use);
      const p = pipeline({ spool, spoolQuotaBytes: 100_000, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }) });
      const outcomes = [p.ingest('s', one(), 0, 0), p.ingest('s', one(), 0, 0)];
      return { outcomes, spooled: p.totals().spooled, walRefused: p.totals().spoolWalRefused };
    };
    assert.deepEqual(run({ file: 100_000 - frames }), { outcomes: ['accepted', 'accepted'], spooled: 1, walRefused: 0 });
    assert.deepEqual(run({ file: 100_000 - frames, wal: 1 }), { outcomes: ['accepted', 'dropped'], spooled: 0, walRefused: 1 }, 'the file fits: the WAL refused it');
  });
});

describe('a reload that lowers the bounds, by priority', () => {
  it('a lower budget gives back a less important stream’s read-back records before it drops a more important ring record', () => {
    const cost = 1 + RECORD_OVERHEAD_BYTES;
    const p = pipeline({ spool: new MemorySpool(), spillBatchRecords: 1, specFor: (n) => spec({ priority: n === 'alarm' ? 0 : 3, whenFull: n === 'alarm' ? 'drop-oldest' : 'spill', capacityRecords: n === 'bulk' ? 1 : 100 }) });
    fill(p, 'bulk', 5); // seqs 1-4 spilled, 5 in the ring
    p.connect(1, 'a');
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, 1, 1]], 'the backlog read back: seqs 2-4 wait in memory');
    fill(p, 'alarm', 3); // 6-8
    assert.equal(p.totals().heldBytes, 8 * cost);
    p.memoryBudgetBytes = 6 * cost;
    p.reconfigure();
    // bulk's ring spills seq 5; then, rather than drop alarm's seq 6, bulk's read-back records go back (they are on disk).
    assert.deepEqual([p.totals().heldBytes / cost, p.totals().spooled, p.totals().dropped], [4, 4, 0]);
    p.credit(1, 20);
    assert.deepEqual(sent(p).map(([, seq]) => seq), [6, 7, 8, 2, 3], 'every alarm record kept, sent first');
  });

  it('a lower spool quota drops the least important rows until they fit, though the file is larger than the quota (its pages are handed back after)', () => {
    // Rows of 20,000 bytes (+ the row overhead). Beside the rows a write needs twice the WAL's share
    // of the quota (2 × 350,000 / 8), a transaction's WAL pages (10 × 4,120) and the frames of the
    // delete that makes room (11 + 2 pages × 4,120 at most for one row): 182,260 bytes, so 8 rows fit.
    const spool = new MeasuredSpool();
    const payload = () => new Uint8Array(20_000);
    const p = pipeline({ spool, spoolQuotaBytes: 1 << 20, spillBatchRecords: 1, specFor: (n) => spec({ priority: n === 'high' ? 0 : 3, capacityRecords: 1 }) });
    for (let i = 0; i < 6; i++) assert.equal(p.ingest('low', payload(), 0, i), 'accepted');
    for (let i = 0; i < 6; i++) assert.equal(p.ingest('high', payload(), 0, i), 'accepted');
    assert.equal(p.totals().spooled, 10);
    spool.use.file = 2_000_000; // free pages not handed back yet
    p.spoolQuotaBytes = 350_000;
    p.reconfigure();
    const dropped = () => [...p.streams()].map((s) => [s.name, s.dropped.spool_full]);
    assert.deepEqual([p.totals().spooled, p.totals().spoolBytes], [8, 8 * (20_000 + SPOOL_ROW_OVERHEAD_BYTES)]);
    assert.deepEqual(dropped(), [['low', 2], ['high', 0]], 'the two oldest rows of the least important stream');
    p.reconfigure();
    assert.equal(p.totals().spooled, 8, 'what fits stays');
    p.connect(1, 'a');
    p.credit(1, 20);
    assert.deepEqual(sent(p).map(([, seq]) => seq), [7, 8, 9, 10, 11, 12, 3, 4, 5, 6], 'high first, then low from its third row');
  });
});

describe('the quota drops the oldest rows across streams of one priority', () => {
  it('after a drop a backlog is judged by where its next row starts, not by the last seq dropped (helper 21’s find)', () => {
    const spool = new MemorySpool();
    const p = pipeline({ spool, spoolQuotaBytes: 4 * (1 + SPOOL_ROW_OVERHEAD_BYTES), spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }) });
    for (const s of ['x', 'y', 'y', 'y', 'x', 'x']) assert.equal(p.ingest(s, one(), 0, 0), 'accepted');
    // On disk, the quota full: x 1, 5; y 2, 3. Rings: x 6, y 4.
    assert.equal(p.ingest('y', one(), 0, 0), 'accepted'); // y 4 to disk: x 1 (the oldest) goes
    assert.equal(p.ingest('y', one(), 0, 0), 'accepted'); // y 7 to disk: y 2 goes, older than x 5
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.dropped.spool_full]), [['x', 1], ['y', 1]]);
    p.connect(1, 'a');
    p.credit(1, 50);
    assert.deepEqual(sent(p).map(([, seq]) => seq), [5, 3, 6, 4, 7, 8]);
  });
});

describe('mutants of the 2026-12-04 run (non-spool-tier)', () => {
  it('a dispatch while nothing waits changes no share: what consumers were owed while the backlog could not be read outlasts a maxCredit lowered and raised around it', () => {
    const spool = new SickSpool();
    const p = pipeline({ spool, spillBatchRecords: 1, specFor: (n) => spec({ capacityRecords: n === 's' ? 1 : 100, ttlMs: n === 's' ? 100 : 0 }) });
    p.recover();
    fill(p, 's', 5); // seqs 1-4 on disk, 5 in the ring (FIFO: behind them)
    spool.unreadable = true;
    p.connect(1, 'a');
    p.connect(2, 'b');
    p.credit(1, 5);
    p.credit(2, 5);
    assert.deepEqual([sent(p), sent(p)], [[], []], 'nothing can be read: each is owed 2.5 a dispatch, up to its credit (5)');
    p.maxCredit = 1;
    assert.equal(p.expireTtl(1_000), 5);
    assert.deepEqual(sent(p), [], 'nothing waits: what each is owed stays 5, though each may take 1 now');
    p.maxCredit = 100;
    spool.unreadable = false;
    fill(p, 'r', 4); // 6-9
    assert.deepEqual(sent(p), [[1, 6, 1], [1, 7, 1], [1, 8, 1], [1, 9, 1]], 'a is owed its whole credit and comes first: all four');
  });

  it("a group added by the reload that removes another does not take the removed group's bit: the spool map still names it until it is written, and writing it releases that bit's rows", () => {
    const spool = new SickSpool();
    spool.setGroupBits(new Map()); // a new file: no group has a bit yet
    let groups: GroupSpec[] = [all('a'), all('b')];
    const p = pipeline({ spool, spillBatchRecords: 1, groups: () => groups, specFor: () => spec({ capacityRecords: 1 }) });
    p.recover(); // the map written: a 0, b 1
    groups = [all('a'), all('c')];
    spool.refuseBits = true;
    assert.deepEqual(p.reconfigure(), { added: ['c'], removed: [{ name: 'b', consumers: [], released: 0 }] });
    assert.deepEqual(p.groups().map((g) => [g.name, g.index]), [['a', 0], ['c', 2]]);
    fill(p, 's', 2); // seq 1 to disk, owed by a and c
    spool.refuseBits = false;
    p.flushSpool(); // the map written now: the rows of b's bit released first
    assert.deepEqual([...spool.groupBits()], [['a', 0], ['c', 2]]);
    p.connect(1, 'c1', { group: 'c' });
    p.credit(1, 5);
    assert.deepEqual(sent(p), [[1, 1, 1], [1, 2, 1]], "c's row is still c's");
    assert.equal(p.groups()[1]?.dropped, 0);
  });

  it("a reload that adds a group while the spool's group map cannot be read is refused, the spool's error chained as its cause", () => {
    const spool = new SickSpool();
    let groups: GroupSpec[] = [all('a')];
    const p = pipeline({ spool, groups: () => groups });
    spool.unreadableBits = true;
    groups = [all('a'), all('b')];
    assert.throws(
      () => p.reconfigure(),
      (err: Error) => err.message === "groups not changed: the spool's group map cannot be read (spool read failed: SQLITE_IOERR_READ)" && err.cause instanceof SpoolError && err.cause.message === 'spool read failed: SQLITE_IOERR_READ',
    );
    assert.deepEqual(p.groups().map((g) => g.name), ['a']);
  });

  it('while the spool fails, a newcomer dropped as spool_full with no write tried is not counted as refused for the WAL, with one group or two', () => {
    const drops = (groups: Partial<PipelineOptions>) => {
      const spool = new SickSpool();
      const p = pipeline({ ...groups, spool, memoryBudgetBytes: 2 * (1 + RECORD_OVERHEAD_BYTES), specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2, whenFull: n === 'hi' ? 'spill' : 'drop-newest' }) });
      p.recover();
      fill(p, 'hi', 2);
      spool.refuseWrites = true;
      assert.equal(p.ingest('hi', one(), 0, 0), 'dropped', 'its spill refused by the write, not for the WAL');
      assert.equal(p.ingest('lo', one(), 0, 0), 'dropped', 'nothing less important to evict: no write tried');
      return [p.totals().spoolWalRefused, p.groups().map((g) => g.droppedBy.spool_full)];
    };
    assert.deepEqual(drops({}), [0, [2]]);
    assert.deepEqual(drops({ groups: () => [all('a'), all('b')] }), [0, [2, 2]]);
  });

  it("with two groups, a lane whose spill the spool refused (not for the WAL) drops the newcomer as spool_full, not counted as refused for the WAL", () => {
    const spool = new SickSpool();
    const p = pipeline({ spool, spillBatchRecords: 1, groups: () => [all('a'), all('b')], specFor: () => spec({ capacityRecords: 1 }) });
    p.recover();
    fill(p, 's', 1);
    spool.refuseWrites = true;
    assert.equal(p.ingest('s', one(), 0, 0), 'dropped');
    assert.deepEqual([p.totals().spoolWalRefused, p.groups().map((g) => g.droppedBy.spool_full)], [0, [1, 1]]);
  });

  it("a shed passes over a lane's empty span within that lane: a less important lane whose spool fails is asked once", () => {
    const spool = new (class extends MemorySpool {
      override deleteOldest(stream: string, afterSeq: number, uptoSeq: number, n: number) {
        if (stream === 'bad') throw new SpoolError('spool delete failed: SQLITE_CORRUPT');
        return super.deleteOldest(stream, afterSeq, uptoSeq, n);
      }
    })();
    const row = (seq: number, stream: string) => ({ seq, stream, prio: 1, ts: 0, born: 0, attempt: 0, payload: one() });
    spool.write([row(2, 's'), row(3, 's'), row(4, 'bad')]);
    let bound = 100;
    const p = pipeline({ spool, spillBatchRecords: 1, groups: () => [{ ...all('default'), maxBacklogRecords: bound }], specFor: (n) => spec({ capacityRecords: 1, priority: n === 'bad' ? 3 : 1, ttlMs: n === 's' ? 10 : 0 }) });
    assert.equal(p.recover(), 3);
    fill(p, 's', 2, () => 100); // seq 5 to disk (a second span of s), 6 in the ring
    assert.equal(p.expireTtl(50), 2, "s's recovered rows: its first span is left empty");
    bound = 2;
    p.reconfigure();
    const lanes = () => [...p.groupLanes('default')].map((s) => [s.name, s.spooled, s.buffered, s.dropped.lagging]);
    assert.deepEqual([p.totals().spoolFailures, lanes()], [1, [['s', 0, 1, 1], ['bad', 1, 0, 0]]], "bad's delete failed once; s gave its seq 5 from its second span");
  });

  it('between groups whose rings share their oldest record, the first in config order moves it first: its spill batch takes its later records along, and what that frees may be enough', () => {
    const cost = 1 + RECORD_OVERHEAD_BYTES;
    let groups: GroupSpec[] = [all('a'), all('b')];
    const p = pipeline({ spool: new MemorySpool(), spillBatchRecords: 2, memoryBudgetBytes: 2 * cost, groups: () => groups, specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2 }) });
    p.recover();
    fill(p, 'x', 1); // seq 1, for a and b
    groups = [all('a'), { name: 'b', selects: (s) => s !== 'x' }];
    p.reconfigure();
    fill(p, 'x', 1); // seq 2, for a only
    assert.equal(p.ingest('hi', one(), 0, 0), 'accepted');
    const x = (g: string) => [...p.groupLanes(g)].filter((s) => s.name === 'x').map((s) => [s.buffered, s.spooled]);
    assert.deepEqual([p.totals().heldBytes / cost, x('a'), x('b')], [2, [[0, 2]], [[1, 0]]], "a's spill of seqs 1 and 2 freed seq 2: b keeps seq 1 in memory");
  });

  it('rejection is one of the reasons, before any ingest was rejected too', () => {
    const p = pipeline();
    assert.ok((REJECTIONS as readonly string[]).includes(p.rejection));
  });

  it('a reload leaves a ring full to the byte as it is; a ring above its bytes gives its oldest', () => {
    let capacityBytes = 4;
    const p = pipeline({ specFor: () => spec({ capacityBytes, whenFull: 'drop-oldest' }) });
    fill(p, 's', 3);
    capacityBytes = 3;
    p.reconfigure();
    assert.deepEqual([p.totals().buffered, p.totals().dropped], [3, 0]);
    capacityBytes = 2;
    p.reconfigure();
    assert.deepEqual([p.totals().buffered, p.totals().dropped], [2, 1]);
    p.connect(1, 'a');
    p.credit(1, 5);
    assert.deepEqual(sent(p), [[1, 2, 1], [1, 3, 1]]);
  });
});
