/**
 * Exact examples of consumer groups: one payload held for several groups,
 * each group's own delivery state, `unknown_group`, taps, `lagging` drops
 * bounded to one group, one spool row read back by each group, reload
 * (add, remove, reselect) and restart.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemorySpool } from '../spool/memory-spool.js';
import { SPOOL_ROW_OVERHEAD_BYTES } from '../spool/spool-port.js';
import { SickSpool } from '../../test/helpers/faulty-spool.js';
import { Pipeline, type GroupSpec, type PipelineOptions } from './pipeline.js';
import { RECORD_OVERHEAD_BYTES } from './record.js';
import type { StreamSpec } from './stream.js';

const spec = (s: Partial<StreamSpec> = {}): StreamSpec => ({ priority: 1, capacityRecords: 100, capacityBytes: 1 << 20, whenFull: 'spill', replay: 'fifo', backlogShare: 0.2, ttlMs: 0, ...s });
const all = (name: string, o: Partial<GroupSpec> = {}): GroupSpec => ({ name, selects: () => true, ...o });
const pipeline = (groups: GroupSpec[] | undefined, o: Partial<PipelineOptions> = {}) =>
  new Pipeline({ memoryBudgetBytes: 1 << 20, maxStreams: 8, maxCredit: 100, ackTimeoutMs: 1_000, maxAttempts: 3, specFor: () => spec(), ...(groups === undefined ? {} : { groups: () => groups }), ...o });
const body = (n = 10) => new Uint8Array(n);
const sent = (p: Pipeline, now = 0) => p.dispatch(now).map((d) => [d.consumer.id, d.records.map((r) => [r.seq, r.attempt])]);
const group = (p: Pipeline, name: string) => p.groups().find((g) => g.name === name);
const balanced = (p: Pipeline) => {
  for (const g of p.groups()) assert.equal(g.recovered + g.ingested, g.acked + g.dropped + g.backlog + g.inflight, `conservation in ${g.name}`);
};

describe('groups', () => {
  it('without groups there is one group default, and any other name is unknown', () => {
    const p = pipeline(undefined);
    assert.ok(p.connect(1, 'c'));
    assert.equal(p.connect(2, 'c', { group: 'cloud' }), undefined);
    assert.deepEqual(p.groups().map((g) => g.name), ['default']);
    const q = pipeline([all('cloud')]);
    assert.equal(q.connect(1, 'c'), undefined, 'default is unknown when groups are declared without it');
    const only = pipeline([all('cloud', { selects: (s) => s === 'a' })]);
    assert.equal(only.ingest('b', body(), 0, 0), 'accepted', 'a source is not held back for a stream nobody selects');
    only.ingest('a', body(), 0, 0);
    assert.deepEqual(only.groups().map((g) => [g.name, g.ingested, g.backlog]), [['cloud', 1, 1]], 'one group that does not select a stream gets none of it');
    assert.equal(only.totals().unselected, 1, 'counted, not silent');
  });

  it('holds one payload for three groups, each with its own attempts, acks and memory released with the last', () => {
    const one = pipeline(undefined);
    const three = pipeline([all('cloud'), all('archive'), all('dash')]);
    for (const p of [one, three]) for (let i = 0; i < 10; i++) p.ingest('s', body(100), i, i);
    assert.equal(three.totals().heldBytes, one.totals().heldBytes, 'one copy in memory');
    assert.equal(three.totals().heldBytes, 10 * (100 + RECORD_OVERHEAD_BYTES));
    three.connect(1, 'a', { group: 'cloud' });
    three.connect(2, 'b', { group: 'archive' });
    three.connect(3, 'c', { group: 'dash' });
    three.credit(1, 2);
    three.credit(2, 1);
    assert.deepEqual(sent(three), [[1, [[1, 1], [2, 1]]], [2, [[1, 1]]]]);
    three.nack(1, [1]);
    three.credit(1, 1);
    assert.deepEqual(sent(three), [[1, [[1, 2]]]], "cloud's second delivery of seq 1; archive's stays its first");
    three.ack(1, [1, 2]);
    three.ack(2, [1]);
    assert.equal(three.totals().heldBytes, 10 * (100 + RECORD_OVERHEAD_BYTES), 'dash still owes seq 1: it stays');
    three.credit(3, 1);
    assert.deepEqual(sent(three), [[3, [[1, 1]]]]);
    three.ack(3, [1]);
    assert.equal(three.totals().heldBytes, 9 * (100 + RECORD_OVERHEAD_BYTES), 'freed with the last group');
    assert.deepEqual(
      three.groups().map((g) => [g.name, g.acked, g.backlog, g.inflight, g.redelivered]),
      [['cloud', 2, 8, 0, 1], ['archive', 1, 9, 0, 0], ['dash', 1, 9, 0, 0]],
    );
    assert.equal(three.ack(3, [1]), 1, 'an ack in another group does not count twice');
    balanced(three);
  });

  it('a tap sees first deliveries within its credit, at most once, holds nothing, and its acks are ignored', () => {
    const p = pipeline([all('cloud'), all('archive')]);
    p.connect(1, 'a', { group: 'cloud' });
    p.connect(2, 'b', { group: 'archive' });
    p.connect(9, 'tap', { tap: true });
    p.credit(9, 2);
    for (let i = 0; i < 3; i++) p.ingest('s', body(), i, i);
    p.credit(1, 3);
    p.credit(2, 3);
    const out = sent(p);
    assert.deepEqual(out, [[1, [[1, 1], [2, 1], [3, 1]]], [9, [[1, 1], [2, 1]]], [2, [[1, 1], [2, 1], [3, 1]]]], 'seq 3 missed (no credit); archive does not show it again');
    assert.equal(p.taps, 1);
    assert.equal(p.ack(9, [1, 2]), 2);
    assert.equal(p.totals().acksIgnored, 2);
    p.credit(9, 5);
    p.nack(1, [3]);
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, [[3, 2]]]], 'a redelivery is not shown to taps');
  });

  it('a tap is not shown again a record one group delivered and another read back from the spool; with one group, a record read back at its first delivery is shown', () => {
    const p = pipeline([all('cloud'), all('archive')], { spool: new MemorySpool(), specFor: () => spec({ capacityRecords: 2 }), spillBatchRecords: 2 });
    p.connect(1, 'a', { group: 'cloud' });
    p.connect(2, 'b', { group: 'archive' });
    p.connect(9, 'tap', { tap: true });
    p.credit(9, 10);
    for (let i = 0; i < 2; i++) p.ingest('s', body(), i, i);
    p.credit(1, 2);
    assert.deepEqual(sent(p), [[1, [[1, 1], [2, 1]]], [9, [[1, 1], [2, 1]]]]);
    p.ingest('s', body(), 2, 2); // archive's ring is full: its 1 and 2 go to disk
    assert.deepEqual(p.groups().map((g) => [g.name, g.backlog, g.inflight]), [['cloud', 1, 2], ['archive', 3, 0]]);
    p.credit(2, 3);
    assert.deepEqual(sent(p), [[2, [[1, 1], [2, 1], [3, 1]]], [9, [[3, 1]]]], 'archive read 1 and 2 back: the tap saw them when cloud sent them');
    assert.deepEqual([p.consumer(9)?.sent, p.consumer(9)?.credit], [3, 7]);

    const one = pipeline(undefined, { spool: new MemorySpool(), specFor: () => spec({ capacityRecords: 2 }), spillBatchRecords: 2 });
    for (let i = 0; i < 3; i++) one.ingest('s', body(), i, i); // 1 and 2 on disk, never sent
    one.connect(1, 'a');
    one.connect(9, 'tap', { tap: true });
    one.credit(9, 10);
    one.credit(1, 3);
    assert.deepEqual(sent(one), [[1, [[1, 1], [2, 1], [3, 1]]], [9, [[1, 1], [2, 1], [3, 1]]]], 'read back at their first delivery: shown');
  });

  it('maxBacklogRecords drops the lagging group’s oldest, least important records for it only', () => {
    const p = pipeline([all('cloud'), all('dash', { maxBacklogRecords: 3 })], { specFor: (n) => spec({ priority: n === 'alarm' ? 0 : 2 }) });
    for (let i = 0; i < 4; i++) p.ingest('bulk', body(), i, i);
    p.ingest('alarm', body(), 9, 9);
    assert.deepEqual(
      p.groups().map((g) => [g.name, g.backlog, g.droppedBy.lagging]),
      [['cloud', 5, 0], ['dash', 3, 2]],
    );
    p.connect(1, 'd', { group: 'dash' });
    p.credit(1, 10);
    assert.deepEqual(sent(p), [[1, [[5, 1], [3, 1], [4, 1]]]], 'dash lost bulk 1 and 2, kept the alarm');
    assert.deepEqual([...p.groupStreams()].map((s) => [s.group, s.stream, s.dropped.lagging]), [['cloud', 'bulk', 0], ['cloud', 'alarm', 0], ['dash', 'bulk', 2], ['dash', 'alarm', 0]]);
    balanced(p);
  });

  it('a full memory budget evicts across groups: the least important record of any group, then the oldest', () => {
    const evicted = (yPriority: number, order: string) => {
      const spool = new MemorySpool();
      const p = pipeline([all('a', { selects: (s) => s === 'x' }), all('b', { selects: (s) => s === 'y' })], {
        spool,
        memoryBudgetBytes: 3 * (10 + RECORD_OVERHEAD_BYTES),
        spillBatchRecords: 1,
        specFor: (n) => spec({ priority: n === 'y' ? yPriority : 2 }),
      });
      for (const s of order) assert.equal(p.ingest(s, body(), 0, 0), 'accepted');
      return { memory: [...p.bufferedRecords()].map((r) => `${r.stream.name}${r.seq}`).sort(), spooled: spool.summary().map((r) => [r.stream, r.maxSeq]) };
    };
    assert.deepEqual(evicted(2, 'xyxy'), { memory: ['x3', 'y2', 'y4'], spooled: [['x', 1]] }, "the same priority: the oldest, group a's x1");
    assert.deepEqual(evicted(3, 'xyxx'), { memory: ['x1', 'x3', 'x4'], spooled: [['y', 2]] }, "y less important: group b's y2, though x1 is older");
    assert.deepEqual(evicted(1, 'yxxx'), { memory: ['x3', 'x4', 'y1'], spooled: [['x', 2]] }, "y more important: group a's x2, though y1 is older");
  });

  it('a lagging group sheds its oldest tier first: records waiting for redelivery before new ones', () => {
    const p = pipeline([all('dash', { maxBacklogRecords: 2 })]);
    p.ingest('s', body(), 0, 0);
    p.ingest('s', body(), 0, 0);
    p.connect(1, 'd', { group: 'dash' });
    p.credit(1, 2);
    assert.deepEqual(sent(p), [[1, [[1, 1], [2, 1]]]]);
    p.nack(1, [1, 2]);
    p.ingest('s', body(), 0, 0);
    assert.deepEqual(p.groups().map((g) => [g.backlog, g.droppedBy.lagging]), [[2, 1]]);
    p.credit(1, 5);
    assert.deepEqual(sent(p), [[1, [[2, 2], [3, 1]]]], 'seq 1 (waiting for its second delivery) went first');
    balanced(p);
  });

  it('maxBacklogBytes alone bounds the payload bytes a group keeps, in memory and on disk', () => {
    const p = pipeline([all('cloud'), all('dash', { maxBacklogBytes: 250 })], { spool: new MemorySpool(), specFor: () => spec({ capacityRecords: 2 }), spillBatchRecords: 2 });
    for (let i = 0; i < 6; i++) p.ingest('s', body(100), i, i); // two in memory, the rest on disk
    assert.deepEqual(
      p.groups().map((g) => [g.name, g.backlog, g.droppedBy.lagging]),
      [['cloud', 6, 0], ['dash', 2, 4]],
    );
    balanced(p);
    const exact = pipeline([all('dash', { maxBacklogBytes: 300 })]);
    for (let i = 0; i < 3; i++) exact.ingest('s', body(100), i, i);
    assert.deepEqual(exact.groups().map((g) => [g.backlog, g.droppedBy.lagging]), [[3, 0]], 'a backlog of exactly the bound is kept');
  });

  it('a lagging group sheds its least important stream first, whichever it saw first', () => {
    const p = pipeline([all('dash', { maxBacklogRecords: 2 })], { specFor: (n) => spec({ priority: n === 'hi' ? 0 : 2 }) });
    for (const name of ['hi', 'lo', 'hi']) assert.equal(p.ingest(name, body(), 0, 0), 'accepted');
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.buffered, s.dropped.lagging]), [['hi', 2, 0], ['lo', 0, 1]]);
  });

  it('a new group takes the lowest bit no live group uses when every other bit is taken', () => {
    const spool = new MemorySpool();
    let groups = Array.from({ length: 31 }, (_, i) => all(`g${i}`));
    const p = pipeline(undefined, { spool, groups: () => groups });
    p.flushSpool();
    const freed = group(p, 'g5')?.index;
    assert.equal(typeof freed, 'number');
    groups = groups.filter((g) => g.name !== 'g5').concat(all('h'));
    assert.deepEqual(p.reconfigure(), { added: ['h'], removed: [{ name: 'g5', consumers: [], released: 0 }] });
    assert.equal(group(p, 'h')?.index, freed, "g5's bit, the only one free (the spool's map still names g5 for it)");
    p.flushSpool();
    assert.equal(spool.groupBits().get('h'), freed);
  });

  it("a forgotten stream's counts stay in its groups' counters, under (forgotten)", () => {
    const p = pipeline([all('cloud'), all('dash')]);
    p.ingest('a', body(), 0, 0);
    p.ingest('a', body(), 0, 0);
    p.connect(1, 'c', { group: 'cloud' });
    p.connect(2, 'd', { group: 'dash' });
    p.credit(1, 2);
    p.credit(2, 1);
    sent(p);
    p.ack(1, [1, 2]);
    p.ack(2, [1]);
    p.credit(2, 1);
    assert.deepEqual(sent(p), [[2, [[2, 1]]]]);
    p.nack(2, [2]);
    p.credit(2, 1);
    assert.deepEqual(sent(p), [[2, [[2, 2]]]]);
    p.ack(2, [2]);
    assert.deepEqual(p.forgetIdle(10_000, 0), ['a']);
    assert.deepEqual([...p.groupStreams()].map((c) => [c.group, c.stream, c.acked, c.redelivered]), [['cloud', '(forgotten)', 2, 0], ['dash', '(forgotten)', 2, 1]]);
    assert.deepEqual(p.groups().map((g) => [g.name, g.acked, g.redelivered]), [['cloud', 2, 0], ['dash', 2, 1]]);
    assert.deepEqual(p.forgotten().map((f) => [f.ingested, f.acked, f.redelivered]), [[2, 4, 1]], 'by stream: each record ingested once, acked once per group');
    balanced(p);
  });

  it('spills one row per record for two groups, and each group reads it back', () => {
    const spool = new MemorySpool();
    const p = pipeline([all('cloud'), all('archive')], { spool, specFor: () => spec({ capacityRecords: 2 }), spillBatchRecords: 4 });
    for (let i = 0; i < 6; i++) p.ingest('s', body(), i, i);
    assert.equal(spool.summary()[0]?.records, 4, 'four rows, not eight');
    assert.deepEqual(p.groups().map((g) => g.backlog), [6, 6]);
    p.connect(1, 'a', { group: 'cloud' });
    p.credit(1, 6);
    assert.deepEqual(sent(p), [[1, [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1]]]]);
    p.ack(1, [1, 2, 3, 4, 5, 6]);
    p.flushSpool();
    assert.equal(spool.summary()[0]?.records, 4, 'archive still owes the rows');
    p.connect(2, 'b', { group: 'archive' });
    p.credit(2, 6);
    assert.deepEqual(sent(p)[0]?.[1], [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1]]);
    p.ack(2, [1, 2, 3, 4, 5, 6]);
    p.flushSpool();
    assert.deepEqual(spool.summary(), [], 'deleted with the last group');
    assert.equal(p.totals().spoolBytes, 0);
  });

  it('reload: a new group starts at the next record, a removed one releases what only it held, a new selector applies to later records', () => {
    let groups = [all('cloud'), all('archive', { selects: (s) => s === 'a' })];
    const p = new Pipeline({ memoryBudgetBytes: 1 << 20, maxStreams: 8, maxCredit: 100, ackTimeoutMs: 1_000, maxAttempts: 3, specFor: () => spec(), groups: () => groups });
    p.ingest('a', body(), 0, 0);
    p.ingest('b', body(), 0, 0);
    assert.deepEqual(p.groups().map((g) => [g.name, g.ingested]), [['cloud', 2], ['archive', 1]]);
    p.connect(5, 'arch', { group: 'archive' });
    groups = [all('cloud'), all('archive'), all('dash')];
    assert.deepEqual(p.reconfigure(), { added: ['dash'], removed: [] });
    p.ingest('b', body(), 0, 0);
    assert.deepEqual(p.groups().map((g) => [g.name, g.ingested, g.backlog]), [['cloud', 3, 3], ['archive', 2, 2], ['dash', 1, 1]]);
    const held = p.totals().heldBytes;
    groups = [all('cloud'), all('dash')];
    assert.deepEqual(p.reconfigure(), { added: [], removed: [{ name: 'archive', consumers: [5], released: 2 }] });
    assert.equal(p.totals().heldBytes, held, 'cloud still holds them');
    groups = [all('dash')];
    p.reconfigure();
    assert.equal(p.totals().heldBytes, 1 * (10 + RECORD_OVERHEAD_BYTES), 'only what dash owes is left');
    balanced(p);
  });

  it('reload removes a group whose deletes of spooled rows the spool refuses: they stay counted as pending until it takes them', () => {
    const spool = new SickSpool();
    let groups = [all('cloud'), all('archive')];
    const p = pipeline(undefined, { spool, groups: () => groups, specFor: () => spec({ capacityRecords: 2 }), spillBatchRecords: 4 });
    for (let i = 0; i < 6; i++) p.ingest('s', body(), i, i);
    p.connect(1, 'a', { group: 'cloud' });
    p.credit(1, 6);
    sent(p);
    p.ack(1, [1, 2, 3, 4, 5, 6]);
    p.flushSpool();
    assert.equal(spool.summary()[0]?.records, 4, 'archive still owes the four rows');
    spool.refuseDeletes = true;
    p.connect(2, 'b', { group: 'archive' });
    p.credit(2, 6);
    sent(p);
    p.ack(2, [1, 2, 3, 4, 5, 6]);
    p.flushSpool();
    assert.equal(p.totals().spoolPendingDeletes, 4, "archive's deletes of the rows wait");
    groups = [all('cloud')];
    assert.deepEqual(p.reconfigure(), { added: [], removed: [{ name: 'archive', consumers: [2], released: 0 }] });
    const t = p.totals();
    assert.deepEqual([t.spoolPendingDeletes, t.spoolPendingDeleteBytes], [4, 4 * (10 + SPOOL_ROW_OVERHEAD_BYTES)], 'and still wait once it is removed');
    assert.equal(spool.summary()[0]?.records, 4);
    p.flushSpool();
    assert.equal(p.totals().spoolPendingDeletes, 4, 'refused again: still waiting');
    assert.equal(spool.summary()[0]?.records, 4, "archive's bit is not released from the rows while its own deletes of them wait");
    spool.refuseDeletes = false;
    p.flushSpool();
    assert.deepEqual([p.totals().spoolPendingDeletes, p.totals().spoolPendingDeleteBytes, p.totals().spoolBytes], [0, 0, 0], 'the rows’ bytes subtracted once');
    assert.deepEqual(spool.summary(), [], 'deleted once the spool takes it');
    // Bit 0 was the new spool's group default (not configured), 1 cloud's, 2 archive's.
    groups = [all('cloud'), all('dash'), all('audit')];
    p.reconfigure();
    p.flushSpool();
    assert.deepEqual([...spool.groupBits()], [['cloud', 1], ['dash', 0], ['audit', 2]], "audit gets archive's bit, free again once its rows are gone");
  });

  it('reload: a removed group releases its buffered, spooled and in-flight records, leaves the list, and the spool forgets its bit', () => {
    const spool = new MemorySpool();
    let groups = [all('cloud'), all('archive')];
    const p = pipeline(undefined, { spool, groups: () => groups, specFor: () => spec({ capacityRecords: 2 }), spillBatchRecords: 2 });
    p.ingest('s', body(), 0, 0);
    p.connect(1, 'b', { group: 'archive' });
    p.credit(1, 1);
    sent(p);
    for (let i = 1; i < 5; i++) p.ingest('s', body(), i, i); // the ring holds 2: the rest spill
    p.flushSpool();
    assert.deepEqual([...spool.groupBits()].map(([name]) => name).sort(), ['archive', 'cloud']);
    const archive = group(p, 'archive');
    assert.deepEqual([archive?.inflight, archive?.backlog], [1, 4]);
    groups = [all('cloud')];
    assert.deepEqual(p.reconfigure(), { added: [], removed: [{ name: 'archive', consumers: [1], released: 5 }] });
    assert.deepEqual(p.groups().map((g) => g.name), ['cloud']);
    p.flushSpool();
    assert.deepEqual([...spool.groupBits()].map(([name]) => name), ['cloud'], 'the removed group is forgotten by the spool too');
    balanced(p);
  });

  it("a spool that cannot read or write the groups' bits: counted as a failure each time, written once it can, then not again", () => {
    const spool = new SickSpool({ refuseBits: true });
    const p = pipeline([all('cloud'), all('archive')], { spool });
    const failures = () => [p.totals().spoolFailures, p.totals().spoolFailing, p.totals().lastSpoolError];
    p.flushSpool();
    assert.deepEqual(failures(), [1, true, 'spool write failed: SQLITE_FULL']);
    assert.deepEqual([...spool.groupBits()], [['default', 0]], 'not written: what a new spool says');
    spool.refuseBits = false;
    spool.unreadableBits = true;
    p.flushSpool();
    assert.deepEqual(failures(), [2, true, 'spool read failed: SQLITE_IOERR_READ'], 'the bits it knows are read first');
    spool.unreadableBits = false;
    p.flushSpool();
    assert.equal(spool.bitWrites, 1);
    assert.deepEqual([...spool.groupBits()].map(([name]) => name).sort(), ['archive', 'cloud']);
    p.ingest('s', body(), 0, 0);
    p.flushSpool();
    assert.equal(spool.bitWrites, 1, 'written once: nothing changed since');
    p.reconfigure();
    p.flushSpool();
    assert.equal(spool.bitWrites, 1, 'a reload that adds and removes no group writes nothing');
    assert.equal(p.totals().spoolFailures, 2);
  });

  it("a reload that adds a group while the spool's group map is not written yet and cannot be read is refused before anything changes", () => {
    const spool = new SickSpool({ refuseBits: true });
    let groups = [all('cloud')];
    const p = pipeline(undefined, { spool, groups: () => groups });
    p.ingest('s', body(), 0, 0);
    p.flushSpool(); // the map could not be written
    spool.unreadableBits = true;
    groups = [all('cloud'), all('archive')];
    assert.throws(() => p.reconfigure(), /^Error: groups not changed: the spool's group map cannot be read \(spool read failed: SQLITE_IOERR_READ\)$/);
    assert.deepEqual(p.groups().map((g) => [g.name, g.backlog]), [['cloud', 1]]);
    spool.unreadableBits = false;
    spool.refuseBits = false;
    assert.deepEqual(p.reconfigure(), { added: ['archive'], removed: [] });
    p.flushSpool();
    assert.deepEqual([...spool.groupBits()].map(([name]) => name).sort(), ['archive', 'cloud']);
  });

  it('a removed group whose rows the spool cannot release now: counted, retried at each flush, its bit given to no one until then', () => {
    const spool = new SickSpool();
    let groups = [all('cloud'), all('archive')];
    const p = pipeline(undefined, { spool, groups: () => groups, specFor: () => spec({ capacityRecords: 2 }), spillBatchRecords: 2 });
    for (let i = 0; i < 4; i++) p.ingest('s', body(), i, i);
    p.flushSpool();
    const bits = new Map(spool.groupBits());
    spool.refuseReleases = true;
    groups = [all('cloud')];
    p.reconfigure();
    assert.equal(p.totals().spoolFailures, 1);
    p.flushSpool();
    assert.equal(p.totals().spoolFailures, 2, 'retried at the flush, refused again');
    groups = [all('cloud'), all('dash')];
    p.reconfigure();
    p.flushSpool();
    assert.notEqual(new Map(spool.groupBits()).get('dash'), bits.get('archive'), "dash does not get a bit rows still carry for archive");
    assert.equal(p.totals().spoolFailures, 4, "dash's own bit is released first (refused), and the flush retries archive's (refused)");
    spool.refuseReleases = false;
    p.flushSpool();
    assert.equal(p.totals().spoolFailures, 4, 'taken at last');
    assert.equal(p.totals().spoolFailing, false, 'and the spool is healthy again (/healthz)');
  });

  it('refuses more than 31 groups, saying how many it got', () => {
    const groups = Array.from({ length: 32 }, (_, i) => all(`g${i}`));
    assert.throws(() => pipeline(groups), { name: 'RangeError', message: 'at most 31 groups, got 32' });
    assert.equal(pipeline(groups.slice(0, 31)).groups().length, 31);
  });

  it('restart: each group recovers what it owes; a group no longer configured is released at start', () => {
    const spool = new MemorySpool();
    const p = pipeline([all('cloud'), all('archive')], { spool });
    for (let i = 0; i < 3; i++) p.ingest('s', body(), i, i);
    p.connect(1, 'a', { group: 'cloud' });
    p.credit(1, 1);
    sent(p);
    p.ack(1, [1]);
    p.persist();
    const q = pipeline([all('archive')], { spool, firstSeq: p.nextSeq });
    assert.equal(q.recover(), 3, 'rows owed by archive (cloud released at start)');
    assert.deepEqual(q.releasedAtStart, [{ group: 'cloud', records: 2 }]);
    assert.equal(q.totals().spoolBytes, 3 * (10 + SPOOL_ROW_OVERHEAD_BYTES), "cloud's release freed no row: archive owes all three");
    // Rows only the released group owed go, and their bytes with them.
    const spoolR = new MemorySpool();
    const r = pipeline([all('cloud'), all('archive')], { spool: spoolR });
    for (let i = 0; i < 3; i++) r.ingest('s', body(), i, i);
    r.connect(1, 'b', { group: 'archive' });
    r.credit(1, 2);
    sent(r);
    r.ack(1, [1, 2]);
    r.persist();
    const s2 = pipeline([all('archive')], { spool: spoolR, firstSeq: r.nextSeq });
    assert.equal(s2.recover(), 1);
    assert.deepEqual(s2.releasedAtStart, [{ group: 'cloud', records: 3 }]);
    assert.equal(spoolR.summary()[0]?.records, 1, 'the two rows only cloud owed are gone');
    assert.equal(s2.totals().spoolBytes, 1 * (10 + SPOOL_ROW_OVERHEAD_BYTES));
    // A group whose bit no row carries any more is forgotten without a word.
    s2.connect(1, 'b', { group: 'archive' });
    s2.credit(1, 1);
    s2.ack(1, (sent(s2)[0]?.[1] as number[][]).map(([seq]) => seq as number));
    s2.persist();
    const s3 = pipeline([all('dash')], { spool: spoolR, firstSeq: s2.nextSeq });
    assert.equal(s3.recover(), 0);
    assert.deepEqual(s3.releasedAtStart, []);
    assert.deepEqual(q.groups().map((g) => [g.name, g.recovered]), [['archive', 3]]);
    q.connect(2, 'b', { group: 'archive' });
    q.credit(2, 3);
    assert.deepEqual(sent(q), [[2, [[1, 1], [2, 1], [3, 1]]]]);
  });
});

describe('groups: lagging, exactly', () => {
  it('a group over its bound sheds when a record reaches it the slow way too (another group’s ring was full)', () => {
    const p = pipeline([all('cloud'), all('dash', { maxBacklogRecords: 2 })], { specFor: () => spec({ capacityRecords: 3, whenFull: 'drop-oldest' }) });
    for (let i = 0; i < 4; i++) assert.equal(p.ingest('s', body(), 0, 0), 'accepted');
    assert.deepEqual(p.groups().map((g) => [g.name, g.backlog, g.droppedBy.overflow, g.droppedBy.lagging]), [['cloud', 3, 1, 0], ['dash', 2, 0, 2]]);
    p.connect(1, 'd', { group: 'dash' });
    p.credit(1, 5);
    assert.deepEqual(sent(p), [[1, [[3, 1], [4, 1]]]]);
    balanced(p);
  });

  it('an ingest sheds only the groups that take the record: one its failing spool kept over its bound waits for the flush', () => {
    const spool = new MemorySpool();
    let bound: Partial<GroupSpec> = {};
    const p = pipeline(undefined, {
      spool,
      memoryBudgetBytes: 10 + RECORD_OVERHEAD_BYTES - 1,
      groups: () => [all('dash', { selects: (s) => s === 's', ...bound }), all('cloud', { selects: (s) => s === 't' })],
    });
    p.recover();
    for (let i = 0; i < 3; i++) assert.equal(p.ingest('s', body(10), 0, 0), 'accepted'); // no room in memory: straight to disk
    spool.full = true;
    bound = { maxBacklogRecords: 1 };
    p.reconfigure();
    assert.deepEqual(p.groups().map((g) => [g.name, g.backlog, g.droppedBy.lagging]), [['dash', 3, 0], ['cloud', 0, 0]], 'its rows cannot be dropped now, and nothing of it is in memory');
    spool.full = false;
    assert.equal(p.ingest('t', body(1), 0, 0), 'accepted');
    assert.deepEqual(p.groups().map((g) => [g.name, g.backlog, g.droppedBy.lagging]), [['dash', 3, 0], ['cloud', 1, 0]], "cloud's record does not shed dash");
    p.flushSpool();
    assert.deepEqual(p.groups().map((g) => [g.name, g.backlog, g.droppedBy.lagging]), [['dash', 1, 2], ['cloud', 1, 0]]);
    assert.deepEqual(spool.summary(), [{ stream: 's', records: 1, payloadBytes: 10, maxSeq: 3 }], 'the oldest two gave way');
    balanced(p);
  });

  it('maxBacklogBytes sheds as many records as it takes, counting the bytes each left on disk', () => {
    const p = pipeline([all('dash', { maxBacklogBytes: 30 })], { spool: new MemorySpool(), spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }) });
    for (let i = 0; i < 3; i++) assert.equal(p.ingest('s', body(10), 0, 0), 'accepted');
    assert.deepEqual(p.groups().map((g) => [g.backlog, g.backlogBytes, g.droppedBy.lagging]), [[3, 30, 0]], 'exactly the bound: two on disk, one in memory');
    assert.equal(p.ingest('s', body(20), 0, 0), 'accepted');
    assert.deepEqual(p.groups().map((g) => [g.backlog, g.backlogBytes, g.droppedBy.lagging]), [[2, 30, 2]], 'the two oldest, on disk, made room');
    p.connect(1, 'd', { group: 'dash' });
    p.credit(1, 5);
    assert.deepEqual(sent(p), [[1, [[3, 1], [4, 1]]]]);
    balanced(p);
  });

  it('records waiting for redelivery are shed one by one, their bytes with them', () => {
    const p = pipeline([all('dash', { maxBacklogRecords: 2 })]);
    for (let i = 0; i < 2; i++) p.ingest('s', body(10), 0, 0);
    p.connect(1, 'd', { group: 'dash' });
    p.credit(1, 2);
    assert.deepEqual(sent(p), [[1, [[1, 1], [2, 1]]]]);
    for (let i = 0; i < 2; i++) p.ingest('s', body(10), 0, 0);
    p.nack(1, [1, 2]);
    assert.deepEqual(p.groups().map((g) => [g.backlog, g.backlogBytes, g.droppedBy.lagging]), [[2, 20, 2]]);
    p.credit(1, 5);
    assert.deepEqual(sent(p), [[1, [[3, 1], [4, 1]]]]);
    balanced(p);
  });

  it('a span of the backlog whose rows are gone (deleted outside) is passed over: the next span gives its oldest, not the ring', () => {
    const spool = new MemorySpool();
    const p = pipeline([all('dash', { maxBacklogRecords: 2 })], { spool, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1, replay: 'live-first', backlogShare: 0 }) });
    p.ingest('s', body(), 0, 0);
    p.ingest('s', body(), 0, 0); // seq 1 on disk
    spool.delete([1]);
    p.connect(1, 'd', { group: 'dash' });
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, [[2, 1]]]], 'live first: the ring');
    p.ingest('s', body(), 0, 0);
    p.ingest('s', body(), 0, 0); // seq 3 on disk, in a span of its own
    assert.deepEqual(p.groups().map((g) => [g.backlog, g.inflight, g.droppedBy.lagging, g.droppedBy.spool_full]), [[1, 1, 1, 1]], 'seq 3 shed; seq 1 counted lost');
    p.credit(1, 5);
    assert.deepEqual(sent(p), [[1, [[4, 1]]]]);
    balanced(p);
  });
});

describe('groups: lagging, when the spool lost rows', () => {
  it('a backlog found lost while shedding counts toward the bound: nothing more is shed once it holds', () => {
    let bound: Partial<GroupSpec> = {};
    const spool = new MemorySpool();
    const p = pipeline(undefined, { spool, spillBatchRecords: 1, specFor: () => spec({ capacityRecords: 1 }), groups: () => [all('dash', bound)] });
    p.ingest('s', body(), 0, 0);
    p.ingest('s', body(), 0, 0); // seq 1 on disk
    spool.delete([1]); // its row gone (deleted outside, a damaged page)
    bound = { maxBacklogRecords: 1 };
    p.reconfigure();
    assert.deepEqual(p.groups().map((g) => [g.backlog, g.droppedBy.lagging, g.droppedBy.spool_full]), [[1, 0, 1]], 'seq 1 counted lost, seq 2 kept');
    balanced(p);
  });
});

describe('groups: a reload between ingest and commit', () => {
  /** Durable, groups a and b: a record of stream s ingested, then a removed by a reload, then the commit. */
  const aRemovedBeforeCommit = (a: GroupSpec, b: GroupSpec) => {
    let groups = [a, b];
    const spool = new MemorySpool();
    const p = pipeline(undefined, { spool, durable: true, groups: () => groups });
    p.recover();
    assert.equal(p.ingest('s', body(1), 0, 0), 'accepted');
    groups = [b];
    p.reconfigure();
    assert.equal(p.commit(), true);
    return { p, spool, groups };
  };

  it('durable: a record only a group removed before the commit owed is not written by the commit', () => {
    const { p, spool, groups } = aRemovedBeforeCommit(all('a', { selects: (s) => s === 's' }), all('b', { selects: (s) => s === 't' }));
    assert.deepEqual([spool.summary(), p.totals().spoolBytes], [[], 0], 'no row owed by nobody');
    assert.equal(pipeline(undefined, { spool, groups: () => groups }).recover(), 0, 'b, left alone, recovers no record of a stream it does not select');
  });

  it('durable: a record two groups owe, one removed before the commit, is written once, owed by the other', () => {
    const { spool } = aRemovedBeforeCommit(all('a'), all('b'));
    const b = 2 ** (spool.groupBits().get('b') as number);
    assert.deepEqual(spool.read('s', 0, 10, 10).map((r) => [r.seq, r.owers]), [[1, b]], 'one row (not one for each copy), owed by b alone');
  });
});

