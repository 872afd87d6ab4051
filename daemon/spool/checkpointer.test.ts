/**
 * The checkpoint worker dying: the checkpoint it ran fails (it never
 * hangs, never throws into the daemon), the next one starts a new worker,
 * and the WAL guard's retry brings checkpoints back on their own; a write
 * SQLite refuses starts a round at once, whatever the WAL's size.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { Checkpointer } from './checkpointer.js';
import { SqliteSpool } from './sqlite-spool.js';
import { WalGuard, type WalGuardOptions } from './wal-guard.js';
import { injectFault } from '../../test/helpers/sqlite-faults.js';
import { waitFor } from '../../test/helpers/wait.js';
import { SpoolFullError } from './spool-port.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * A worker script that dies the first time it is asked (`how`), then is the
 * real worker. `idle-exit` and `idle-throw` answer their first checkpoint
 * (as if the WAL were empty) and die between checkpoints, once the test
 * creates `<spool file>.die` (dying at once, the error could reach the
 * daemon before the answer did).
 */
function dyingWorker(dir: string, how: 'exit' | 'throw' | 'idle-exit' | 'idle-throw'): URL {
  const real = new URL('./checkpoint-worker.js', import.meta.url).href;
  const file = join(dir, `dying-${how}.mjs`);
  const answerThenWait = "parentPort.postMessage({ ok: true, busy: 0, log: 0, checkpointed: 0 }); setInterval(() => { if (!existsSync(workerData.file + '.die')) return;";
  const die = {
    exit: 'process.exit(7);',
    throw: "throw new Error('worker blew up');",
    'idle-exit': `${answerThenWait} process.exit(0); }, 5);`,
    'idle-throw': `${answerThenWait} throw new Error('idle worker blew up'); }, 5);`,
  }[how];
  writeFileSync(
    file,
    `import { existsSync, writeFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
const marker = workerData.file + '.died';
if (!existsSync(marker)) {
  writeFileSync(marker, '');
  parentPort.once('message', () => { ${die} });
} else await import(${JSON.stringify(real)});
`,
  );
  return pathToFileURL(file);
}

function spoolWithWal(): { dir: string; spool: SqliteSpool } {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-ckpt-'));
  dirs.push(dir);
  const { spool } = SqliteSpool.open({ file: join(dir, 'spool.db'), synchronous: 'normal' });
  spool.write(Array.from({ length: 500 }, (_, i) => ({ seq: i + 1, stream: 'a', prio: 1, ts: 0, born: 0, attempt: 0, payload: Buffer.alloc(200, 1) })));
  assert.ok(spool.fileBytes().wal > 0);
  return { dir, spool };
}

type GuardLog = ConstructorParameters<typeof WalGuard>[2];
const QUIET: GuardLog = { warn: () => undefined, debug: () => undefined } as unknown as GuardLog;

/** A spool with a WAL, its checkpointer and a WAL guard over them; `body` runs, then all three are closed. */
async function withGuard(opts: { guard?: WalGuardOptions; log?: GuardLog; worker?: (dir: string) => URL }, body: (spool: SqliteSpool, guard: WalGuard) => Promise<void>): Promise<void> {
  const { dir, spool } = spoolWithWal();
  const c = new Checkpointer(spool.file, opts.worker === undefined ? {} : { workerUrl: opts.worker(dir) });
  const guard = new WalGuard(spool, c, opts.log ?? QUIET, opts.guard);
  try {
    await body(spool, guard);
  } finally {
    guard.stop();
    await c.close();
    spool.close();
  }
}

