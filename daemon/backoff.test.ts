import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { backoffDelay } from './backoff.js';

const cfg = { initialMs: 500, maxMs: 30_000 };

describe('reconnect backoff', () => {
  it('doubles from initialMs up to maxMs, jittered within the upper half of the step', () => {
    assert.equal(backoffDelay(0, cfg, 0), 250);
    assert.equal(backoffDelay(0, cfg, 0.999_999), 500);
    assert.equal(backoffDelay(3, cfg, 0.999_999), 4_000);
    assert.equal(backoffDelay(10, cfg, 0.999_999), 30_000);
    assert.equal(backoffDelay(10_000, cfg, 0), 15_000);
  });

  it('stays within [step/2, maxMs] for any attempt and random', () => {
    fc.assert(
      fc.property(fc.nat(), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer({ min: 1, max: 10_000 }), (attempt, r, initialMs) => {
        const c = { initialMs, maxMs: initialMs * 8 };
        const d = backoffDelay(attempt, c, r);
        assert.ok(d >= Math.floor(initialMs / 2) && d <= c.maxMs, `${d}`);
        assert.ok(Number.isInteger(d));
      }),
    );
  });
});
