/**
 * Fair service by credit (docs/PROTOCOL.md, guarantee 7): consumers of
 * different grants, some of them stalling (their transport not writable for
 * a while), records arriving in random bursts, every consumer acking and
 * granting back what it got. Over a run, each consumer that was writable
 * throughout is served in proportion to the credit it keeps open, within a
 * bound that does not grow with the run; a stalled one is sent nothing while
 * stalled; and no one's large grant starves a small one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Pipeline } from './pipeline.js';
import type { StreamSpec } from './stream.js';

const spec: StreamSpec = { priority: 1, capacityRecords: 1_000_000, capacityBytes: 1 << 30, whenFull: 'drop-newest', replay: 'fifo', backlogShare: 0.2, ttlMs: 0 };

interface Run {
  readonly grants: readonly number[];
  readonly stalls: ReadonlyArray<{ readonly c: number; readonly from: number; readonly to: number }>;
  readonly bursts: readonly number[];
}

const runArb: fc.Arbitrary<Run> = fc.record({
  grants: fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 2, maxLength: 5 }),
  stalls: fc.array(fc.record({ c: fc.nat(4), from: fc.nat(150), to: fc.nat(150) }), { maxLength: 3 }),
  bursts: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 200, maxLength: 300 }),
});

describe('shares by credit (property)', () => {
  it('serves writable consumers in proportion to their credit, stalled ones nothing while stalled', () => {
    fc.assert(
      fc.property(runArb, ({ grants, stalls, bursts }) => {
        const p = new Pipeline({ memoryBudgetBytes: 1 << 30, maxStreams: 1, maxCredit: 10_000, ackTimeoutMs: 1e12, maxAttempts: 10, specFor: () => spec });
        const ids = grants.map((g, i) => {
          p.connect(i + 1, `c${i}`);
          p.credit(i + 1, g);
          return i + 1;
        });
        const stalledAt = (c: number, step: number) => stalls.some((s) => s.c === c && Math.min(s.from, s.to) <= step && step < Math.max(s.from, s.to));
        const got = ids.map(() => 0);
        const everStalled = ids.map((_, c) => bursts.some((_, step) => stalledAt(c, step)));
        bursts.forEach((burst, step) => {
          ids.forEach((id, c) => p.setWritable(id, !stalledAt(c, step)));
          for (let i = 0; i < burst; i++) p.ingest('s', new Uint8Array(1), step, step);
          for (const d of p.dispatch(step)) {
            const c = d.consumer.id - 1;
            assert.equal(stalledAt(c, step), false, `consumer ${c} was sent records while stalled (step ${step})`);
            got[c] = (got[c] as number) + d.records.length;
            // It acks what it got and grants it back: its open credit stays its grant.
            p.ack(d.consumer.id, d.records.map((r) => r.seq));
            p.credit(d.consumer.id, d.records.length);
          }
        });
        const steady = ids.map((_, c) => c).filter((c) => !everStalled[c]);
        const total = steady.reduce((a, c) => a + (got[c] as number), 0);
        const credit = steady.reduce((a, c) => a + (grants[c] as number), 0);
        // Records arrive at most 40 a turn, so whenever some are left over everyone had credit:
        // each steady consumer's count is its share of the steady total, within the rounding of the turns it had.
        if (steady.length >= 2 && total > 0) {
          for (const c of steady) {
            const fair = (total * (grants[c] as number)) / credit;
            assert.ok(Math.abs((got[c] as number) - fair) <= 2 + bursts.length * 0.02 + fair * 0.05, `consumer ${c} (grant ${grants[c]}) got ${got[c]}, its share is ${fair.toFixed(1)} of ${total}`);
          }
        }
      }),
      { numRuns: Math.ceil(Number(process.env['SPILLWAY_PROPERTY_RUNS'] ?? 600) / 3), includeErrorInReport: true },
    );
  });
});
