/**
 * The engine's clocks, injected: TTL ages come from the age clock, so a wall
 * clock that jumps (a Pi without RTC getting NTP time at boot) neither
 * expires records early nor keeps them forever. Group commits, and the
 * report of failed spool operations.
 */
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
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

describe('engine group commit', () => {
  const durable = () => {
    const spool = new MemorySpool();
    const p = new Pipeline({ memoryBudgetBytes: 1 << 20, maxStreams: 4, maxCredit: 100, ackTimeoutMs: 1_000, maxAttempts: 3, specFor: () => ({ ...spec, ttlMs: 0 }), spool, durable: true });
    const engine = new Engine(p, { log: pino({ level: 'silent' }), now: () => 0, wallNow: () => 0, ageNow: () => 0 });
    return { spool, p, engine };
  };

  it('one commit covers every record of a turn, and every source hears it', async () => {
    const { spool, engine } = durable();
    let writes = 0;
    const write = spool.write.bind(spool);
    spool.write = (recs) => {
      writes++;
      write(recs);
    };
    const waits: Array<Promise<boolean>> = [];
    for (let i = 0; i < 3; i++) {
      assert.equal(engine.ingest('s', Buffer.from(`r${i}`)), 'accepted');
      waits.push(engine.committed());
    }
    assert.equal(waits[0], waits[2], 'the same commit');
    assert.equal(engine.commitPending, true);
    assert.deepEqual(await Promise.all(waits), [true, true, true]);
    assert.equal(writes, 1);
    assert.equal(spool.summary()[0]?.records, 3);
    assert.equal(engine.commitPending, false);
    assert.equal(await engine.committed(), true, 'nothing pending: kept at once');
  });

  it('a commit that fails says so, and the next one is separate', async () => {
    const { spool, engine } = durable();
    spool.full = true;
    engine.ingest('s', Buffer.from('a'));
    assert.equal(await engine.committed(), false);
    spool.full = false;
    engine.ingest('s', Buffer.from('b'));
    assert.equal(await engine.committed(), true);
  });

  /** A durable `full` engine whose fdatasyncs end when the test says, on a clock it moves. */
  const syncing = () => {
    const spool = new MemorySpool();
    const writes: number[] = [];
    const write = spool.write.bind(spool);
    spool.write = (recs, deletes) => {
      writes.push(recs.length);
      write(recs, deletes);
    };
    const syncs: Array<(ok: boolean) => void> = [];
    const clock = { mono: 0 };
    const p = new Pipeline({ memoryBudgetBytes: 1 << 20, maxStreams: 4, maxCredit: 100, ackTimeoutMs: 1_000, maxAttempts: 3, specFor: () => ({ ...spec, capacityRecords: 100, ttlMs: 0 }), spool, durable: true });
    const syncCommit = () => new Promise<boolean>((resolve) => syncs.push(resolve));
    const engine = new Engine(p, { log: pino({ level: 'silent' }), now: () => clock.mono, wallNow: () => 0, ageNow: () => 0, syncCommit });
    return { engine, writes, syncs, clock };
  };
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  const settled = async (wait: Promise<boolean>): Promise<boolean | 'pending'> => Promise.race([wait, turn().then(() => 'pending' as const)]);

  it('full: what arrives while an fdatasync runs is written in one transaction when it ends, and waits for as many records as it released', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] }); // the hold's timer moves only when told
    const { engine, writes, syncs } = syncing();
    engine.ingest('s', Buffer.from('a'));
    engine.ingest('s', Buffer.from('b'));
    const first = engine.committed();
    await turn();
    assert.deepEqual([writes, syncs.length], [[2], 1], 'a and b: one transaction, one fdatasync');
    engine.ingest('s', Buffer.from('c'));
    const second = engine.committed();
    await turn();
    engine.ingest('s', Buffer.from('d'));
    await turn();
    assert.deepEqual([writes, syncs.length], [[2], 1], 'c and d wait for the fdatasync: no transaction a turn');
    assert.equal(await settled(first), 'pending', 'a and b are not acknowledged before their fdatasync');
    syncs[0]?.(true);
    assert.equal(await first, true);
    await turn();
    assert.deepEqual(writes, [2], 'c and d wait for the two producers just released (4 records in all)');
    engine.ingest('s', Buffer.from('e'));
    assert.equal(engine.committed(), second, 'e joins the commit of c and d');
    await turn();
    assert.equal(await settled(second), 'pending');
    engine.ingest('s', Buffer.from('f'));
    await turn();
    assert.deepEqual([writes, syncs.length], [[2, 4], 2], 'c, d, e and f: the second transaction, the second fdatasync');
    syncs[1]?.(false);
    assert.equal(await second, false, 'an fdatasync that failed acknowledges none of the four');
  });

  it('full: when fewer come back than were released, the commit goes once the hold (as long as the fdatasync took) passes', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { engine, writes, syncs, clock } = syncing();
    for (const x of ['a', 'b', 'c']) engine.ingest('s', Buffer.from(x));
    await turn();
    clock.mono += 3; // that fdatasync took 3 ms: the hold lasts 3 ms
    syncs[0]?.(true);
    engine.ingest('s', Buffer.from('d')); // one of the three comes back
    const wait = engine.committed();
    await turn();
    t.mock.timers.tick(2);
    await turn();
    assert.deepEqual(writes, [3], 'still held for the other two at 2 ms');
    t.mock.timers.tick(1);
    await turn();
    assert.deepEqual([writes, syncs.length], [[3, 1], 2], 'at 3 ms d goes alone');
    syncs[1]?.(true);
    assert.equal(await wait, true);
  });

  it('full: a hold lasts at least a timer\'s millisecond and at most 10 ms, however long the fdatasync took', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { engine, writes, syncs, clock } = syncing();
    const holdAfter = async (syncMs: number): Promise<number> => {
      engine.ingest('s', Buffer.from('x'));
      engine.ingest('s', Buffer.from('y'));
      await turn();
      const n = writes.length;
      clock.mono += syncMs;
      syncs[syncs.length - 1]?.(true);
      engine.ingest('s', Buffer.from('z'));
      await turn();
      let held = 0;
      while (writes.length === n) {
        t.mock.timers.tick(1);
        held++;
        await turn();
      }
      syncs[syncs.length - 1]?.(true);
      await turn();
      t.mock.timers.tick(20); // that sync's own hold: nobody comes
      await turn();
      return held;
    };
    assert.deepEqual([await holdAfter(0.2), await holdAfter(60), await holdAfter(4.4)], [1, 10, 5]);
  });

  it('freezing (shutdown) answers an open commit with false', async () => {
    const { engine } = durable();
    engine.ingest('s', Buffer.from('a'));
    const wait = engine.committed();
    engine.freeze();
    assert.equal(await wait, false);
  });
});