describe('groups: lagging, whatever gives records back', () => {
  it('a lagging group sheds what an ack timeout or a consumer leaving gives back, oldest first', () => {
    const p = pipeline([all('dash', { maxBacklogRecords: 2 })]);
    const dash = () => p.groups().map((g) => [g.backlog, g.inflight, g.droppedBy.lagging]);
    for (let i = 0; i < 2; i++) p.ingest('s', body(), 0, 0);
    p.connect(1, 'd', { group: 'dash' });
    p.credit(1, 2);
    assert.deepEqual(sent(p), [[1, [[1, 1], [2, 1]]]]);
    for (let i = 0; i < 2; i++) p.ingest('s', body(), 0, 0);
    assert.equal(p.expire(1_000), 2);
    assert.deepEqual(dash(), [[2, 0, 2]], 'seqs 1 and 2, back for redelivery, were the oldest');
    p.credit(1, 2);
    assert.deepEqual(sent(p, 1_000), [[1, [[3, 1], [4, 1]]]]);
    for (let i = 0; i < 2; i++) p.ingest('s', body(), 0, 0);
    assert.equal(p.disconnect(1), 2);
    assert.deepEqual(dash(), [[2, 0, 4]], 'seqs 3 and 4 again');
    p.connect(2, 'd', { group: 'dash' });
    p.credit(2, 5);
    assert.deepEqual(sent(p, 1_000), [[2, [[5, 1], [6, 1]]]]);
    balanced(p);
  });

  it('an ack timeout round that takes nothing back leaves a group its failing spool kept over its bound to the flush', () => {
    const spool = new MemorySpool();
    let bound: Partial<GroupSpec> = {};
    const p = pipeline(undefined, { spool, memoryBudgetBytes: 10 + RECORD_OVERHEAD_BYTES - 1, groups: () => [all('dash', bound)] });
    p.recover();
    for (let i = 0; i < 3; i++) assert.equal(p.ingest('s', body(10), 0, 0), 'accepted'); // no room in memory: straight to disk
    spool.full = true;
    bound = { maxBacklogRecords: 1 };
    p.reconfigure();
    spool.full = false;
    const dash = () => p.groups().map((g) => [g.backlog, g.droppedBy.lagging]);
    assert.deepEqual(dash(), [[3, 0]], 'its rows could not be dropped at the reload');
    assert.equal(p.expire(1_000), 0);
    assert.deepEqual(dash(), [[3, 0]]);
    p.flushSpool();
    assert.deepEqual(dash(), [[1, 2]]);
    balanced(p);
  });

  it('restart with a bound below what the spool holds: recover sheds the oldest as lagging', () => {
    const spool = new MemorySpool();
    const p = pipeline([all('dash')], { spool });
    for (let i = 0; i < 3; i++) p.ingest('s', body(), 0, 0);
    assert.equal(p.persist(), 3);
    const q = pipeline([all('dash', { maxBacklogRecords: 1 })], { spool, firstSeq: p.nextSeq });
    assert.equal(q.recover(), 3);
    assert.deepEqual(q.groups().map((g) => [g.recovered, g.backlog, g.droppedBy.lagging]), [[3, 1, 2]]);
    q.connect(1, 'd', { group: 'dash' });
    q.credit(1, 5);
    assert.deepEqual(sent(q), [[1, [[3, 1]]]]);
    balanced(q);
  });
});

