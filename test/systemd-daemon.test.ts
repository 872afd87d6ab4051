/**
 * The daemon under a stand-in for systemd's notify socket: READY=1 once it
 * listens, WATCHDOG=1 with a STATUS= of buffer, spool and consumer figures on
 * every tick (WatchdogSec/2), STOPPING=1 on SIGTERM and nothing after it.
 *
 * Depends on daemon/app.ts calling daemon/observability/sd-notify.ts (see the
 * sd-notify wiring): without it no READY=1 arrives and this test says so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SpillwayConsumer, type WireRecord } from '../daemon/client/consumer.js';
import { testConfig } from './helpers/daemon.js';
import { startNotifyingDaemon } from './helpers/notify-daemon.js';
import { field, openNotifySocket, type NotifySocket } from './helpers/notify-socket.js';
import { freePort } from './helpers/ports.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

/** WatchdogSec=0.4: a tick every 200 ms. */
const WATCHDOG_USEC = 400_000;

describe('the daemon under systemd (Type=notify, WatchdogSec)', () => {
  let sock: NotifySocket;
  before(async () => {
    sock = await openNotifySocket();
  });
  after(async () => sock?.close());

  it('READY=1, then WATCHDOG=1 with STATUS= figures every tick, then STOPPING=1 on SIGTERM', async () => {
    const port = await freePort();
    const daemon = await startNotifyingDaemon(
      testConfig({ sources: { embeddedBroker: { enabled: true, port } } }),
      { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: String(WATCHDOG_USEC) },
    );
    let consumer: SpillwayConsumer | undefined;
    try {
      const ready = await waitFor(
        () => sock.messages.find((d) => field(d, 'READY') === '1'),
        'READY=1 from the daemon (daemon/app.ts must call sd.ready(): see the sd-notify wiring)',
      );
      assert.match(field(ready, 'STATUS') ?? '', /^buffered 0, in flight 0, memory 0\.0\/32\.0 MiB; spooled 0 \(0\.0 MiB\); consumers 0, credit 0$/);
      await waitFor(() => sock.with('WATCHDOG').length >= 3 || undefined, 'three watchdog pings');
      for (const d of sock.with('WATCHDOG')) assert.match(field(d, 'STATUS') ?? '', /^buffered \d+/, 'a ping carries the figures');

      // A consumer that takes 2 of 5 and acks nothing: backpressure, not a stall; the figures say so.
      await publishAll(daemon.brokerUrl as string, Array.from({ length: 5 }, (_, i) => ({ topic: 'sensors/t', payload: `p${i}` })));
      consumer = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'holder' });
      const got: WireRecord[] = [];
      consumer.on('records', (r) => got.push(...r));
      await consumer.connect();
      consumer.credit(2);
      await waitFor(() => got.length === 2 || undefined, 'two records in flight');
      const held = await waitFor(
        () => sock.messages.find((d) => field(d, 'WATCHDOG') === '1' && field(d, 'STATUS')?.startsWith('buffered 3, in flight 2,') && field(d, 'STATUS')?.endsWith('consumers 1, credit 0')),
        'a ping whose STATUS shows 3 buffered, 2 in flight, 1 consumer',
      );
      assert.ok(held);

      const exit = daemon.stop('SIGTERM');
      const stopAt = await waitFor(() => {
        const at = sock.messages.findIndex((d) => field(d, 'STOPPING') === '1');
        return at >= 0 ? at : undefined;
      }, 'STOPPING=1');
      assert.match(field(sock.messages[stopAt] as (typeof sock.messages)[number], 'STATUS') ?? '', /^stopping \(SIGTERM\)/);
      consumer.ack(got.map((r) => r.seq));
      assert.equal(await exit, 0);
      assert.deepEqual(sock.with('WATCHDOG').filter((d) => sock.messages.indexOf(d) > stopAt), [], 'no ping after STOPPING=1');
    } finally {
      await consumer?.close();
      await daemon.stop('SIGKILL');
    }
  });
});
