/**
 * `spillway consume` in a real process against an in-process daemon
 * endpoint: one JSON line per record on stdout, each acked, at most
 * `--credit` outstanding; exit codes; reconnect.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'node:test';
import type { WireRecord } from '../daemon/client/consumer.js';
import { WsListener } from '../daemon/consumers/ws-listen.js';
import { startEngine, type TestEngine } from './helpers/upstream-engine.js';
import { waitFor } from './helpers/wait.js';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'upstream-consume-fixture.js');
const SESSION = { tokens: ['tok'], helloTimeoutMs: 5_000, maxFrameBytes: 1 << 20, maxCredit: 1_000, ackTimeoutMs: 30_000, maxBatchRecords: 500, maxBufferedBytes: 1 << 20, stuckTimeoutMs: 30_000 };

interface Consume {
  readonly child: ChildProcess;
  readonly lines: WireRecord[];
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

function consume(args: readonly string[]): Consume {
  const child = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: WireRecord[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => lines.push(JSON.parse(l) as WireRecord));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, stderr: () => stderr, exited };
}

describe('spillway consume', () => {
  let t: TestEngine | undefined;
  const listeners: WsListener[] = [];
  const children: ChildProcess[] = [];

  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    for (const l of listeners.splice(0)) {
      l.stopAccepting();
      l.closeAll();
    }
    t?.stop();
    t = undefined;
  });

  const listen = async (t: TestEngine, port = 0) => {
    const l = new WsListener({ ...SESSION, host: '127.0.0.1', port, path: '/v1/consume', maxConsumers: 8 }, t.ctx);
    listeners.push(l);
    return { l, url: await l.start() };
  };

  const run = (args: readonly string[]) => {
    const c = consume(args);
    children.push(c.child);
    return c;
  };

  it('prints each record as a JSON line and acks it, never more than --credit outstanding; SIGTERM exits 0', async () => {
    t = startEngine();
    const { url } = await listen(t);
    const seqs = t.ingest('s', Array.from({ length: 200 }, (_, i) => `line ${i}`));
    t.engine.ingest('bin', Buffer.from([0xff, 0x00, 0x01])); // not UTF-8: base64
    const c = run(['--url', url, '--token', 'tok', '--credit', '5']);
    let worst = 0;
    const sampler = setInterval(() => {
      for (const s of t?.pipeline.consumers() ?? []) worst = Math.max(worst, s.inflight);
    }, 1);
    await waitFor(() => t?.pipeline.totals().acked === 201 || undefined, 'all acked', 15_000);
    clearInterval(sampler);
    assert.ok(worst <= 5, `at most 5 outstanding, saw ${worst}`);
    await waitFor(() => c.lines.length === 201 || undefined, '201 lines');
    const s = c.lines.filter((r) => r.stream === 's');
    assert.deepEqual(s.map((r) => r.seq), seqs);
    assert.deepEqual(s.slice(0, 2).map((r) => [r.data, r.enc, r.attempt, r.prio]), [['line 0', 'utf8', 1, 1], ['line 1', 'utf8', 1, 1]]);
    assert.ok(c.lines.every((r) => typeof r.ts === 'number'));
    const bin = c.lines.find((r) => r.stream === 'bin');
    assert.deepEqual([bin?.data, bin?.enc], ['/wAB', 'base64']);

    t.ingest('s', ['later']);
    await waitFor(() => c.lines.at(-1)?.data === 'later' || undefined, 'a record ingested later');
    c.child.kill('SIGTERM');
    assert.equal(await c.exited, 0);
  });

  it('a wrong token exits 1 saying unauthorized; no --url exits 64', async () => {
    t = startEngine();
    const { url } = await listen(t);
    const bad = run(['--url', url, '--token', 'nope']);
    assert.equal(await bad.exited, 1);
    assert.match(bad.stderr(), /unauthorized/);
    const usage = run(['--credit', '5']);
    assert.equal(await usage.exited, 64);
    assert.match(usage.stderr(), /--url is required/);
  });

  it('the daemon stopping (shutting_down) exits 0; with --reconnect it comes back and goes on', async () => {
    t = startEngine();
    const first = await listen(t);
    const plain = run(['--url', first.url, '--token', 'tok']);
    const again = run(['--url', first.url, '--token', 'tok', '--reconnect', '--credit', '3']);
    await waitFor(() => t?.engine.consumerCount === 2 || undefined, 'both connected');
    first.l.stopAccepting();
    first.l.closeAll();
    assert.equal(await plain.exited, 0);

    const port = Number(new URL(first.url).port);
    await listen(t, port);
    t.ingest('s', ['after the restart']);
    await waitFor(() => again.lines.some((r) => r.data === 'after the restart') || undefined, 'the record after reconnecting', 15_000);
    await waitFor(() => t?.pipeline.totals().acked === 1 || undefined, 'acked');
    again.child.kill('SIGINT');
    assert.equal(await again.exited, 0);
  });
});
