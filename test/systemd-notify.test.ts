/**
 * daemon/observability/sd-notify.ts against a real notification socket:
 * READY=1, STATUS=, WATCHDOG=1 only while the pipeline progresses, and
 * STOPPING=1 arrive as datagrams sent by real systemd-notify processes from
 * a child whose environment carries NOTIFY_SOCKET and WATCHDOG_USEC. Without
 * NOTIFY_SOCKET nothing is sent; a socket that refuses is counted, not thrown.
 */
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createSdNotify, NOTIFY_COMMANDS, watchdogIntervalMs } from '../daemon/observability/sd-notify.js';
import type { ConsumerState } from '../daemon/core/credit-ledger.js';
import type { Totals } from '../daemon/core/pipeline.js';
import { formatStatus, judgeProgress, PipelineWatch } from '../daemon/observability/watchdog.js';
import { startNotifyChild } from './helpers/notify-driver.js';
import { field, openNotifySocket, type Datagram, type NotifySocket } from './helpers/notify-socket.js';
import { waitFor } from './helpers/wait.js';

/** 300 ms: systemd's WatchdogSec=0.3; the module pings every 150 ms. */
const WATCHDOG_USEC = 300_000;
const INTERVAL_MS = WATCHDOG_USEC / 2_000;

const silent = pino({ level: 'silent' });

function requireSystemdNotify(): void {
  const found = NOTIFY_COMMANDS.some((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false; // try the next candidate
    }
  });
  if (!found) throw new Error(`systemd-notify is required (apt-get install systemd): none of ${NOTIFY_COMMANDS.join(', ')}`);
}

const ticks = (sock: NotifySocket, progressing: boolean): Datagram[] =>
  sock.messages.filter((d) => (field(d, 'STATUS') ?? '').startsWith('tick ') && field(d, 'STATUS')?.endsWith(`progressing=${progressing}`));

describe('sd-notify: the pure parts', () => {
  it('the watchdog period is half of WATCHDOG_USEC, and only for the PID named in WATCHDOG_PID', () => {
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42), 15_000);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 15_000);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '41' }, 42), undefined);
    assert.equal(watchdogIntervalMs({}, 42), undefined);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }, 42), undefined);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 42), undefined);
  });

  it('progress: idle by design when nothing waits or no credit is open; stalled only with both and nothing moving', () => {
    const stallMs = 1_000;
    let v = judgeProgress(undefined, { waiting: 5, sendable: 3, moved: 10 }, 0, stallMs);
    assert.equal(v.progressing, true);
    v = judgeProgress(v.state, { waiting: 5, sendable: 3, moved: 10 }, 999, stallMs);
    assert.deepEqual([v.progressing, v.stalledMs], [true, 999]);
    v = judgeProgress(v.state, { waiting: 5, sendable: 3, moved: 10 }, 1_000, stallMs);
    assert.deepEqual([v.progressing, v.stalledMs], [false, 1_000]);
    const moved = judgeProgress(v.state, { waiting: 5, sendable: 3, moved: 11 }, 1_500, stallMs);
    assert.deepEqual([moved.progressing, moved.stalledMs, moved.state.since], [true, 0, 1_500]);
    const noCredit = judgeProgress(v.state, { waiting: 5, sendable: 0, moved: 10 }, 5_000, stallMs);
    assert.deepEqual([noCredit.progressing, noCredit.state.since], [true, 5_000]);
    const empty = judgeProgress(v.state, { waiting: 0, sendable: 9, moved: 10 }, 5_000, stallMs);
    assert.equal(empty.progressing, true);
  });

  it('STATUS= is one line with the buffer, spool and consumer figures', () => {
    const f = { buffered: 1200, spooled: 30, spoolBytes: 3 * 1_048_576, inflight: 40, heldBytes: 1_258_291, memoryBudgetBytes: 33_554_432, consumers: 2, sendable: 960 };
    assert.equal(formatStatus(f), 'buffered 1200, in flight 40, memory 1.2/32.0 MiB; spooled 30 (3.0 MiB); consumers 2, credit 960');
    assert.match(formatStatus({ ...f, stalledMs: 61_400 }), /^stalled 61 s: buffered 1200/);
  });

  it('PipelineWatch reads the pipeline: a dispatcher that stops sending with credit open is caught, backpressure is not', () => {
    let now = 0;
    const totals = { buffered: 100, spooled: 20, spoolBytes: 2_048, inflight: 0, heldBytes: 40_000, acked: 0, dropped: 0 } as Totals;
    const consumer: ConsumerState = { id: 1, name: 'c', credit: 0, inflight: 0, granted: 0, sent: 0, writable: true, deficit: 0, answeredUpTo: 0 };
    const watch = new PipelineWatch({
      pipeline: { totals: () => ({ ...totals }), consumers: () => [consumer].values() },
      maxCredit: () => 50,
      memoryBudgetBytes: () => 32 * 1_048_576,
      stallMs: () => 60_000,
      now: () => now,
    });
    assert.equal(watch.progressing(), true);
    now = 120_000;
    assert.equal(watch.progressing(), true, 'no credit: backpressure by design');
    consumer.credit = 80; // clamped by the in-flight cap: 50 sendable
    assert.equal(watch.progressing(), true, 'the stall clock starts now');
    assert.equal(watch.status(), 'buffered 100, in flight 0, memory 0.0/32.0 MiB; spooled 20 (0.0 MiB); consumers 1, credit 50');
    now += 59_999;
    assert.equal(watch.progressing(), true);
    now += 1;
    assert.equal(watch.progressing(), false, 'records waiting, credit open, nothing moved for 60 s');
    assert.match(watch.status(), /^stalled 60 s: buffered 100/);
    consumer.sent = 1;
    assert.equal(watch.progressing(), true, 'one delivery is progress');
  });

  it('does nothing without NOTIFY_SOCKET: no process, no failure, no callback', async () => {
    const n = createSdNotify({ log: silent, env: {}, command: '/nonexistent/systemd-notify' });
    assert.equal(n.enabled, false);
    assert.equal(n.watchdogIntervalMs, undefined);
    await n.ready('x');
    await n.watchdog();
    await n.status('y');
    let asked = 0;
    const h = n.startWatchdog({
      progressing: () => (++asked, true),
      status: () => (++asked, 's'),
    });
    assert.equal(h.intervalMs, undefined);
    h.stop();
    await n.stopping();
    await n.flush();
    assert.deepEqual([n.sent, n.failures, asked], [0, 0, 0]);
  });
});

