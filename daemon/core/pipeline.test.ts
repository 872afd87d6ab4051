/**
 * Property tests of the core: random interleavings of ingest, credit, ack
 * (own, foreign, unknown, duplicate), nack, ack timeouts, disconnects and
 * full rings, with the invariants of spec/PROTOCOL.md checked after every step.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Pipeline, type Delivery } from './pipeline.js';
import { RECORD_OVERHEAD_BYTES } from './record.js';
import type { StreamSpec, WhenFull } from './stream.js';

const STREAMS = ['s0', 's1', 's2', 's3'] as const;
const ACK_TIMEOUT = 1_000;
const MAX_CREDIT = 40;

const SPECS: Record<string, StreamSpec> = {
  s0: { priority: 0, capacityRecords: 8, capacityBytes: 4_096, whenFull: 'drop-oldest' },
  s1: { priority: 1, capacityRecords: 5, capacityBytes: 600, whenFull: 'drop-newest' },
  s2: { priority: 1, capacityRecords: 12, capacityBytes: 2_000, whenFull: 'drop-oldest' },
  s3: { priority: 2, capacityRecords: 20, capacityBytes: 10_000, whenFull: 'drop-newest' satisfies WhenFull },
};

type Op =
  | { op: 'ingest'; stream: number; size: number }
  | { op: 'connect'; c: number }
  | { op: 'disconnect'; c: number }
  | { op: 'credit'; c: number; n: number }
  | { op: 'ack'; c: number; pick: number[]; extra: 'none' | 'unknown' | 'foreign' | 'duplicate' }
  | { op: 'nack'; c: number; pick: number[] }
  | { op: 'tick'; ms: number }
  | { op: 'dispatch' };

const consumer = fc.integer({ min: 0, max: 2 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('ingest' as const), stream: fc.integer({ min: 0, max: 3 }), size: fc.integer({ min: 0, max: 300 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('connect' as const), c: consumer }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('disconnect' as const), c: consumer }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('credit' as const), c: consumer, n: fc.integer({ min: 1, max: 60 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('ack' as const),
      c: consumer,
      pick: fc.array(fc.nat(), { maxLength: 8 }),
      extra: fc.constantFrom('none' as const, 'unknown' as const, 'foreign' as const, 'duplicate' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('nack' as const), c: consumer, pick: fc.array(fc.nat(), { maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 2 * ACK_TIMEOUT }) }) },
  { weight: 3, arbitrary: fc.constant({ op: 'dispatch' as const }) },
);

interface Model {
  readonly p: Pipeline;
  now: number;
  readonly connected: Set<number>;
  /** Per connection generation: credit granted and records received. */
  readonly granted: Map<number, number>;
  readonly received: Map<number, number>;
  /** What each consumer holds, as the consumer sees it. */
  readonly holding: Map<number, Set<number>>;
  readonly payloads: Map<number, { stream: string; prio: number; ts: number; payload: Uint8Array }>;
  readonly lastFirstSeq: Map<string, number>;
  readonly ackedSeqs: Set<number>;
}

function newModel(budget: number): Model {
  return {
    p: new Pipeline({
      memoryBudgetBytes: budget,
      maxStreams: 16,
      maxCredit: MAX_CREDIT,
      ackTimeoutMs: ACK_TIMEOUT,
      maxAttempts: 4,
      specFor: (name) => SPECS[name] as StreamSpec,
    }),
    now: 0,
    connected: new Set(),
    granted: new Map(),
    received: new Map(),
    holding: new Map(),
    payloads: new Map(),
    lastFirstSeq: new Map(),
    ackedSeqs: new Set(),
  };
}

function waitingPrios(p: Pipeline): number[] {
  return [...p.bufferedRecords()].map((r) => r.prio);
}

function deliver(m: Model, deliveries: Delivery[]): void {
  const stillWaiting = waitingPrios(m.p);
  const mostImportantWaiting = Math.min(...stillWaiting);
  for (const d of deliveries) {
    const id = d.consumer.id;
    assert.ok(m.connected.has(id), 'delivered to a connected consumer');
    for (const r of d.records) {
      // Priority: what still waits after the dispatch was waiting while r left.
      assert.ok(r.prio <= mostImportantWaiting, `prio ${r.prio} sent while prio ${mostImportantWaiting} waits`);
      const orig = m.payloads.get(r.seq);
      assert.ok(orig, 'a delivered seq was ingested');
      assert.equal(r.stream.name, orig.stream);
      assert.equal(r.prio, orig.prio);
      assert.equal(r.ts, orig.ts);
      assert.equal(r.payload, orig.payload);
      assert.ok(r.attempt >= 1);
      if (r.attempt === 1) {
        const last = m.lastFirstSeq.get(orig.stream) ?? 0;
        assert.ok(r.seq > last, `first deliveries of ${orig.stream} in seq order: ${r.seq} after ${last}`);
        m.lastFirstSeq.set(orig.stream, r.seq);
      }
      m.holding.get(id)?.add(r.seq);
    }
    m.received.set(id, (m.received.get(id) ?? 0) + d.records.length);
  }
}