describe('groups: what a damaged spool lost, and forgotten streams', () => {
  it('owed records a damaged spool lost count as corrupt for each group that selects their stream only; a stream with none lost is not made', () => {
    const p = pipeline([all('cloud'), all('dash', { selects: (s) => s === 'a' })], { spool: new MemorySpool() });
    assert.equal(p.recover([{ stream: 'a', records: 2 }, { stream: 'b', records: 1 }, { stream: 'c', records: 0 }]), 0);
    assert.deepEqual(p.groups().map((g) => [g.name, g.recovered, g.dropped, g.droppedBy.corrupt]), [['cloud', 3, 3, 3], ['dash', 2, 2, 2]]);
    assert.deepEqual([...p.streams()].map((s) => [s.name, s.dropped.corrupt]), [['a', 4], ['b', 1]]);
    balanced(p);
  });

  it('forgetting streams leaves the counts by stream as they were: one that only one group selects, one that no group selects', () => {
    const byStream = (p: Pipeline) => {
      const streams = [...p.streams(), ...p.forgotten()];
      return { ingested: streams.reduce((n, s) => n + s.ingested, 0), expired: streams.reduce((n, s) => n + s.dropped.expired, 0) };
    };
    const forgetting = (groups: GroupSpec[]) => {
      const p = pipeline(groups, { specFor: () => spec({ ttlMs: 1 }) });
      p.ingest('a', body(), 0, 0);
      p.ingest('b', body(), 0, 0);
      p.expireTtl(10);
      assert.deepEqual(p.forgotten(), []);
      const before = byStream(p);
      assert.deepEqual(p.forgetIdle(10, 0), ['a', 'b']);
      assert.deepEqual(p.forgotten().map((f) => f.name), ['(forgotten)']);
      assert.deepEqual(byStream(p), before);
      balanced(p);
      return before;
    };
    assert.deepEqual(forgetting([all('cloud', { selects: (s) => s === 'a' }), all('dash')]), { ingested: 2, expired: 3 });
    assert.deepEqual(forgetting([all('dash', { selects: (s) => s === 'a' })]), { ingested: 1, expired: 1 }, 'one group: its lanes are the streams, b is not one');
  });
});

