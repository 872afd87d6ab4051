/**
 * The WAL guard's decisions, exactly, on a scripted checkpointer and a spool
 * whose WAL size and written bytes the test sets: when a round starts, how
 * many PASSIVE passes it makes and why, when it truncates, what it reports
 * and logs, and when it is tried again. The real rounds against SQLite
 * (a WAL that shrinks, a worker that dies, a full disk) are in
 * checkpointer.test.ts and test/spool-full-disk.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from 'pino';
import type { CheckpointMode, CheckpointResult, Checkpointer } from './checkpointer.js';
import type { SqliteSpool } from './sqlite-spool.js';
import { WalGuard, type WalGuardOptions } from './wal-guard.js';

const DONE: CheckpointResult = { ok: true, busy: 0, log: 10, checkpointed: 10 };

/** A spool as the guard sees it. */
class FakeSpool {
  wal = 0;
  writtenBytes = 0;
  walFails = false;
  growth: ((failed: boolean) => void) | undefined;
  walBytes(): number {
    if (this.walFails) throw new Error('EIO: stat');
    return this.wal;
  }
  onGrowth(listener: (failed: boolean) => void): void {
    this.growth = listener;
  }
}

/** Answers each checkpoint with the next scripted step (which may also write meanwhile). */
class ScriptedCheckpointer {
  readonly modes: CheckpointMode[] = [];
  readonly #steps: Array<() => CheckpointResult>;
  constructor(steps: Array<CheckpointResult | (() => CheckpointResult)>) {
    this.#steps = steps.map((s) => (typeof s === 'function' ? s : () => s));
  }
  async checkpoint(mode: CheckpointMode): Promise<CheckpointResult> {
    this.modes.push(mode);
    const step = this.#steps.shift();
    if (step === undefined) throw new Error(`no step scripted for checkpoint ${this.modes.length} (${mode})`);
    return step();
  }
}

function setup(steps: Array<CheckpointResult | (() => CheckpointResult)>, opts: WalGuardOptions = {}) {
  const spool = new FakeSpool();
  const cp = new ScriptedCheckpointer(steps);
  const logs: Array<[string, string]> = [];
  const at = (level: string) => (fields: { event: string }) => logs.push([level, fields.event]);
  const log = { warn: at('warn'), debug: at('debug') } as unknown as Logger;
  let truncations = 0;
  const guard = new WalGuard(spool as unknown as SqliteSpool, cp as unknown as Checkpointer, log, { walCheckpointBytes: 1_000, pollMs: 60_000, onTruncated: () => truncations++, ...opts });
  return { spool, cp, logs, guard, truncated: () => truncations };
}

