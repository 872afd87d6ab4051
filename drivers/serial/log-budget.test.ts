import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LogBudget } from './log-budget.js';

describe('log budget', () => {
  it('allows perWindow lines per window and reports what it held back', () => {
    const budget = new LogBudget({ perWindow: 2, windowMs: 1_000 });
    assert.deepEqual(
      [0, 1, 2, 3, 999].map((t) => budget.take(t).log),
      [true, true, false, false, false],
    );
    assert.deepEqual(budget.take(1_000), { log: true, suppressed: 3 });
    assert.deepEqual(budget.take(1_001), { log: true, suppressed: 0 });
    assert.deepEqual(budget.take(1_002), { log: false });
  });
});
