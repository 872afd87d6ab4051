import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay } from './backoff.js';

describe('backoffDelay', () => {
  const cfg = { initialMs: 100, maxMs: 5_000 };

  it('doubles from initialMs, within the upper half of each step', () => {
    assert.equal(backoffDelay(0, cfg, 0), 50);
    assert.equal(backoffDelay(0, cfg, 0.999_999), 100);
    assert.equal(backoffDelay(3, cfg, 0), 400);
    assert.equal(backoffDelay(3, cfg, 0.5), 600);
  });

  it('is capped at maxMs, however many attempts', () => {
    for (const attempt of [6, 7, 50, 10_000, Number.MAX_SAFE_INTEGER]) {
      const d = backoffDelay(attempt, cfg, 0.999_999);
      assert.ok(d <= cfg.maxMs && d >= cfg.maxMs / 2, `attempt ${attempt}: ${d}`);
    }
  });

  it('treats a negative attempt as the first', () => {
    assert.equal(backoffDelay(-3, cfg, 0), 50);
  });
});