describe('engine reports', () => {
  it('logs failed spool operations once per report, with what the last one said', () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const spool = new MemorySpool();
    const p = new Pipeline({ memoryBudgetBytes: 1 << 20, maxStreams: 4, maxCredit: 100, ackTimeoutMs: 1_000, maxAttempts: 3, specFor: () => spec, spool, spillBatchRecords: 2 });
    const engine = new Engine(p, { log, now: () => 0, wallNow: () => 0, ageNow: () => 0 });
    spool.full = true;
    for (let i = 0; i < 6; i++) engine.ingest('s', Buffer.from(`r${i}`)); // 4 in the ring; each of the 2 more fails to spill
    const failures = p.totals().spoolFailures;
    assert.ok(failures > 0);
    engine.reportDrops();
    const failing = lines.filter((l) => l['event'] === 'spool_failing');
    assert.deepEqual(
      failing.map((l) => ({ count: l['count'], total: l['total'], err: l['err'], level: l['level'] })),
      [{ count: failures, total: failures, err: 'memory spool marked full', level: 40 }],
    );
    assert.equal(failing[0]?.['msg'], 'spool operations failing: memory spool marked full');
    engine.reportDrops();
    assert.equal(lines.filter((l) => l['event'] === 'spool_failing').length, 1, 'nothing new failed: no second line');
  });

  it('logs records refused because the spool WAL, waiting for its checkpoint, leaves no room under the quota', () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const QUOTA = 400_000;
    // The rows are few; the WAL alone takes the whole quota.
    const spool = new (class extends MemorySpool {
      diskUse() {
        return { live: this.sizeOnDisk(), file: this.sizeOnDisk(), wal: QUOTA, pageSize: 4_096 };
      }
    })();
    const p = new Pipeline({ memoryBudgetBytes: 1 << 20, maxStreams: 4, maxCredit: 100, ackTimeoutMs: 1_000, maxAttempts: 3, specFor: () => spec, spool, spoolQuotaBytes: QUOTA, spillBatchRecords: 2 });
    const engine = new Engine(p, { log, now: () => 0, wallNow: () => 0, ageNow: () => 0 });
    for (let i = 0; i < 6; i++) engine.ingest('s', Buffer.from(`r${i}`)); // 4 in the ring; each of the 2 more is refused
    assert.deepEqual([p.totals().spoolWalRefused, p.totals().spoolFailures], [2, 0]);
    engine.reportDrops();
    const behind = lines.filter((l) => l['event'] === 'spool_wal_behind');
    assert.deepEqual(behind.map((l) => ({ count: l['count'], total: l['total'], level: l['level'] })), [{ count: 2, total: 2, level: 40 }]);
    engine.reportDrops();
    assert.equal(lines.filter((l) => l['event'] === 'spool_wal_behind').length, 1, 'nothing new refused: no second line');
  });

  it('logs records of streams no group selects, which are counted and held by no one', () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const groups = [{ name: 'cloud', selects: (s: string) => s === 'a' }];
    const p = new Pipeline({ memoryBudgetBytes: 1 << 20, maxStreams: 4, maxCredit: 100, ackTimeoutMs: 1_000, maxAttempts: 3, specFor: () => spec, groups: () => groups });
    const engine = new Engine(p, { log, now: () => 0, wallNow: () => 0, ageNow: () => 0 });
    for (const stream of ['a', 'b', 'b', 'c']) assert.equal(engine.ingest(stream, Buffer.from('x')), 'accepted');
    assert.deepEqual([p.totals().unselected, p.totals().ingested], [3, 1]);
    engine.reportDrops();
    engine.reportDrops();
    const unselected = lines.filter((l) => l['event'] === 'records_unselected');
    assert.deepEqual(unselected.map((l) => [l['count'], l['total'], l['level']]), [[3, 3, 40]], 'one line for the three, none when nothing new');
  });
});
