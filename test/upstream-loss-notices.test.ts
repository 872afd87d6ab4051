/**
 * Loss notices: after a forced overflow (a tiny ring, drop-oldest), every
 * consumer that said hello, in listen and in dial mode, is told per stream
 * and reason how many records were dropped and when; at most one notice a
 * second per stream; what happened while nobody was connected is kept and
 * told later; a connection without hello sees nothing.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { SpillwayConsumer, type LossNotice } from '../daemon/client/consumer.js';
import { dialSchema, lossNoticesSchema } from '../daemon/consumers/config.js';
import { createLossNotices, type LossNotices } from '../daemon/consumers/loss-notices.js';
import { createWsDial, type WsDial } from '../daemon/consumers/ws-dial.js';
import { WsListener } from '../daemon/consumers/ws-listen.js';
import { rawClient } from './helpers/raw-client.js';
import { startEngine, type TestEngine } from './helpers/upstream-engine.js';
import { startUpstreamServer, type TestUpstream } from './helpers/upstream-server.js';
import { waitFor } from './helpers/wait.js';

const SESSION = { tokens: [], helloTimeoutMs: 5_000, maxFrameBytes: 1 << 20, maxCredit: 1_000, ackTimeoutMs: 30_000, maxBatchRecords: 500, maxBufferedBytes: 1 << 20, stuckTimeoutMs: 30_000 };

describe('loss notices', () => {
  let t: TestEngine | undefined;
  let listener: WsListener | undefined;
  let dial: WsDial | undefined;
  let up: TestUpstream | undefined;
  let notices: LossNotices | undefined;
  const closers: Array<() => Promise<void>> = [];

  afterEach(async () => {
    await notices?.stop();
    for (const c of closers.splice(0)) await c();
    await dial?.stop();
    await up?.close();
    listener?.stopAccepting();
    listener?.closeAll();
    t?.stop();
    t = listener = dial = up = notices = undefined;
  });

  const setup = async () => {
    t = startEngine({ spec: { capacityRecords: 5, whenFull: 'drop-oldest' } });
    listener = new WsListener({ ...SESSION, host: '127.0.0.1', port: 0, path: '/v1/consume', maxConsumers: 8 }, t.ctx);
    const url = await listener.start();
    up = await startUpstreamServer();
    dial = createWsDial({ ...SESSION, dial: [dialSchema.parse({ url: up.url, reconnect: { initialMs: 40, maxMs: 200 } })] }, t.ctx);
    await dial.start();
    notices = createLossNotices(lossNoticesSchema.parse({}), { engine: t.engine, log: t.log, targets: [listener, dial] });
    await notices.start();
    return { t, url, up, notices };
  };

  const consumer = async (url: string) => {
    const c = new SpillwayConsumer({ url, name: 'loss-watcher' });
    const got: Array<LossNotice & { at: number }> = [];
    c.on('loss', (n) => got.push({ ...n, at: performance.now() }));
    await c.connect();
    closers.push(() => c.close());
    return got;
  };

  const dropped = (t: TestEngine, stream: string) => [...t.pipeline.streams()].find((s) => s.name === stream)?.dropped.overflow ?? 0;
  const sum = (ns: readonly LossNotice[], stream: string) => ns.filter((n) => n.stream === stream).reduce((a, n) => a + n.count, 0);

  it('drops while nobody is connected are told once someone is, with their time span', async () => {
    const { t, url, notices } = await setup();
    const t0 = Date.now();
    t.ingest('s', Array.from({ length: 20 }, (_, i) => `x${i}`)); // ring of 5: 15 dropped
    assert.equal(dropped(t, 's'), 15);
    notices.tick(); // nobody to tell: kept
    assert.equal(notices.pendingEntries, 1);
    const got = await consumer(url);
    await waitFor(() => got.length > 0 || undefined, 'a loss notice', 5_000);
    const n = got[0];
    assert.ok(n);
    assert.equal(n.type, 'loss');
    assert.equal(n.stream, 's');
    assert.equal(n.reason, 'overflow');
    assert.equal(n.count, 15);
    assert.ok(n.from <= t0 && n.to >= t0 && n.to <= Date.now(), `span ${n.from}..${n.to} holds ${t0}`);
  });

  it('every consumer (listen and dial) is told, at most once a second per stream, and the counts add up', async () => {
    const { t, url, up } = await setup();
    const listened = await consumer(url);
    const dialled = await up.connection(0);
    await dialled.hello();
    const silent = await rawClient(url); // never says hello
    closers.push(async () => silent.ws.terminate());

    // Drops in bursts every 100 ms for ~2.5 s, on two streams.
    let bursts = 0;
    const producer = setInterval(() => {
      t.ingest('a', Array.from({ length: 10 }, (_, i) => `a${bursts}-${i}`));
      if (bursts % 5 === 0) t.ingest('b', Array.from({ length: 8 }, (_, i) => `b${bursts}-${i}`));
      if (++bursts === 25) clearInterval(producer);
    }, 100);
    await waitFor(() => bursts === 25 || undefined, '25 bursts of drops');
    const total = { a: dropped(t, 'a'), b: dropped(t, 'b') };
    assert.ok(total.a > 200 && total.b > 0);
    await waitFor(() => (sum(listened, 'a') === total.a && sum(listened, 'b') === total.b) || undefined, 'every drop told to the listening consumer', 10_000);
    const dialledLoss = () => dialled.messages.filter((m) => m['type'] === 'loss') as unknown as LossNotice[];
    await waitFor(() => (sum(dialledLoss(), 'a') === total.a && sum(dialledLoss(), 'b') === total.b) || undefined, 'every drop told to the dialled upstream', 10_000);

    const times = listened.filter((n) => n.stream === 'a').map((n) => n.at);
    assert.ok(times.length >= 2, `${times.length} notices for stream a`);
    for (let i = 1; i < times.length; i++) {
      const gap = (times[i] ?? 0) - (times[i - 1] ?? 0);
      assert.ok(gap >= 900, `notices for one stream ${gap.toFixed(0)} ms apart`);
    }
    for (const n of listened) assert.ok(n.from <= n.to);
    assert.deepEqual(silent.messages, [], 'a connection without hello sees nothing');
  });
});