describe('sd-notify: a child process, a real notify socket', () => {
  let sock: NotifySocket;
  before(async () => {
    requireSystemdNotify();
    sock = await openNotifySocket();
  });
  after(async () => sock?.close());

  it('sends READY=1, STATUS=, WATCHDOG=1 only while progressing, then STOPPING=1 and nothing after', async () => {
    const child = await startNotifyChild({ NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: String(WATCHDOG_USEC) });
    try {
      const ready = await child.send({ op: 'ready', status: 'starting' });
      assert.deepEqual([ready.enabled, ready.intervalMs, ready.sent, ready.failures], [true, INTERVAL_MS, 1, 0]);
      const first = await waitFor(() => sock.messages[0], 'READY=1 at the socket');
      assert.deepEqual(first.fields, [
        ['READY', '1'],
        ['STATUS', 'starting'],
      ]);
      if (process.getuid?.() === 0) {
        // Privileged, systemd-notify claims its parent's PID; unprivileged it sends as itself (hence NotifyAccess=all).
        assert.equal(first.pid, child.child.pid);
      }

      // A burst costs at most two senders: one running, one carrying the merged rest.
      const before = sock.messages.length;
      await child.send({ op: 'burst', n: 50 });
      await waitFor(() => sock.messages.some((d) => field(d, 'STATUS') === 'burst 50') || undefined, 'the last status of the burst');
      const burst = sock.messages.slice(before);
      assert.ok(burst.length >= 1 && burst.length <= 2, `${burst.length} messages for a burst of 50`);
      assert.equal(field(burst.at(-1) as Datagram, 'STATUS'), 'burst 50');

      await child.send({ op: 'watchdog' });
      await waitFor(() => ticks(sock, true).length >= 3 || undefined, 'three watchdog ticks while progressing');
      for (const d of ticks(sock, true)) assert.equal(field(d, 'WATCHDOG'), '1', `a progressing tick pings: ${d.text}`);

      await child.send({ op: 'progressing', value: false });
      await waitFor(() => ticks(sock, false).length >= 3 || undefined, 'three ticks while not progressing');
      for (const d of ticks(sock, false)) assert.equal(field(d, 'WATCHDOG'), undefined, `no ping while not progressing: ${d.text}`);
      await waitFor(() => child.logs.find((l) => l['event'] === 'watchdog_withheld' && l['level'] === 50), 'the watchdog_withheld line at ERROR');

      const resumedFrom = ticks(sock, true).length;
      await child.send({ op: 'progressing', value: true });
      await waitFor(() => ticks(sock, true).length >= resumedFrom + 2 || undefined, 'pings again once progressing');
      await waitFor(() => child.logs.find((l) => l['event'] === 'watchdog_resumed' && l['level'] === 40), 'the watchdog_resumed line at WARN');
      for (const d of sock.with('WATCHDOG')) assert.match(field(d, 'STATUS') ?? '', /progressing=true$/, 'every ping went out with a progressing tick');

      await child.send({ op: 'stopping' });
      const stopAt = await waitFor(() => {
        const at = sock.messages.findIndex((d) => field(d, 'STOPPING') === '1');
        return at >= 0 ? at : undefined;
      }, 'STOPPING=1 at the socket');
      assert.match(field(sock.messages[stopAt] as Datagram, 'STATUS') ?? '', /^stopping/);
      // Absence can only be shown by waiting: three watchdog periods with no tick after STOPPING.
      await new Promise((r) => setTimeout(r, 3 * INTERVAL_MS));
      assert.deepEqual(sock.messages.slice(stopAt + 1), [], 'nothing after STOPPING=1: stopping() stopped the watchdog');
      assert.equal(await child.exit(), 0);
      assert.deepEqual(
        child.logs.filter((l) => (l['level'] as number) >= 40).map((l) => l['event']),
        ['watchdog_withheld', 'watchdog_resumed'],
      );
    } finally {
      child.child.kill();
    }
  });

  it('a socket nobody listens on: failures are counted and logged once at ERROR, never thrown', async () => {
    const child = await startNotifyChild({ NOTIFY_SOCKET: `${sock.path}.absent`, WATCHDOG_USEC: String(WATCHDOG_USEC) });
    try {
      const r1 = await child.send({ op: 'ready' });
      assert.deepEqual([r1.sent, r1.failures], [0, 1]);
      const r2 = await child.send({ op: 'status', text: 'still here' });
      assert.deepEqual([r2.sent, r2.failures], [0, 2]);
      const failed = child.logs.filter((l) => l['event'] === 'sd_notify_failed');
      assert.deepEqual(
        failed.map((l) => l['level']),
        [50, 20],
        'the first failure at ERROR, the next at debug',
      );
      assert.match(String(failed[0]?.['problem']), /exited 1/);
      assert.equal(await child.exit(), 0);
    } finally {
      child.child.kill();
    }
  });
});