describe('groups: taps, exactly', () => {
  it('a tap is shown a record the groups deliver in one dispatch once', () => {
    const p = pipeline([all('cloud'), all('archive')]);
    p.connect(1, 'a', { group: 'cloud' });
    p.connect(2, 'b', { group: 'archive' });
    p.connect(9, 'tap', { tap: true });
    p.credit(9, 10);
    for (let i = 0; i < 2; i++) p.ingest('s', body(), i, i);
    p.credit(1, 2);
    p.credit(2, 2);
    assert.deepEqual(sent(p), [[1, [[1, 1], [2, 1]]], [9, [[1, 1], [2, 1]]], [2, [[1, 1], [2, 1]]]]);
    assert.deepEqual([p.consumer(9)?.sent, p.consumer(9)?.credit], [2, 8]);
  });

  it('a lone tap without credit at one group’s first delivery is shown the record at the next group’s', () => {
    const p = pipeline([all('cloud'), all('archive')]);
    p.connect(1, 'a', { group: 'cloud' });
    p.connect(2, 'b', { group: 'archive' });
    p.connect(9, 'tap', { tap: true });
    p.ingest('s', body(), 0, 0);
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, [[1, 1]]]], 'the tap has no credit');
    p.credit(9, 5);
    p.credit(2, 1);
    assert.deepEqual(sent(p), [[2, [[1, 1]]], [9, [[1, 1]]]]);
    p.credit(1, 1);
    p.nack(1, [1]);
    assert.deepEqual(sent(p), [[1, [[1, 2]]]], 'shown once');
  });
});

