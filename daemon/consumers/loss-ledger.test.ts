import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FOLDED_STREAM, LossLedger } from './loss-ledger.js';

const opts = { maxPendingEntries: 3, minGapMs: 1_000 };

describe('LossLedger', () => {
  it('turns counter growth into one aggregate per stream and reason, spanning the readings', () => {
    const l = new LossLedger(opts, 100);
    l.observe([{ stream: 'a', reason: 'overflow', total: 5 }], 1_100);
    l.observe([{ stream: 'a', reason: 'overflow', total: 5 }], 2_100);
    l.observe([{ stream: 'a', reason: 'overflow', total: 9 }], 3_100);
    assert.equal(l.pendingEntries, 1);
    assert.deepEqual(l.take(0), [{ stream: 'a', reason: 'overflow', count: 9, from: 100, to: 3_100 }]);
    assert.deepEqual(l.take(5_000), [], 'taken once');
  });

  it('gives at most one notice per stream, and per stream at most one per minGapMs', () => {
    const l = new LossLedger(opts, 0);
    l.observe(
      [
        { stream: 'a', reason: 'overflow', total: 1 },
        { stream: 'a', reason: 'expired', total: 2 },
        { stream: 'b', reason: 'overflow', total: 3 },
      ],
      1_000,
    );
    const first = l.take(10_000);
    assert.deepEqual(first.map((n) => n.stream).sort(), ['a', 'b']);
    assert.deepEqual(l.take(10_999), [], 'stream a waits out the gap');
    const second = l.take(11_000);
    assert.equal(second.length, 1);
    assert.equal(second[0]?.stream, 'a');
    assert.equal(first.find((n) => n.stream === 'a')?.count, 1 + 2 - (second[0]?.count ?? 0));
  });

  it('keeps bounded memory while nobody is connected: beyond the cap, drops fold into stream "*"', () => {
    const l = new LossLedger(opts, 0);
    for (let t = 1; t <= 50; t++) {
      l.observe(Array.from({ length: 10 }, (_, i) => ({ stream: `s${i}`, reason: 'overflow' as const, total: t * (i + 1) })), t * 1_000);
    }
    assert.ok(l.pendingEntries <= opts.maxPendingEntries + 1, `${l.pendingEntries} pending`);
    const all = [];
    for (let now = 0; l.pendingEntries > 0; now += 1_000) all.push(...l.take(now));
    const total = all.reduce((a, n) => a + n.count, 0);
    assert.equal(total, 50 * (1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10), 'every drop is told, none twice');
    assert.ok(all.some((n) => n.stream === FOLDED_STREAM));
  });

  it('a notice put back merges with what came since', () => {
    const l = new LossLedger(opts, 0);
    l.observe([{ stream: 'a', reason: 'poison', total: 2 }], 1_000);
    const [n] = l.take(0);
    assert.ok(n);
    l.observe([{ stream: 'a', reason: 'poison', total: 5 }], 2_000);
    l.putBack(n);
    assert.deepEqual(l.take(5_000), [{ stream: 'a', reason: 'poison', count: 5, from: 0, to: 2_000 }]);
  });
});
