/**
 * The engine's clocks, injected: TTL ages come from the age clock, so a wall
 * clock that jumps (a Pi without RTC getting NTP time at boot) neither
 * expires records early nor keeps them forever.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Pipeline } from './core/pipeline.js';
import type { StreamSpec } from './core/stream.js';
import { Engine } from './engine.js';
import { MemorySpool } from './spool/memory-spool.js';

const spec: StreamSpec = { priority: 1, capacityRecords: 4, capacityBytes: 1 << 20, whenFull: 'spill', replay: 'fifo', backlogShare: 0.2, ttlMs: 60_000 };

function setup() {
  const clocks = { mono: 0, wall: Date.UTC(1970, 0, 2), age: 1_000_000 };
  const spool = new MemorySpool();
  const p = new Pipeline({ memoryBudgetBytes: 1 << 20, maxStreams: 4, maxCredit: 100, ackTimeoutMs: 1_000, maxAttempts: 3, specFor: () => spec, spool, spillBatchRecords: 2 });
  const engine = new Engine(p, { log: pino({ level: 'silent' }), now: () => clocks.mono, wallNow: () => clocks.wall, ageNow: () => clocks.age });
  return { clocks, p, engine, spool };
}

describe('engine clocks', () => {
  it('a wall clock jump of months expires nothing; age past the TTL does, in memory and on disk', () => {
    const { clocks, p, engine } = setup();
    for (let i = 0; i < 10; i++) engine.ingest('s', Buffer.from(`r${i}`)); // 4 in the ring, 6 spilled
    assert.equal(p.totals().spooled, 6);
    const stamped = [...p.bufferedRecords()].map((r) => r.ts);
    assert.ok(stamped.every((ts) => ts === Date.UTC(1970, 0, 2)), 'ts is the wall clock, however wrong');

    clocks.wall = Date.UTC(2026, 10, 27); // NTP sets the clock: +56 years
    assert.equal(engine.expireTtl(), 0, 'nothing expired by a wall-clock jump');
    clocks.wall = Date.UTC(1970, 0, 1); // and back
    assert.equal(engine.expireTtl(), 0);

    clocks.age += 59_999;
    assert.equal(engine.expireTtl(), 0, 'not yet');
    clocks.age += 2;
    assert.equal(engine.expireTtl(), 10, 'all ten expired once their age passed the TTL');
    const s = [...p.streams()][0];
    assert.equal(s?.dropped.expired, 10);
    const t = p.totals();
    assert.equal(t.buffered + t.spooled, 0);
    assert.equal(t.ingested, t.dropped);
  });
});
