/**
 * The core's small parts at their exact edges (the mutants that survived in
 * docs/MUTATION.md): an ack timeout fires at its deadline and not a
 * millisecond before, and gives the consumer its slot back; a consumer that
 * grants again and again without acking holds at most maxCredit; a live
 * change of maxCredit; a ring's byte bound to the byte, a resize, and growth
 * while its head has wrapped; a stream's spans, tiers and live-first share.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CreditLedger } from './credit-ledger.js';
import { Pipeline } from './pipeline.js';
import { Rec } from './record.js';
import { Ring } from './ring.js';
import { addCounters, Stream, type StreamSpec } from './stream.js';

const spec: StreamSpec = { priority: 1, capacityRecords: 1_000, capacityBytes: 1 << 20, whenFull: 'drop-newest', replay: 'fifo', backlogShare: 0.2, ttlMs: 0 };
const pipeline = (maxCredit = 10, ackTimeoutMs = 100) => new Pipeline({ memoryBudgetBytes: 1 << 24, maxStreams: 4, maxCredit, ackTimeoutMs, maxAttempts: 100, specFor: () => spec });

describe('ack timeouts', () => {
  it('fire at the deadline, not before, and free the consumer\'s in-flight slots', () => {
    const p = pipeline(10, 100);
    p.connect(1, 'c');
    p.credit(1, 3);
    for (let i = 0; i < 3; i++) p.ingest('s', new Uint8Array(1), 0, 0);
    assert.equal(p.dispatch(1_000)[0]?.records.length, 3);
    const c = p.consumer(1);
    assert.equal(c?.inflight, 3);
    assert.equal(p.expire(1_099), 0, 'one millisecond early: nothing');
    assert.equal(c?.inflight, 3);
    assert.equal(p.expire(1_100), 3, 'at the deadline: all three');
    assert.equal(c?.inflight, 0, 'their slots are free again');
    assert.equal(p.totals().inflight, 0);
    assert.equal(p.totals().buffered, 3, 'back in the queue');
    p.credit(1, 3);
    const again = p.dispatch(2_000)[0]?.records ?? [];
    assert.deepEqual(again.map((r) => [r.seq, r.attempt]), [[1, 2], [2, 2], [3, 2]]);
    assert.equal(p.expire(2_099), 0);
  });
});

describe('credit', () => {
  it('a consumer that grants again and again without acking holds at most maxCredit', () => {
    const p = pipeline(10);
    p.connect(1, 'greedy');
    for (let i = 0; i < 50; i++) p.ingest('s', new Uint8Array(1), 0, 0);
    let sent = 0;
    for (let round = 0; round < 5; round++) {
      p.credit(1, 10);
      sent += p.dispatch(0).reduce((n, d) => n + d.records.length, 0);
    }
    assert.equal(sent, 10, 'ten in flight, however much it granted');
    const c = p.consumer(1);
    assert.equal(c?.inflight, 10);
    assert.equal(c?.credit, 10, 'its outstanding credit is clamped to maxCredit');
    assert.equal(c?.granted, 50);
    assert.equal(c?.sent, 10);
    p.ack(1, [1, 2, 3]);
    assert.equal(p.dispatch(0)[0]?.records.length, 3, 'an ack frees exactly its slots');
  });

  it('maxCredit changes live: clamps what may be sent next', () => {
    const ledger = new CreditLedger(10);
    const c = ledger.add(7, 'c');
    assert.throws(() => ledger.add(7, 'again'), /already connected/);
    ledger.grant(c, 8);
    assert.equal(ledger.available(c), 8);
    ledger.consume(c);
    assert.deepEqual([c.credit, c.inflight, c.sent], [7, 1, 1]);
    ledger.maxCredit = 4;
    assert.equal(ledger.maxCredit, 4);
    assert.equal(ledger.available(c), 3, 'maxCredit 4 less the one in flight');
    ledger.grant(c, 100);
    assert.equal(c.credit, 4, 'a grant clamps to the new maxCredit');
    c.writable = false;
    assert.equal(ledger.available(c), 0, 'nothing for a consumer that cannot take more');
    assert.deepEqual(ledger.eligible(), []);
    c.writable = true;
    assert.deepEqual(ledger.eligible(), [c]);
    assert.equal(ledger.remove(7), c);
    assert.equal(ledger.get(7), undefined);
  });
});

describe('ring', () => {
  const item = (size: number) => ({ size });

  it('refuses bounds that are not positive integers, saying which and what it got', () => {
    assert.throws(() => new Ring(0, 10), { name: 'RangeError', message: 'capacityRecords must be a positive integer, got 0' });
    assert.throws(() => new Ring(1.5, 10), { message: 'capacityRecords must be a positive integer, got 1.5' });
    assert.throws(() => new Ring(1, -1), { name: 'RangeError', message: 'capacityBytes must be a positive integer, got -1' });
  });

  it('holds exactly capacityBytes and refuses one byte more', () => {
    const r = new Ring<{ size: number }>(10, 100);
    assert.equal(r.push(item(60)).ok, true);
    assert.equal(r.wouldOverflowBy(40), false, 'exactly full is allowed');
    assert.equal(r.push(item(40)).ok, true);
    assert.equal(r.bytes, 100);
    assert.equal(r.wouldOverflowBy(0), false);
    assert.equal(r.wouldOverflowBy(1), true);
    const refused = item(1);
    assert.deepEqual(r.push(refused), { ok: false, rejected: refused });
  });

  it('grows while its head has wrapped, keeping order', () => {
    const r = new Ring<{ size: number; n: number }>(1_000, 1 << 20);
    let n = 0;
    for (let i = 0; i < 12; i++) r.push({ size: 1, n: n++ });
    for (let i = 0; i < 10; i++) r.shift();
    for (let i = 0; i < 30; i++) r.push({ size: 1, n: n++ }); // wraps the 16 slots, then doubles twice
    assert.deepEqual([...r].map((x) => x.n), Array.from({ length: 32 }, (_, i) => i + 10));
    assert.equal(r.peek()?.n, 10);
    assert.equal(r.length, 32);
  });

  it('resize: a ring above its new bounds keeps its items and refuses pushes until enough left', () => {
    const r = new Ring<{ size: number }>(4, 1_000);
    for (let i = 0; i < 4; i++) r.push(item(10));
    r.resize(2, 15);
    assert.deepEqual([r.capacityRecords, r.capacityBytes], [2, 15]);
    assert.equal(r.length, 4);
    assert.equal(r.push(item(1)).ok, false);
    r.shift();
    r.shift();
    r.shift();
    assert.equal(r.push(item(5)).ok, true, 'one of 10 bytes left: room for 5 more');
    assert.equal(r.push(item(1)).ok, false, 'two records: full');
    assert.throws(() => new Ring(0, 10), RangeError);
    assert.throws(() => new Ring(1, 0), RangeError);
  });
});

describe('a consumer that leaves', () => {
  it('while reading: each record it held counts one failed delivery (maxAttempts 1: poison)', () => {
    const p = new Pipeline({ memoryBudgetBytes: 1 << 24, maxStreams: 4, maxCredit: 10, ackTimeoutMs: 100, maxAttempts: 1, specFor: () => spec });
    p.connect(1, 'c');
    p.credit(1, 3);
    for (let i = 0; i < 3; i++) p.ingest('s', new Uint8Array(1), 0, 0);
    p.dispatch(0);
    p.ack(1, [3]);
    assert.equal(p.disconnect(1), 2);
    assert.equal([...p.streams()][0]?.dropped.poison, 2, 'it was reading (it acked one of the three): both others failed because of the records');
  });

  it('gives its stream back its in-flight count, by leaving or by timing out, so an idle stream can be forgotten', () => {
    const p = pipeline(10, 100);
    p.connect(1, 'c');
    p.credit(1, 1);
    p.ingest('a', new Uint8Array(1), 0, 0);
    p.dispatch(0);
    p.setWritable(1, false);
    assert.equal(p.expire(100), 1);
    p.setWritable(1, true);
    p.credit(1, 1);
    p.dispatch(200);
    p.setWritable(1, false);
    assert.equal(p.disconnect(1), 1);
    assert.equal([...p.streams()][0]?.dropped.poison, 0, 'stuck when it timed out and when it left: no failure counted');
    p.connect(2, 'd');
    p.credit(2, 1);
    const [d] = p.dispatch(300);
    p.ack(2, (d?.records ?? []).map((r) => r.seq));
    assert.deepEqual(p.forgetIdle(10_000, 1_000), ['a'], 'nothing of it in flight any more');
  });
});

describe('stream', () => {
  const rec = (st: Stream, seq: number, size = seq) => new Rec(seq, st, 1, 0, 0, new Uint8Array(size));
  const spans = (st: Stream) => st.spans.map((x) => [x.after, x.upto, x.spill]);

  it('a spill extends the last one only while no ring record left since, and never backwards', () => {
    const st = new Stream(1, 's', spec);
    assert.deepEqual(spans(st), []);
    st.addSpilled(1, 3);
    assert.equal(st.takeNext(), undefined, 'an empty ring gives nothing, and nothing left it');
    st.addSpilled(4, 6);
    assert.deepEqual(spans(st), [[0, 6, true]], 'consecutive spills: one span');
    st.ring.push(rec(st, 7));
    assert.equal(st.takeNext()?.seq, 7);
    st.addSpilled(8, 9);
    assert.deepEqual(spans(st), [[0, 6, true], [7, 9, true]], 'a ring record left in between: seq 7 is not on disk');
    st.addSpilled(9, 10);
    assert.deepEqual(spans(st), [[0, 6, true], [7, 9, true], [8, 10, true]], 'overlapping the tail: a span of its own');
    st.addSpan(2, 4);
    st.addSpan(7, 8);
    assert.deepEqual(spans(st), [[0, 6, true], [2, 4, false], [7, 9, true], [7, 8, false], [8, 10, true]], 'sorted by start; a tie goes after');
    st.addSpilled(11, 12);
    assert.deepEqual(spans(st).at(-1), [8, 12, true], 'the tail is a spill and no ring record left since: it grows');
    const back = new Stream(2, 't', spec);
    back.addSpan(0, 3);
    back.addSpilled(4, 5);
    assert.deepEqual(spans(back), [[0, 3, false], [3, 5, true]], 'the tail is a taken-back span: a spill does not extend it');
  });

  it('reading the backlog advances its first span, which goes once read to its end', () => {
    const st = new Stream(1, 's', spec);
    st.addSpilled(1, 5);
    st.addSpilled(6, 6);
    st.advance(4);
    assert.deepEqual(spans(st), [[4, 6, true]]);
    st.advance(6);
    assert.deepEqual(spans(st), []);
    st.advance(9);
    assert.deepEqual(spans(st), [], 'no span: nothing to advance');
  });

  it('replay records given back become a span ahead of the others, with their bytes', () => {
    const st = new Stream(1, 's', spec);
    st.addSpilled(20, 30);
    st.addReplay([rec(st, 11, 5), rec(st, 12, 6), rec(st, 14, 7)]);
    assert.deepEqual([st.replay.length, st.replayBytes, st.buffered, st.bufferedBytes], [3, 18, 3, 18]);
    const back = st.giveBackReplay();
    assert.deepEqual(back.map((r) => r.seq), [11, 12, 14]);
    assert.deepEqual([st.replay.length, st.replayBytes], [0, 0]);
    assert.deepEqual(spans(st), [[10, 14, false], [19, 30, true]]);
    assert.deepEqual(st.giveBackReplay(), [], 'nothing to give back: no span');
    assert.equal(st.spans.length, 2);
  });

  it('taken-back records wait in seq order, before the backlog and the ring', () => {
    const st = new Stream(1, 's', spec);
    for (const seq of [5, 3, 4, 9, 1]) st.putBack(rec(st, seq));
    assert.deepEqual(st.retry.map((r) => r.seq), [1, 3, 4, 5, 9]);
    assert.equal(st.retryBytes, 22);
    st.addReplay([rec(st, 20)]);
    st.ring.push(rec(st, 30));
    const order: number[] = [];
    for (let r = st.takeNext(); r !== undefined; r = st.takeNext()) order.push(r.seq);
    assert.deepEqual(order, [1, 3, 4, 5, 9, 20, 30]);
    assert.deepEqual([st.retryBytes, st.replayBytes, st.bufferedBytes], [0, 0, 0]);
  });

  it('fifo: with records on disk and none loaded, the ring waits for the backlog', () => {
    const st = new Stream(1, 's', spec);
    st.ring.push(rec(st, 9));
    st.spooled = 2;
    assert.equal(st.needsLoad, true);
    assert.equal(st.takeNext(), undefined, 'the caller loads the backlog first');
    assert.equal(st.ring.length, 1);
    st.addReplay([rec(st, 3)]);
    assert.equal(st.needsLoad, false, 'loaded: no need');
  });

  it('TTL removes from the retry and replay tiers only, with their bytes', () => {
    const st = new Stream(1, 's', spec);
    for (const seq of [2, 4, 6]) st.putBack(rec(st, seq));
    st.addReplay([rec(st, 10), rec(st, 11), rec(st, 12)]);
    st.ring.push(rec(st, 20));
    const gone = st.removeWhere((r) => r.seq % 2 === 0);
    assert.deepEqual(gone.map((r) => r.seq), [6, 4, 2, 12, 10]);
    assert.deepEqual([st.retry.map((r) => r.seq), st.replay.map((r) => r.seq), st.ring.length], [[], [11], 1]);
    assert.deepEqual([st.retryBytes, st.replayBytes], [0, 11]);
  });

  it('live-first gives the backlog its share of deliveries, exactly, and the ring the rest', () => {
    const st = new Stream(1, 's', { ...spec, replay: 'live-first', backlogShare: 0.25 });
    st.spooled = 100;
    st.ring.push(rec(st, 999));
    assert.equal(st.needsLoad, true, 'the backlog is owed its share from the first delivery');
    st.ring.shift();
    const order: string[] = [];
    for (let i = 0; i < 12; i++) {
      if (st.ring.length === 0) st.ring.push(rec(st, 1_000 + i));
      if (st.replay.length === 0) st.addReplay([rec(st, i + 1)]);
      const r = st.takeNext();
      order.push(r !== undefined && r.seq < 1_000 ? 'B' : 'R');
    }
    assert.equal(order.join(''), 'BRRRBRRRBRRR');
    st.spooled = 0;
    st.replay.splice(0);
    st.ring.push(rec(st, 2_000));
    assert.equal(st.needsLoad, false);
    assert.equal(st.takeNext()?.seq, 2_000, 'no backlog: the ring');
  });

  it('a forgotten stream adds every counter into the one that keeps them', () => {
    const into = new Stream(1, 'a', spec);
    const from = new Stream(2, 'b', spec);
    Object.assign(into, { ingested: 10, acked: 5, redelivered: 2, spilled: 3 });
    Object.assign(from, { ingested: 7, acked: 4, redelivered: 1, spilled: 6 });
    into.dropped.expired = 1;
    from.dropped.expired = 2;
    from.dropped.poison = 3;
    addCounters(into, from);
    assert.deepEqual([into.ingested, into.acked, into.redelivered, into.spilled, into.dropped.expired, into.dropped.poison], [17, 9, 3, 9, 3, 3]);
  });
});
