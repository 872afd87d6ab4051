/**
 * Dial mode against a test upstream (a WebSocket server playing the
 * consumer): the bearer token on the upgrade, reconnect with backoff, and
 * records in flight on a cut connection redelivered after the reconnect.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { dialSchema } from '../daemon/consumers/config.js';
import { createWsDial, type WsDial } from '../daemon/consumers/ws-dial.js';
import { startEngine, type TestEngine } from './helpers/upstream-engine.js';
import { startUpstreamServer, type TestUpstream } from './helpers/upstream-server.js';
import { waitFor } from './helpers/wait.js';

const SHARED = { maxFrameBytes: 1 << 20, maxCredit: 1_000, ackTimeoutMs: 30_000, maxBatchRecords: 500, maxBufferedBytes: 1 << 20, stuckTimeoutMs: 30_000 };

describe('dial mode', () => {
  let t: TestEngine | undefined;
  let up: TestUpstream | undefined;
  let dial: WsDial | undefined;

  afterEach(async () => {
    await dial?.stop();
    await up?.close();
    t?.stop();
    dial = up = t = undefined;
  });

  const startDial = async (url: string, extra: Record<string, unknown> = {}) => {
    t = startEngine();
    dial = createWsDial({ ...SHARED, dial: [dialSchema.parse({ url, reconnect: { initialMs: 40, maxMs: 200 }, ...extra })] }, t.ctx);
    await dial.start();
    return { t, dial };
  };

  it('sends the bearer token and the subprotocol; records cut off in flight come back after the reconnect with attempt + 1', async () => {
    up = await startUpstreamServer({ token: 's3cret' });
    const { t } = await startDial(up.url, { token: 's3cret' });
    const seqs = t.ingest('s', Array.from({ length: 10 }, (_, i) => `r${i}`));

    const first = await up.connection(0);
    await first.hello();
    first.send({ type: 'credit', n: 4 });
    await waitFor(() => first.records().length === 4 || undefined, '4 records at the first connection');
    const held = first.records();
    assert.deepEqual(held.map((r) => r.seq), seqs.slice(0, 4));
    assert.ok(held.every((r) => r.attempt === 1));
    first.send({ type: 'ack', seqs: [held[0]?.seq] });
    await waitFor(() => t.pipeline.totals().acked === 1 || undefined, 'the first ack applied');
    first.ws.terminate(); // the cut: three records are in flight

    const second = await up.connection(1);
    await second.hello();
    second.send({ type: 'credit', n: 100 });
    await waitFor(() => second.records().length === 9 || undefined, 'the 9 unacked records at the second connection');
    const got = second.records();
    const again = got.filter((r) => seqs.slice(1, 4).includes(r.seq));
    assert.deepEqual(again.map((r) => r.seq), seqs.slice(1, 4), 'the cut-off records are redelivered, in order');
    assert.ok(again.every((r) => r.attempt === 2), 'with attempt 2');
    assert.deepEqual(again.map((r) => r.data), ['r1', 'r2', 'r3'], 'same data');
    assert.ok(got.filter((r) => !again.includes(r)).every((r) => r.attempt === 1));
    second.send({ type: 'ack', seqs: got.map((r) => r.seq) });
    await waitFor(() => t.pipeline.totals().acked === 10 || undefined, 'all acked');
    assert.equal(t.pipeline.totals().inflight, 0);

    assert.equal(up.attempts.length, 2);
    for (const a of up.attempts) {
      assert.equal(a.authorization, 'Bearer s3cret');
      assert.equal(a.protocol, 'spillway.v1');
    }
  });

  it('a wrong token is refused by the upstream: retried with backoff, nothing delivered', async () => {
    up = await startUpstreamServer({ token: 's3cret' });
    const { t } = await startDial(up.url, { token: 'wrong' });
    t.ingest('s', ['x']);
    await waitFor(() => up?.attempts.length !== undefined && up.attempts.length >= 3, '3 attempts');
    assert.ok(up.attempts.every((a) => a.authorization === 'Bearer wrong' && !a.accepted));
    assert.equal(up.connections.length, 0);
    assert.equal(t.engine.consumerCount, 0);
    assert.equal(t.pipeline.totals().buffered, 1, 'the record waits');
  });

  it('no token configured: no Authorization header, refused by an upstream that wants one', async () => {
    up = await startUpstreamServer({ token: 's3cret' });
    await startDial(up.url);
    await waitFor(() => up?.attempts.length !== undefined && up.attempts.length >= 2, '2 attempts');
    assert.ok(up.attempts.every((a) => a.authorization === undefined && !a.accepted));
    assert.equal(up.connections.length, 0);
  });

  it('an upstream that never says hello gets nothing, is closed within the hello timeout, and is dialled again', async () => {
    up = await startUpstreamServer();
    const { t } = await startDial(up.url, { helloTimeoutMs: 200 });
    t.ingest('s', ['x', 'y']);
    const silent = await up.connection(0);
    const err = await silent.next('error', 2_000);
    assert.equal(err['code'], 'protocol');
    await silent.closed;
    assert.deepEqual(silent.messages.map((m) => m['type']), ['error'], 'it saw nothing but the error');

    const second = await up.connection(1);
    await second.hello();
    second.send({ type: 'credit', n: 10 });
    await waitFor(() => second.records().length === 2 || undefined, 'records after a proper hello');
  });

  it('an upstream that is down at start is reached once it is up', async () => {
    const probe = await startUpstreamServer();
    const port = Number(new URL(probe.url).port);
    await probe.close(); // nothing listens there now
    const { t, dial } = await startDial(probe.url);
    t.ingest('s', ['late']);
    const dialer = dial.dialers[0];
    assert.ok(dialer);
    await waitFor(() => dialer.failures >= 3 || undefined, '3 failed attempts');
    assert.equal(dialer.connected, false);
    up = await startUpstreamServer({ port });
    const c = await up.connection(0);
    await c.hello();
    c.send({ type: 'credit', n: 1 });
    await waitFor(() => c.records().length === 1 || undefined, 'the record once the upstream is up');
    assert.equal(c.records()[0]?.data, 'late');
    assert.equal(dialer.failures, 0, 'the backoff starts over after a welcome');
  });
});