describe('groups: a stream only some groups select', () => {
  it('a stream only the second group selects is forgotten once idle, its counts kept', () => {
    const p = pipeline([all('cloud', { selects: (s) => s !== 'b' }), all('dash')]);
    assert.equal(p.ingest('b', body(), 0, 0), 'accepted');
    p.connect(1, 'd', { group: 'dash' });
    assert.deepEqual(p.forgetIdle(10_000, 0), [], 'a record waits for dash');
    p.credit(1, 1);
    assert.deepEqual(sent(p), [[1, [[1, 1]]]]);
    assert.deepEqual(p.forgetIdle(10_000, 0), [], 'in flight at dash');
    p.ack(1, [1]);
    assert.deepEqual(p.forgetIdle(10_000, 0), ['b']);
    assert.deepEqual(p.forgotten().map((f) => [f.ingested, f.acked]), [[1, 1]]);
    assert.deepEqual(p.groups().map((g) => [g.name, g.ingested, g.acked]), [['cloud', 0, 0], ['dash', 1, 1]]);
    balanced(p);
  });
});

describe('groups: rows gone from the spool (deleted outside, a damaged page)', () => {
  it('each group counts them lost; their bytes stay counted (another group might hold them), so the disk never passes the quota', () => {
    const row = 1 + SPOOL_ROW_OVERHEAD_BYTES;
    const spool = new MemorySpool();
    const p = pipeline([all('a'), all('b')], { spool, spoolQuotaBytes: 4 * row, spillBatchRecords: 2, specFor: () => spec({ capacityRecords: 2 }) });
    for (let i = 0; i < 4; i++) p.ingest('s', body(1), 0, 0); // rows 1, 2 on disk, owed by both
    spool.delete([1, 2]);
    p.connect(1, 'a', { group: 'a' });
    p.connect(2, 'b', { group: 'b' });
    p.credit(1, 2);
    p.credit(2, 2);
    assert.deepEqual(sent(p), [[1, [[3, 1], [4, 1]]], [2, [[3, 1], [4, 1]]]], 'the ring, once each group found its backlog gone');
    assert.deepEqual(p.groups().map((g) => [g.name, g.droppedBy.spool_full, g.backlog]), [['a', 2, 0], ['b', 2, 0]]);
    assert.equal(p.totals().spoolBytes, 2 * row, 'neither group knew the rows were gone for the other too');
    for (let i = 0; i < 8; i++) p.ingest('s', body(1), 0, 0); // 5-12: 5-10 spill in pairs, the quota counting two rows held
    assert.deepEqual([spool.read('s', 0, 99, 99).map((r) => r.seq), p.totals().spoolBytes], [[9, 10], 4 * row]);
    assert.deepEqual(p.groups().map((g) => [g.name, g.droppedBy.spool_full, g.backlog]), [['a', 6, 4], ['b', 6, 4]]);
    balanced(p);
  });
});

