/**
 * Dial mode keeps its connection honest with WebSocket ping/pong
 * (`consumers.dial[].pingIntervalMs`): an upstream that answers is kept; a
 * half-open one (its process hangs, or the path to it dies, and no FIN ever
 * comes) is dropped after a missed pong and dialled again, and what it held
 * in flight is redelivered, attempt 2, on the new connection, long before
 * the ack timeout.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { dialSchema } from '../daemon/consumers/config.js';
import { createWsDial, type WsDial } from '../daemon/consumers/ws-dial.js';
import { startEngine, type TestEngine } from './helpers/upstream-engine.js';
import { startUpstreamServer, type TestUpstream } from './helpers/upstream-server.js';
import { waitFor } from './helpers/wait.js';

const PING_MS = 150;
const ACK_TIMEOUT_MS = 60_000;
const SHARED = { maxFrameBytes: 1 << 20, maxCredit: 1_000, ackTimeoutMs: ACK_TIMEOUT_MS, maxBatchRecords: 500, maxBufferedBytes: 1 << 20, stuckTimeoutMs: 30_000 };

describe('dial mode ping/pong', () => {
  let t: TestEngine | undefined;
  let up: TestUpstream | undefined;
  let dial: WsDial | undefined;
  let paused: Socket | undefined;

  afterEach(async () => {
    paused?.resume();
    await dial?.stop();
    await up?.close();
    t?.stop();
    dial = up = t = paused = undefined;
  });

  const startDial = async (url: string) => {
    t = startEngine({ ackTimeoutMs: ACK_TIMEOUT_MS });
    dial = createWsDial({ ...SHARED, dial: [dialSchema.parse({ url, pingIntervalMs: PING_MS, reconnect: { initialMs: 40, maxMs: 200 } })] }, t.ctx);
    await dial.start();
    return { t, dial };
  };

  it('an upstream that answers every ping keeps its one connection', async () => {
    up = await startUpstreamServer();
    const { dial } = await startDial(up.url);
    const first = await up.connection(0);
    await first.hello();
    let pings = 0;
    first.ws.on('ping', () => pings++);
    await waitFor(() => pings >= 4, 'four pings answered', 5_000);
    assert.equal(up.connections.length, 1, 'never dropped');
    assert.equal(dial.dialers[0]?.connected, true);
    assert.equal(dial.dialers[0]?.failures, 0);
  });

  it('a half-open upstream (it stops reading, no FIN) is dropped after a missed pong; its records come back, attempt 2, on the next connection', async () => {
    up = await startUpstreamServer();
    const { t } = await startDial(up.url);
    const seqs = t.ingest('s', ['r0', 'r1', 'r2', 'r3', 'r4']);
    const first = await up.connection(0);
    await first.hello();
    first.send({ type: 'credit', n: 3 });
    await waitFor(() => first.records().length === 3, '3 records at the first connection');
    assert.deepEqual(first.records().map((r) => [r.seq, r.attempt]), seqs.slice(0, 3).map((s) => [s, 1]));

    // The upstream hangs: its socket stays open, the kernel still ACKs, but nothing is read or answered.
    paused = (first.ws as unknown as { _socket: Socket })._socket;
    paused.pause();
    const hungAt = Date.now();

    const second = await up.connection(1, 5_000);
    const detectedMs = Date.now() - hungAt;
    assert.ok(detectedMs < 2 * PING_MS + 1_000, `detected within two ping intervals and a reconnect delay (${detectedMs} ms)`);
    assert.equal(t.pipeline.totals().inflight, 0, 'what the hung upstream held was taken back');
    await second.hello();
    second.send({ type: 'credit', n: 10 });
    await waitFor(() => second.records().length === 5, 'all 5 records at the second connection');
    assert.deepEqual(
      second.records().map((r) => [r.seq, r.attempt, r.data]),
      [
        [seqs[0], 2, 'r0'],
        [seqs[1], 2, 'r1'],
        [seqs[2], 2, 'r2'],
        [seqs[3], 1, 'r3'],
        [seqs[4], 1, 'r4'],
      ],
      'exactly the three held records again, attempt 2, in order, then the two never sent',
    );
    second.send({ type: 'ack', seqs });
    await waitFor(() => t.pipeline.totals().acked === 5, 'all acked');
    assert.equal(t.pipeline.totals().dropped, 0);
  });
});
