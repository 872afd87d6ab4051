/**
 * The daemon as a process: signals, the drain deadline, exit codes, and an
 * invalid config refused with the key, the value and what is allowed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SpillwayConsumer, type WireRecord } from '../daemon/client/consumer.js';
import { CLI, startDaemon, testConfig } from './helpers/daemon.js';
import { freePort } from './helpers/ports.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';
import { makeTempDir } from './helpers/tmp.js';

const run = promisify(execFile);

async function withBroker(drainTimeoutMs: number) {
  const port = await freePort();
  const daemon = await startDaemon(
    testConfig({
      sources: { embeddedBroker: { enabled: true, port } },
      shutdown: { drainTimeoutMs },
    }),
  );
  return daemon;
}

describe('process', () => {
  it('SIGTERM with nothing in flight exits 0 at once', async () => {
    const daemon = await startDaemon(testConfig({ shutdown: { drainTimeoutMs: 30_000 } }));
    const t0 = Date.now();
    assert.equal(await daemon.stop('SIGTERM'), 0);
    assert.ok(Date.now() - t0 < 5_000, 'did not wait for a drain deadline with nothing in flight');
    assert.ok(daemon.logs.some((l) => l.event === 'stopped'));
  });

  it('SIGINT exits 0 too', async () => {
    const daemon = await startDaemon(testConfig());
    assert.equal(await daemon.stop('SIGINT'), 0);
  });

  it('SIGTERM waits for in-flight acks, then exits 0 with nothing owed', async () => {
    const daemon = await withBroker(20_000);
    await publishAll(daemon.brokerUrl as string, Array.from({ length: 20 }, (_, i) => ({ topic: 'sensors/x', payload: `p${i}` })));
    const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'slow' });
    const got: WireRecord[] = [];
    c.on('records', (r) => got.push(...r));
    await c.connect();
    c.credit(20);
    await waitFor(() => got.length === 20 || undefined, '20 records in flight');
    const exit = daemon.stop('SIGTERM');
    await daemon.waitForLog((l) => l.event === 'stopping', 'the stopping line');
    c.ack(got.map((r) => r.seq));
    assert.equal(await exit, 0);
    const stopped = await daemon.waitForLog((l) => l.event === 'stopped', 'the stopped line');
    assert.equal(stopped['inflight'], 0);
    assert.equal(stopped['acked'], 20);
  });

  it('SIGTERM gives up on a consumer that never acks at the drain deadline, exits 0, and the next start delivers everything', async () => {
    const drainMs = 800;
    const daemon = await withBroker(drainMs);
    await publishAll(daemon.brokerUrl as string, Array.from({ length: 12 }, (_, i) => ({ topic: 'sensors/y', payload: `p${i}` })));
    await waitFor(async () => (await daemon.metrics()).sum('spillway_records_ingested_total') === 12 || undefined, '12 ingested');
    const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'silent' });
    const got: WireRecord[] = [];
    c.on('records', (r) => got.push(...r));
    const shutdownNotice = new Promise<string>((resolve) => c.on('serverError', (e) => resolve(e.code)));
    await c.connect();
    c.credit(5);
    await waitFor(() => got.length === 5 || undefined, '5 records in flight');
    const t0 = Date.now();
    assert.equal(await daemon.stop('SIGTERM'), 0);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= drainMs - 50, `waited for the drain deadline (${elapsed} ms)`);
    assert.ok(elapsed < drainMs + 5_000, `exited soon after the drain deadline (${elapsed} ms)`);
    assert.equal(await shutdownNotice, 'shutting_down');
    const stopped = daemon.logs.find((l) => l.event === 'stopped');
    assert.equal(stopped?.['inflight'], 5);
    assert.equal(stopped?.['buffered'], 7);
    assert.equal(stopped?.['written'], 12, 'everything owed went to the spool');

    const again = await startDaemon(testConfig(), { dataDir: daemon.dataDir });
    try {
      const m = await again.metrics();
      assert.equal(m.sum('spillway_records_recovered_total'), 12);
      assert.equal(m.sum('spillway_spool_records'), 12);
      assert.equal(m.imbalance(), 0);
      const c2 = new SpillwayConsumer({ url: again.consumerUrl, name: 'after-restart' });
      const got2: WireRecord[] = [];
      c2.on('records', (r) => {
        got2.push(...r);
        c2.ack(r.map((x) => x.seq));
      });
      await c2.connect();
      c2.credit(100);
      await waitFor(() => got2.length === 12 || undefined, 'all 12 delivered after the restart');
      assert.deepEqual(got2.map((r) => r.data).sort(), Array.from({ length: 12 }, (_, i) => `p${i}`).sort());
      const held = new Map(got.map((r) => [r.seq, r]));
      for (const r of got2) {
        const before = held.get(r.seq);
        if (before !== undefined) {
          assert.equal(r.attempt, 2, 'a record in flight at the stop comes back as a redelivery');
          assert.deepEqual([r.stream, r.prio, r.ts, r.data], [before.stream, before.prio, before.ts, before.data]);
        } else assert.equal(r.attempt, 1);
      }
      await waitFor(async () => (await again.metrics()).sum('spillway_records_acked_total') === 12 || undefined, 'acks applied');
      await c2.close();
    } finally {
      assert.equal(await again.stop(), 0);
    }
    const restopped = again.logs.find((l) => l.event === 'stopped');
    assert.equal(restopped?.['written'], 0);
  });

  it('refuses an invalid config with exit 78, naming the key, the value and what is allowed', async () => {
    const dir = await makeTempDir('cfg');
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'consumers:\n  maxCredit: 0\n  listen:\n    port: 70000\nstreamDefaults:\n  whenFull: explode\nbogus: 1\n', { mode: 0o600 });
    const result = await run(process.execPath, [CLI, 'run', '--config', file]).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => err,
    );
    assert.equal(result.code, 78);
    assert.match(result.stdout, /consumers\.maxCredit: 0 is not allowed: expected at least 1/);
    assert.match(result.stdout, /consumers\.listen\.port: 70000 is not allowed: expected at most 65535/);
    assert.match(result.stdout, /streamDefaults\.whenFull: \\"explode\\" is not allowed: expected one of \\"spill\\", \\"drop-oldest\\", \\"drop-newest\\", \\"block\\"/);
    assert.match(result.stdout, /bogus: unknown key/);

    const check = await run(process.execPath, [CLI, 'check-config', file]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(check.code, 78);
    assert.match(check.stderr, /consumers\.maxCredit: 0 is not allowed/);

    const good = join(dir, 'good.yaml');
    await writeFile(good, `consumers:\n  listen:\n    port: ${await freePort()}\n`, { mode: 0o600 });
    const ok = await run(process.execPath, [CLI, 'check-config', good]);
    assert.match(ok.stdout, /ok/);
  });
});