describe('the WAL guard', () => {
  it('starts a round only when there is something to do', async () => {
    const { spool, cp, guard } = setup([DONE, DONE, DONE, DONE]);
    assert.equal(guard.checkpoint(), undefined, 'no WAL');
    assert.equal(guard.checkpoint(true), undefined, 'no WAL, even forced');
    spool.wal = 1_000;
    assert.equal(guard.checkpoint(), undefined, 'a WAL at the threshold with nothing written since the last look');
    spool.wal = 1_001;
    assert.ok(guard.checkpoint(), 'past the threshold');
    await guard.checkpoint();
    spool.wal = 10;
    assert.equal(guard.checkpoint(), undefined, 'the round saw what was written');
    spool.writtenBytes = 1;
    assert.ok(guard.checkpoint(), 'written since: a round, however small the WAL');
    await guard.checkpoint();
    assert.deepEqual(cp.modes, ['PASSIVE', 'TRUNCATE', 'PASSIVE', 'TRUNCATE']);
    guard.stop();
  });

  it('one PASSIVE pass that copied everything with nothing written meanwhile, then the TRUNCATE', async () => {
    const { spool, cp, guard, logs, truncated } = setup([DONE, { ok: true, busy: 0, log: 0, checkpointed: 0 }]);
    spool.wal = 5_000;
    const round = guard.checkpoint(true);
    assert.equal(guard.checkpoint(true), round, 'a call during a round shares it');
    spool.wal = 0; // what the TRUNCATE leaves
    assert.deepEqual(await round, { ok: true, complete: true, passes: 1, truncated: true, walBytesBefore: 5_000, walBytesAfter: 0, last: { ok: true, busy: 0, log: 0, checkpointed: 0 } });
    assert.deepEqual(cp.modes, ['PASSIVE', 'TRUNCATE']);
    assert.equal(truncated(), 1);
    assert.deepEqual(logs, [['debug', 'spool_checkpoint']]);
    assert.equal(guard.failing, false);
    guard.stop();
  });

  for (const [why, first] of [
    ['frames left uncopied', { ok: true, busy: 0, log: 10, checkpointed: 9 }],
    ['a reader held it off', { ok: true, busy: 1, log: 10, checkpointed: 10 }],
  ] as const) {
    it(`another PASSIVE pass when the first is not complete (${why}), at most two`, async () => {
      const { spool, cp, guard } = setup([first, first, DONE]);
      spool.wal = 5_000;
      const r = await guard.checkpoint(true);
      assert.deepEqual([r?.passes, r?.truncated, r?.complete], [2, true, true]);
      assert.deepEqual(cp.modes, ['PASSIVE', 'PASSIVE', 'TRUNCATE']);
      guard.stop();
    });
  }

  it('another PASSIVE pass when the daemon wrote during the first; none when it did not', async () => {
    const { spool, cp, guard } = setup([
      () => {
        spool.writtenBytes += 4_096;
        return DONE;
      },
      DONE,
      DONE,
    ]);
    spool.wal = 5_000;
    const r = await guard.checkpoint(true);
    assert.deepEqual([r?.passes, r?.complete], [2, true]);
    assert.deepEqual(cp.modes, ['PASSIVE', 'PASSIVE', 'TRUNCATE']);
    guard.stop();
  });

  it('a failed pass ends the round without a TRUNCATE; the failing spell is logged once, and its end', async () => {
    const failed: CheckpointResult = { ok: false, error: 'database or disk is full' };
    const { spool, cp, guard, logs, truncated } = setup([failed, failed, DONE, DONE]);
    spool.wal = 5_000;
    const r = await guard.checkpoint(true);
    assert.deepEqual(r, { ok: false, complete: false, passes: 1, truncated: false, walBytesBefore: 5_000, walBytesAfter: 5_000, last: failed });
    assert.equal(guard.failing, true);
    assert.ok(guard.checkpoint(), 'a failed round is pending: the next look runs one, nothing written');
    await guard.checkpoint();
    assert.deepEqual(logs, [['warn', 'spool_checkpoint_failed']], 'once per failing spell');
    const ok = await guard.checkpoint();
    assert.deepEqual([ok?.ok, ok?.truncated], [true, true]);
    assert.equal(guard.failing, false);
    assert.deepEqual(logs, [['warn', 'spool_checkpoint_failed'], ['warn', 'spool_checkpoint_recovered']]);
    assert.deepEqual(cp.modes, ['PASSIVE', 'PASSIVE', 'PASSIVE', 'TRUNCATE']);
    assert.equal(truncated(), 1);
    guard.stop();
  });

  it('a TRUNCATE held off is not truncated: not complete, no onTruncated, and the next look tries again', async () => {
    const { spool, cp, guard, truncated } = setup([DONE, { ok: true, busy: 1, log: 3, checkpointed: 3 }, DONE, DONE]);
    spool.wal = 5_000;
    const r = await guard.checkpoint(true);
    assert.deepEqual([r?.ok, r?.complete, r?.truncated, r?.passes], [true, false, false, 1]);
    assert.equal(truncated(), 0);
    spool.wal = 10;
    assert.ok(guard.checkpoint(), 'pending: tried again though the WAL is small and nothing was written');
    assert.deepEqual([(await guard.checkpoint())?.truncated], [true]);
    assert.equal(truncated(), 1);
    assert.deepEqual(cp.modes, ['PASSIVE', 'TRUNCATE', 'PASSIVE', 'TRUNCATE']);
    guard.stop();
  });

  it('reports the WAL after the round as -1 when it cannot be seen, and the round stands', async () => {
    const { spool, guard } = setup([DONE, () => ((spool.walFails = true), DONE)]);
    spool.wal = 5_000;
    const r = await guard.checkpoint(true);
    assert.deepEqual([r?.ok, r?.truncated, r?.walBytesAfter], [true, true, -1]);
    guard.stop();
  });

  it('from the write path: a round once the WAL passes the threshold, none below it', async () => {
    const { spool, cp, guard } = setup([DONE, DONE]);
    spool.wal = 1_000;
    spool.writtenBytes = 100;
    spool.growth?.(false);
    assert.deepEqual(cp.modes, [], 'at the threshold');
    spool.wal = 1_001;
    spool.growth?.(false);
    await guard.checkpoint();
    assert.deepEqual(cp.modes, ['PASSIVE', 'TRUNCATE']);
    guard.stop();
  });

  it('a refused write starts a round at once, whatever the WAL size; a stopped guard starts none', async () => {
    const { spool, cp, guard } = setup([DONE, DONE]);
    spool.wal = 10;
    spool.growth?.(true);
    assert.ok(guard.checkpoint(), 'running');
    await guard.checkpoint();
    assert.deepEqual(cp.modes, ['PASSIVE', 'TRUNCATE']);
    guard.stop();
    spool.wal = 5_000;
    spool.writtenBytes = 1;
    spool.growth?.(true);
    assert.deepEqual(cp.modes, ['PASSIVE', 'TRUNCATE'], 'stopped');
  });

  it('a stat that fails on the write path is a failed round, logged, never thrown into the write', () => {
    const { spool, cp, guard, logs } = setup([]);
    spool.writtenBytes = 1;
    spool.walFails = true;
    spool.growth?.(false);
    assert.deepEqual(cp.modes, []);
    assert.deepEqual(logs, [['warn', 'spool_checkpoint_failed']]);
    assert.equal(guard.failing, true);
    guard.stop();
  });
});