function checkInvariants(m: Model, budget: number): void {
  const t = m.p.totals();
  assert.equal(t.recovered + t.ingested, t.acked + t.dropped + t.buffered + t.inflight, 'conservation');
  let buffered = 0;
  let bytes = 0;
  let ingested = 0;
  let acked = 0;
  let dropped = 0;
  for (const s of m.p.streams()) {
    buffered += s.waiting;
    bytes += s.bufferedBytes;
    ingested += s.ingested;
    acked += s.acked;
    dropped += Object.values(s.dropped).reduce((a, b) => a + b, 0);
    assert.ok(s.ring.length <= s.spec.capacityRecords && s.ring.bytes <= s.spec.capacityBytes, 'ring bounds');
  }
  assert.equal(buffered, t.buffered);
  assert.equal(bytes, t.bufferedBytes);
  assert.equal(ingested, t.ingested);
  assert.equal(acked, t.acked);
  assert.equal(dropped, t.dropped);
  assert.equal([...m.p.inflightRecords()].length, t.inflight);
  assert.ok(t.heldBytes <= budget, `held ${t.heldBytes} within budget ${budget}`);
  for (const c of m.p.consumers()) {
    assert.ok(c.sent <= c.granted, 'credit never exceeded (core view)');
    assert.ok(c.inflight <= MAX_CREDIT, 'in flight at most maxCredit');
    assert.ok((m.received.get(c.id) ?? 0) <= (m.granted.get(c.id) ?? 0), 'credit never exceeded (consumer view)');
  }
}

let nextConsumerId = 1;
/** Consumer slot -> current connection id (a reconnect is a new consumer). */
const slotIds = new Map<number, number>();

function step(m: Model, op: Op): void {
  const idOf = (slot: number) => slotIds.get(slot) ?? -1;
  switch (op.op) {
    case 'ingest': {
      const name = STREAMS[op.stream] as string;
      const payload = new Uint8Array(op.size).fill(op.stream);
      const seq = m.p.nextSeq;
      const outcome = m.p.ingest(name, payload, 1_700_000_000_000 + m.now);
      assert.notEqual(outcome, 'rejected');
      m.payloads.set(seq, { stream: name, prio: (SPECS[name] as StreamSpec).priority, ts: 1_700_000_000_000 + m.now, payload });
      break;
    }
    case 'connect': {
      if (m.connected.has(idOf(op.c))) break;
      const id = nextConsumerId++;
      slotIds.set(op.c, id);
      m.p.connect(id, `c${op.c}`);
      m.connected.add(id);
      m.holding.set(id, new Set());
      break;
    }
    case 'disconnect': {
      const id = idOf(op.c);
      if (!m.connected.has(id)) break;
      const held = m.holding.get(id) as Set<number>;
      assert.equal(m.p.disconnect(id), held.size, 'disconnect takes back what the consumer held');
      m.connected.delete(id);
      break;
    }
    case 'credit': {
      const id = idOf(op.c);
      if (!m.connected.has(id)) break;
      m.p.credit(id, op.n);
      m.granted.set(id, (m.granted.get(id) ?? 0) + op.n);
      break;
    }
    case 'ack':
    case 'nack': {
      const id = idOf(op.c);
      if (!m.connected.has(id)) break;
      const held = [...(m.holding.get(id) as Set<number>)];
      const seqs = [...new Set(op.pick.filter(() => held.length > 0).map((i) => held[i % held.length] as number))];
      // What the consumer holds may have timed out and gone elsewhere: only
      // those still in flight at this consumer count.
      const own = new Set([...m.p.inflightRecords()].filter((r) => r.holder?.id === id).map((r) => r.seq));
      const valid = seqs.filter((s) => own.has(s));
      const bogus: number[] = [];
      if (op.op === 'ack') {
        if (op.extra === 'unknown') bogus.push(m.p.nextSeq + 1_000);
        if (op.extra === 'duplicate' && m.ackedSeqs.size > 0) bogus.push([...m.ackedSeqs][0] as number);
        if (op.extra === 'foreign') {
          const foreign = [...m.p.inflightRecords()].find((r) => r.holder !== null && r.holder.id !== id);
          if (foreign) bogus.push(foreign.seq);
        }
      }
      const before = m.p.totals();
      const ignored = op.op === 'ack' ? m.p.ack(id, [...seqs, ...bogus]) : m.p.nack(id, seqs);
      assert.equal(ignored, seqs.length - valid.length + bogus.length, 'unknown, foreign and duplicate seqs are ignored');
      if (op.op === 'ack') {
        assert.equal(m.p.totals().acked - before.acked, valid.length);
        for (const s of valid) m.ackedSeqs.add(s);
      }
      for (const s of seqs) m.holding.get(id)?.delete(s);
      break;
    }
    case 'tick': {
      m.now += op.ms;
      m.p.expire(m.now);
      for (const [id, held] of m.holding) {
        const own = new Set([...m.p.inflightRecords()].filter((r) => r.holder?.id === id).map((r) => r.seq));
        for (const s of held) if (!own.has(s)) held.delete(s);
      }
      break;
    }
    case 'dispatch':
      deliver(m, m.p.dispatch(m.now));
      break;
    default: {
      const never: never = op;
      throw new Error(`unknown op ${JSON.stringify(never)}`);
    }
  }
}