describe('groups: removed while the spool refuses releases', () => {
  it("a removed group's bit is released from its rows as soon as the spool takes it, though another removed group's releases of the rows it was done with still wait", () => {
    const spool = new SickSpool();
    const rowBytes = 10 + SPOOL_ROW_OVERHEAD_BYTES;
    let groups = [all('cloud', { selects: (s) => s === 'a' }), all('archive', { selects: (s) => s === 'a' }), all('dash', { selects: (s) => s === 'b' })];
    const p = pipeline(undefined, { spool, groups: () => groups, specFor: () => spec({ capacityRecords: 2 }), spillBatchRecords: 2 });
    for (let i = 0; i < 4; i++) p.ingest('a', body(), i, i); // seqs 1, 2 spilled (cloud and archive owe them), 3, 4 in the rings
    for (let i = 4; i < 8; i++) p.ingest('b', body(), i, i); // seqs 5, 6 spilled (only dash owes them), 7, 8 in its ring
    p.connect(1, 'c', { group: 'cloud' });
    p.connect(2, 'a', { group: 'archive' });
    p.credit(1, 4);
    p.credit(2, 4);
    sent(p);
    p.ack(1, [1, 2, 3, 4]);
    p.flushSpool();
    spool.refuseRowReleases = true;
    p.ack(2, [1, 2, 3, 4]);
    p.flushSpool();
    assert.deepEqual([p.totals().spoolPendingDeletes, p.totals().spoolBytes], [2, 4 * rowBytes], "archive's releases of rows 1, 2 (their deletes: it owes them last) wait");
    spool.refuseReleases = true;
    groups = [all('cloud', { selects: (s) => s === 'a' })];
    assert.deepEqual(p.reconfigure().removed, [
      { name: 'archive', consumers: [2], released: 0 },
      { name: 'dash', consumers: [], released: 4 },
    ]);
    spool.refuseReleases = false;
    p.flushSpool();
    assert.deepEqual(spool.summary().map((s) => [s.stream, s.records]), [['a', 2]], "dash's rows go: its bit waits for none of its own releases, only archive's does");
    assert.deepEqual([p.totals().spoolPendingDeletes, p.totals().spoolBytes], [2, 2 * rowBytes], 'their bytes with them, each row and its overhead');
    spool.refuseRowReleases = false;
    p.flushSpool();
    assert.deepEqual(spool.summary(), []);
    assert.deepEqual([p.totals().spoolPendingDeletes, p.totals().spoolBytes], [0, 0]);
    assert.deepEqual([...spool.groupBits()].map(([name]) => name), ['cloud']);
  });
});
