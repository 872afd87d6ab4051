/**
 * Consumers that misbehave, against the daemon fed by its embedded broker:
 * each gets `error` then a close, the daemon stays healthy, and whatever the
 * bad consumer held is redelivered to a good one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SpillwayConsumer, type WireRecord } from '../daemon/client/consumer.js';
import { startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { freePort } from './helpers/ports.js';
import { publishAll } from './helpers/publisher.js';
import { rawClient, type RawClient } from './helpers/raw-client.js';
import { waitFor } from './helpers/wait.js';

const HELLO = { type: 'hello', v: 1, consumer: 'hostile' };
const MAX_CONSUMERS = 4;

async function expectError(c: RawClient, code: string): Promise<void> {
  const err = await c.next('error');
  assert.equal(err['code'], code, `error code for ${JSON.stringify(err)}`);
  assert.equal(typeof err['message'], 'string');
  await c.closed;
}

describe('hostile consumers', () => {
  let daemon: DaemonProcess;
  let brokerUrl: string;
  let published = 0;

  const publish = async (n: number) => {
    const start = published;
    published += n;
    await publishAll(brokerUrl, Array.from({ length: n }, (_, i) => ({ topic: 'sensors/h', payload: `h-${start + i}` })));
    await waitFor(async () => (await daemon.metrics()).sum('spillway_records_ingested_total') === published || undefined, `${published} ingested`);
  };

  const healthy = async () => {
    const h = await daemon.health();
    assert.equal(h.status, 200, JSON.stringify(h.body));
    assert.equal((await daemon.metrics()).imbalance(), 0);
  };

  /** A bad consumer takes `n` records, then misbehaves; a good one must get them back. */
  const holdThenMisbehave = async (n: number, misbehave: (c: RawClient) => void, code: string) => {
    await publish(n);
    const bad = await rawClient(daemon.consumerUrl);
    bad.send(HELLO);
    await bad.next('welcome');
    bad.send({ type: 'credit', n });
    const batch = await bad.next('records');
    const held = (batch['records'] as WireRecord[]).map((r) => r.seq);
    assert.equal(held.length, n);
    misbehave(bad);
    await expectError(bad, code);

    const good = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'good' });
    const got: WireRecord[] = [];
    good.on('records', (records) => got.push(...records));
    await good.connect();
    good.credit(n);
    await waitFor(() => got.length === n || undefined, `${n} records redelivered`);
    assert.deepEqual(got.map((r) => r.seq).sort((a, b) => a - b), held.sort((a, b) => a - b));
    assert.ok(got.every((r) => r.attempt === 2), 'redelivered with attempt 2');
    good.ack(got.map((r) => r.seq));
    await waitFor(async () => (await daemon.metrics()).sum('spillway_inflight_records') === 0 || undefined, 'acks applied');
    await good.close();
    await healthy();
  };

  before(async () => {
    const port = await freePort();
    daemon = await startDaemon(
      testConfig({
        sources: { embeddedBroker: { enabled: true, port } },
        consumers: { helloTimeoutMs: 300, maxConsumers: MAX_CONSUMERS },
      }),
    );
    brokerUrl = daemon.brokerUrl as string;
  });

  after(async () => {
    assert.equal(await daemon?.stop(), 0);
  });

  it('garbage after hello: bad_message, and what it held is redelivered', async () => {
    await holdThenMisbehave(5, (c) => c.send('this is not json {'), 'bad_message');
  });

  it('unknown message type: bad_message, held records redelivered', async () => {
    await holdThenMisbehave(3, (c) => c.send({ type: 'subscribe', topic: '#' }), 'bad_message');
  });

  it('binary frame: bad_message, held records redelivered', async () => {
    await holdThenMisbehave(2, (c) => c.ws.send(Buffer.from([1, 2, 3]), { binary: true }), 'bad_message');
  });

  it('oversized frame (above 1 MiB): bad_message, held records redelivered', async () => {
    await holdThenMisbehave(2, (c) => c.send({ type: 'ack', seqs: [1], pad: 'x'.repeat(1024 * 1024 + 10) }), 'bad_message');
  });

  for (const [label, n] of [
    ['0', 0],
    ['negative', -5],
    ['fractional', 1.5],
    ['above 2^31-1', 2 ** 31],
    ['a string', '10'],
  ] as const) {
    it(`credit ${label}: bad_message`, async () => {
      await holdThenMisbehave(1, (c) => c.send({ type: 'credit', n }), 'bad_message');
    });
  }

  it('ack not an array: bad_message', async () => {
    await holdThenMisbehave(1, (c) => c.send({ type: 'ack', seqs: 7 }), 'bad_message');
  });

  it('a second hello: protocol', async () => {
    await holdThenMisbehave(1, (c) => c.send(HELLO), 'protocol');
  });

  it('credit before hello: protocol', async () => {
    const c = await rawClient(daemon.consumerUrl);
    c.send({ type: 'credit', n: 10 });
    await expectError(c, 'protocol');
    await healthy();
  });

  it('no hello within the hello timeout: protocol, then closed', async () => {
    const c = await rawClient(daemon.consumerUrl);
    await expectError(c, 'protocol');
    assert.ok(c.messages.every((m) => m['type'] === 'error'), 'it saw nothing but the error');
    await healthy();
  });

  it('hello with an unsupported version: protocol', async () => {
    const c = await rawClient(daemon.consumerUrl);
    c.send({ ...HELLO, v: 2 });
    await expectError(c, 'protocol');
  });

  it('hello with an empty consumer name: bad_message', async () => {
    const c = await rawClient(daemon.consumerUrl);
    c.send({ ...HELLO, consumer: '' });
    await expectError(c, 'bad_message');
  });

  it('too many consumers: too_many_consumers for the one over the cap', async () => {
    const ok: RawClient[] = [];
    for (let i = 0; i < MAX_CONSUMERS; i++) {
      const c = await rawClient(daemon.consumerUrl);
      c.send({ ...HELLO, consumer: `c${i}` });
      await c.next('welcome');
      ok.push(c);
    }
    const extra = await rawClient(daemon.consumerUrl);
    extra.send(HELLO);
    await expectError(extra, 'too_many_consumers');
    assert.equal((await daemon.metrics()).sum('spillway_consumers'), MAX_CONSUMERS);
    for (const c of ok) c.ws.close();
    await Promise.all(ok.map((c) => c.closed));
    await waitFor(async () => (await daemon.metrics()).sum('spillway_consumers') === 0 || undefined, 'consumers gone');
    await healthy();
  });

  it('a consumer that never acks holds at most its credit; others keep being served', async () => {
    await publish(30);
    const hog = await rawClient(daemon.consumerUrl);
    hog.send({ ...HELLO, consumer: 'hog' });
    await hog.next('welcome');
    hog.send({ type: 'credit', n: 10 });
    await waitFor(() => hog.messages.filter((m) => m['type'] === 'records').flatMap((m) => m['records'] as WireRecord[]).length === 10 || undefined, 'hog got 10');

    const good = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'good' });
    const got: WireRecord[] = [];
    good.on('records', (records) => {
      got.push(...records);
      good.ack(records.map((r) => r.seq));
    });
    await good.connect();
    good.credit(100);
    await waitFor(() => got.length === 20 || undefined, 'the good consumer got the other 20');
    const hogGot = hog.messages.filter((m) => m['type'] === 'records').flatMap((m) => m['records'] as WireRecord[]);
    assert.equal(hogGot.length, 10, 'never more than its credit');
    assert.equal((await daemon.metrics()).sum('spillway_inflight_records'), 10);

    hog.ws.terminate();
    await waitFor(() => got.length === 30 || undefined, 'the hog’s records redelivered to the good consumer');
    await waitFor(async () => (await daemon.metrics()).sum('spillway_inflight_records') === 0 || undefined, 'acks applied');
    await good.close();
    await healthy();
  });

  it('counts the errors it answered by code', async () => {
    const m = await daemon.metrics();
    assert.ok(m.sum('spillway_consumer_errors_total', { code: 'bad_message' }) >= 9);
    assert.ok(m.sum('spillway_consumer_errors_total', { code: 'protocol' }) >= 3);
    assert.equal(m.sum('spillway_consumer_errors_total', { code: 'too_many_consumers' }), 1);
  });
});

describe('consumer tokens', () => {
  let daemon: DaemonProcess;

  before(async () => {
    daemon = await startDaemon(testConfig({ consumers: { tokens: ['s3cret-token-one', 'another-token-two'] } }));
  });

  after(async () => {
    await daemon?.stop();
  });

  it('refuses a hello without a token or with a wrong one, and welcomes a right one', async () => {
    const none = await rawClient(daemon.consumerUrl);
    none.send(HELLO);
    await expectError(none, 'unauthorized');

    const wrong = await rawClient(daemon.consumerUrl);
    wrong.send({ ...HELLO, token: 's3cret-token-onE' });
    await expectError(wrong, 'unauthorized');

    const right = await rawClient(daemon.consumerUrl);
    right.send({ ...HELLO, token: 'another-token-two' });
    const welcome = await right.next('welcome');
    assert.equal(welcome['v'], 1);
    assert.equal(welcome['maxCredit'], 10_000);
    assert.equal(welcome['ackTimeoutMs'], 30_000);
    assert.equal(typeof welcome['session'], 'string');
    right.ws.close();
    await right.closed;
  });
});