/** Connects a fresh consumer and acks until nothing is owed. */
function drain(m: Model): void {
  for (const id of m.connected) m.p.disconnect(id);
  m.connected.clear();
  const id = nextConsumerId++;
  m.p.connect(id, 'drain');
  m.connected.add(id);
  m.holding.set(id, new Set());
  for (let guard = 0; guard < 10_000; guard++) {
    const t = m.p.totals();
    if (t.buffered === 0 && t.inflight === 0) break;
    m.p.credit(id, MAX_CREDIT);
    m.granted.set(id, (m.granted.get(id) ?? 0) + MAX_CREDIT);
    const deliveries = m.p.dispatch(m.now);
    deliver(m, deliveries);
    for (const d of deliveries) {
      const seqs = d.records.map((r) => r.seq);
      m.p.ack(id, seqs);
      for (const s of seqs) m.ackedSeqs.add(s);
    }
  }
}

describe('pipeline (property)', () => {
  it('keeps every invariant of the protocol after every step', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 20, maxLength: 300, size: 'max' }), fc.integer({ min: 2_000, max: 12_000 }), (ops, budget) => {
        const m = newModel(budget);
        for (const op of ops) {
          step(m, op);
          checkInvariants(m, budget);
        }
        drain(m);
        checkInvariants(m, budget);
        const t = m.p.totals();
        assert.equal(t.buffered + t.inflight, 0, 'drained');
        assert.equal(t.acked + t.dropped, t.ingested, 'every record ends acked or dropped');
        assert.equal(m.ackedSeqs.size, t.acked, 'each record acked once');
      }),
      { numRuns: 1_000 },
    );
  });

  it('drops the least important, oldest record when the memory budget is reached', () => {
    const cost = 100 + RECORD_OVERHEAD_BYTES;
    const p = new Pipeline({
      memoryBudgetBytes: cost * 3,
      maxStreams: 4,
      maxCredit: 10,
      ackTimeoutMs: 1_000,
      maxAttempts: 3,
      specFor: (name) => ({ priority: name === 'hi' ? 0 : 2, capacityRecords: 100, capacityBytes: 100_000, whenFull: 'drop-oldest' }),
    });
    const body = new Uint8Array(100);
    assert.equal(p.ingest('lo', body, 1), 'accepted'); // seq 1
    assert.equal(p.ingest('lo', body, 2), 'accepted'); // seq 2
    assert.equal(p.ingest('hi', body, 3), 'accepted'); // seq 3
    assert.equal(p.ingest('hi', body, 4), 'accepted'); // evicts seq 1
    assert.equal(p.ingest('hi', body, 5), 'accepted'); // evicts seq 2
    assert.equal(p.ingest('lo', body, 6), 'dropped'); // less important than all held
    const lo = [...p.streams()].find((s) => s.name === 'lo');
    assert.equal(lo?.dropped.overflow, 3);
    assert.deepEqual([...p.bufferedRecords()].map((r) => r.seq), [3, 4, 5]);
  });

  it('rejects a new stream beyond maxStreams without making a record', () => {
    const p = new Pipeline({
      memoryBudgetBytes: 1 << 20,
      maxStreams: 1,
      maxCredit: 10,
      ackTimeoutMs: 1_000,
      maxAttempts: 3,
      specFor: () => ({ priority: 1, capacityRecords: 10, capacityBytes: 1_000, whenFull: 'drop-oldest' }),
    });
    assert.equal(p.ingest('a', new Uint8Array(1), 0), 'accepted');
    assert.equal(p.ingest('b', new Uint8Array(1), 0), 'rejected');
    assert.equal(p.totals().ingested, 1);
    assert.equal(p.nextSeq, 2, 'no seq spent on a rejected input');
  });

  it('serves consumers in proportion to the credit they grant', () => {
    const p = new Pipeline({
      memoryBudgetBytes: 1 << 24,
      maxStreams: 1,
      maxCredit: 10_000,
      ackTimeoutMs: 1_000,
      maxAttempts: 3,
      specFor: () => ({ priority: 1, capacityRecords: 10_000, capacityBytes: 1 << 24, whenFull: 'drop-oldest' }),
    });
    p.connect(1, 'big');
    p.connect(2, 'small');
    p.credit(1, 300);
    p.credit(2, 100);
    for (let i = 0; i < 200; i++) p.ingest('s', new Uint8Array(10), i);
    const got = new Map(p.dispatch(0).map((d) => [d.consumer.id, d.records.length]));
    assert.equal(got.get(1), 150);
    assert.equal(got.get(2), 50);
  });
});