describe('checkpointer: a dying worker', () => {
  for (const how of ['exit', 'throw'] as const) {
    it(`a worker that ${how === 'exit' ? 'exits' : 'throws'} fails its checkpoint; the next one starts a new worker`, async () => {
      const { dir, spool } = spoolWithWal();
      const c = new Checkpointer(spool.file, { workerUrl: dyingWorker(dir, how) });
      try {
        const first = await c.checkpoint('PASSIVE');
        assert.equal(first.ok, false);
        assert.match(first.error ?? '', how === 'exit' ? /exited \(code 7\)/ : /worker blew up/);
        assert.equal(c.running, false, 'not stuck as running');
        const second = await c.checkpoint('TRUNCATE');
        assert.deepEqual(second, { ok: true, busy: 0, log: 0, checkpointed: 0 });
        assert.equal(c.started, 2);
        assert.equal(spool.fileBytes().wal, 0, 'the WAL truncated by the new worker');
      } finally {
        await c.close();
        spool.close();
      }
    });
  }

  for (const how of ['idle-exit', 'idle-throw'] as const) {
    it(`a worker that ${how === 'idle-exit' ? 'exits' : 'throws'} between checkpoints is forgotten, nothing thrown into the daemon; the next checkpoint starts a new one`, async () => {
      const { dir, spool } = spoolWithWal();
      const c = new Checkpointer(spool.file, { workerUrl: dyingWorker(dir, how) });
      try {
        assert.deepEqual(await c.checkpoint('PASSIVE'), { ok: true, busy: 0, log: 0, checkpointed: 0 });
        assert.equal(c.alive, true);
        writeFileSync(`${spool.file}.die`, '');
        // Waited for, or the next checkpoint could reach the worker before it died (and fail, as above).
        await waitFor(() => !c.alive, 'the dead worker forgotten');
        const next = await c.checkpoint('TRUNCATE');
        assert.deepEqual(next, { ok: true, busy: 0, log: 0, checkpointed: 0 }, 'not sent to the dead worker (it would never answer)');
        assert.equal(c.started, 2);
        assert.equal(spool.fileBytes().wal, 0);
      } finally {
        await c.close();
        spool.close();
      }
    });
  }

  it('a closed worker exiting after a new one started does not make the checkpointer forget the new one', async () => {
    const { spool } = spoolWithWal();
    const c = new Checkpointer(spool.file);
    try {
      await c.checkpoint('PASSIVE');
      const closing = c.close(); // the first worker's exit comes later
      const next = c.checkpoint('TRUNCATE'); // starts a second worker meanwhile
      await closing;
      assert.equal((await next).ok, true);
      assert.equal(c.started, 2);
      assert.equal(c.alive, true, 'the second worker is still the one to use (and to terminate on close)');
      await c.close();
      assert.equal(c.alive, false);
    } finally {
      await c.close();
      spool.close();
    }
  });

  it('the WAL guard bounds the WAL under one-record commits of a few bytes, with no timer of its own', async () => {
    await withGuard({ guard: { walCheckpointBytes: 256 * 1024, pollMs: 20 } }, async (spool, guard) => {
      let peak = 0;
      // The worker thread starts with the first checkpoint (about 100 ms: an idle daemon runs none).
      await guard.checkpoint(true);
      // Durable mode without a consumer: a group commit of one small record a turn. Each appends
      // whole pages to the WAL while its payload is a few bytes.
      for (let seq = 1_000; seq < 4_000; seq++) {
        spool.write([{ seq, stream: 'a', prio: 1, ts: seq, born: seq, attempt: 0, payload: Buffer.alloc(8, 1) }]);
        peak = Math.max(peak, spool.fileBytes().wal);
        await new Promise((r) => setImmediate(r)); // one commit a turn, as the engine makes them; the worker checkpoints meanwhile
      }
      // Measured: 3.0-4.3 MB (rounds take 10-15 ms while commits go on); unchecked, the WAL takes all of it, 26 MB.
      assert.ok(peak < 10 * 1024 * 1024, `the WAL peaked at ${peak} bytes: checkpointed as it grew`);
    });
  });

  it('writes start a round by themselves once 64 KiB more went in and the WAL is past the threshold (no timer, no schedule)', async () => {
    await withGuard({ guard: { walCheckpointBytes: 64 * 1024, pollMs: 60_000 } }, async (spool) => {
      // Past the threshold already, but no round runs until something looks (the guard arms no timer of its own).
      assert.ok(spool.fileBytes().wal > 64 * 1024);
      spool.write(Array.from({ length: 20 }, (_, i) => ({ seq: 10_000 + i, stream: 'a', prio: 1, ts: 0, born: 0, attempt: 0, payload: Buffer.alloc(4_000, 2) })));
      await waitFor(() => (spool.fileBytes().wal === 0 ? true : undefined), 'the round the write started, truncating the WAL', 10_000);
    });
  });

  it('a write SQLite refuses starts a round at once, below the threshold, and the truncate is told (the core tries again)', async () => {
    let truncates = 0;
    // No timer, no schedule: a threshold the WAL never reaches.
    await withGuard({ guard: { walCheckpointBytes: 1 << 30, pollMs: 60_000, onTruncated: () => truncates++ } }, async (spool, guard) => {
      const wal = spool.fileBytes().wal;
      assert.equal(guard.checkpoint(), undefined, 'nothing written since the guard began, under the threshold: no round');
      const fault = injectFault({ code: 'SQLITE_FULL', sql: /INSERT INTO records/ });
      try {
        assert.throws(() => spool.write([{ seq: 9_999, stream: 'a', prio: 1, ts: 0, born: 0, attempt: 0, payload: Buffer.alloc(8) }]), SpoolFullError);
      } finally {
        fault.restore();
      }
      assert.equal(fault.fired, 1);
      await waitFor(() => (spool.fileBytes().wal === 0 ? true : undefined), `the ${wal}-byte WAL truncated after the refused write`, 10_000);
      await waitFor(() => (truncates === 1 ? true : undefined), 'the truncate told');
    });
  });

  it('the WAL guard retries a failed round by itself until the WAL is truncated', async () => {
    const warned: unknown[] = [];
    const log = { warn: (o: unknown) => warned.push(o), debug: () => undefined } as unknown as GuardLog;
    await withGuard({ guard: { pollMs: 20 }, log, worker: (dir) => dyingWorker(dir, 'exit') }, async (spool, guard) => {
      const round = await guard.checkpoint(true);
      assert.equal(round?.ok, false);
      assert.equal(guard.failing, true);
      await waitFor(() => (spool.fileBytes().wal === 0 && !guard.failing ? true : undefined), 'the retry to truncate the WAL', 10_000);
      assert.deepEqual(
        warned.map((w) => (w as { event: string }).event),
        ['spool_checkpoint_failed', 'spool_checkpoint_recovered'],
      );
    });
  });
});
