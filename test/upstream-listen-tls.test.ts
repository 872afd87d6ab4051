/**
 * Listen mode over TLS (wss://) and mutual TLS, dial mode over wss://, with
 * certificates made by openssl for this run; and the deadlines that close
 * unauthenticated or silent connections.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { SpillwayConsumer, type WireRecord } from '../daemon/client/consumer.js';
import { dialSchema, listenTlsSchema } from '../daemon/consumers/config.js';
import { createWsDial } from '../daemon/consumers/ws-dial.js';
import { WsListener } from '../daemon/consumers/ws-listen.js';
import { SpillwayError } from '../daemon/errors.js';
import { makeTestCerts, type TestCerts } from './helpers/upstream-certs.js';
import { startEngine, type TestEngine } from './helpers/upstream-engine.js';
import { startUpstreamServer } from './helpers/upstream-server.js';
import { waitFor } from './helpers/wait.js';

const HELLO_TIMEOUT_MS = 300;
const SESSION = { tokens: ['tok'], helloTimeoutMs: HELLO_TIMEOUT_MS, maxFrameBytes: 1 << 20, maxCredit: 1_000, ackTimeoutMs: 30_000, maxBatchRecords: 500, maxBufferedBytes: 1 << 20, stuckTimeoutMs: 30_000 };

function listener(t: TestEngine, tls: Record<string, unknown>): WsListener {
  return new WsListener({ ...SESSION, host: '127.0.0.1', port: 0, path: '/v1/consume', maxConsumers: 8, tls: listenTlsSchema.parse(tls) }, t.ctx);
}

/** Resolves with how the connection attempt ended: 'welcome', or the error. */
async function tryConsumer(url: string, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer }, token = 'tok'): Promise<string> {
  const c = new SpillwayConsumer({ url, name: 'tls-test', token, tls });
  try {
    await c.connect();
    await c.close();
    return 'welcome';
  } catch (err) {
    return (err as Error).message;
  }
}

/** Milliseconds until the server closes a raw connection that sends nothing. */
function silentFor(connect: () => import('node:net').Socket): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const s = connect();
    s.on('error', () => undefined);
    s.once('close', () => resolve(performance.now() - t0));
    setTimeout(() => {
      s.destroy();
      reject(new Error('the server kept a silent connection open'));
    }, 10 * HELLO_TIMEOUT_MS).unref();
  });
}

describe('listen mode over TLS', () => {
  let certs: TestCerts;
  let ca: Buffer;
  let t: TestEngine;
  let wss: WsListener;
  let url: string;

  before(async () => {
    certs = await makeTestCerts();
    ca = await readFile(certs.caCert);
    t = startEngine();
    wss = listener(t, { cert: certs.serverCert, key: certs.serverKey });
    url = await wss.start();
  });

  after(() => {
    wss.stopAccepting();
    wss.closeAll();
    t.stop();
  });

  it('serves wss:// to a client that trusts the CA, with the token', async () => {
    assert.match(url, /^wss:\/\/127\.0\.0\.1:\d+\/v1\/consume$/);
    t.ingest('s', ['over tls']);
    const c = new SpillwayConsumer({ url, name: 'tls', token: 'tok', tls: { ca } });
    const got: WireRecord[] = [];
    c.on('records', (r) => got.push(...r));
    await c.connect();
    c.credit(1);
    await waitFor(() => got.length === 1 || undefined, 'the record over TLS');
    assert.equal(got[0]?.data, 'over tls');
    c.ack([got[0]?.seq ?? 0]);
    await waitFor(() => t.pipeline.totals().acked === 1 || undefined, 'the ack');
    await c.close();
  });

  it('a client that does not trust the certificate cannot connect; plain ws:// neither', async () => {
    assert.match(await tryConsumer(url, {}), /self[- ]signed|unable to verify|certificate/i);
    assert.notEqual(await tryConsumer(url.replace('wss:', 'ws:'), {}), 'welcome');
  });

  it('no token: unauthorized, and it saw nothing', async () => {
    assert.match(await tryConsumer(url, { ca }, 'wrong'), /^unauthorized/);
  });

  it('silent connections are closed within the hello timeout: before TLS, after TLS, after the upgrade', async () => {
    const { port } = new URL(url);
    const raw = await silentFor(() => tcpConnect(Number(port), '127.0.0.1'));
    assert.ok(raw < 4 * HELLO_TIMEOUT_MS, `a raw TCP connection was closed after ${raw} ms`);
    const tls = await silentFor(() => tlsConnect({ port: Number(port), host: '127.0.0.1', ca }));
    assert.ok(tls < 4 * HELLO_TIMEOUT_MS, `a TLS connection without a request was closed after ${tls} ms`);

    const ws = new WebSocket(url, 'spillway.v1', { ca });
    const messages: string[] = [];
    ws.on('message', (d) => messages.push(d.toString()));
    const t0 = performance.now();
    const code = await new Promise<number>((resolve) => ws.once('close', resolve));
    assert.ok(performance.now() - t0 < 4 * HELLO_TIMEOUT_MS);
    assert.equal(code, 1008);
    assert.equal(messages.length, 1);
    assert.equal(JSON.parse(messages[0] ?? '{}').code, 'protocol');
  });
});

describe('listen mode over mutual TLS', () => {
  let certs: TestCerts;
  let t: TestEngine;
  let wss: WsListener;
  let url: string;
  let pem: { ca: Buffer; cert: Buffer; key: Buffer; strangerCert: Buffer; strangerKey: Buffer };

  before(async () => {
    certs = await makeTestCerts();
    pem = {
      ca: await readFile(certs.caCert),
      cert: await readFile(certs.clientCert),
      key: await readFile(certs.clientKey),
      strangerCert: await readFile(certs.strangerCert),
      strangerKey: await readFile(certs.strangerKey),
    };
    t = startEngine();
    wss = listener(t, { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.caCert });
    url = await wss.start();
  });

  after(() => {
    wss.stopAccepting();
    wss.closeAll();
    t.stop();
  });

  it('a client certificate signed by the CA is let in', async () => {
    assert.equal(await tryConsumer(url, { ca: pem.ca, cert: pem.cert, key: pem.key }), 'welcome');
  });

  it('a client certificate from another CA is refused in the handshake, and counted', async () => {
    const before = t.counters.consumerErrors.get(['tls_handshake']);
    const result = await tryConsumer(url, { ca: pem.ca, cert: pem.strangerCert, key: pem.strangerKey });
    assert.notEqual(result, 'welcome');
    assert.doesNotMatch(result, /unauthorized/, 'refused before any WebSocket message');
    await waitFor(() => t.counters.consumerErrors.get(['tls_handshake']) > before || undefined, 'the refusal counted');
  });

  it('no client certificate: refused', async () => {
    assert.notEqual(await tryConsumer(url, { ca: pem.ca }), 'welcome');
  });
});

describe('TLS files', () => {
  it('a certificate file that cannot be read stops the start, naming the key', async () => {
    const t = startEngine();
    const l = listener(t, { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' });
    await assert.rejects(l.start(), (err: unknown) => err instanceof SpillwayError && err.code === 'CONFIG_READ' && /consumers\.listen\.tls\.cert\b/.test(err.message));
    t.stop();
  });

  it('a key that does not match the certificate stops the start, naming the keys', async () => {
    const certs = await makeTestCerts();
    const t = startEngine();
    const l = listener(t, { cert: certs.serverCert, key: certs.clientKey });
    await assert.rejects(l.start(), (err: unknown) => err instanceof SpillwayError && err.code === 'CONFIG_READ' && /consumers\.listen\.tls/.test(err.message));
    t.stop();
  });

  it('tls without cert and key is a config error naming both', () => {
    const r = listenTlsSchema.safeParse({});
    assert.equal(r.success, false);
    assert.deepEqual(r.error?.issues.map((i) => i.path.join('.')), ['cert', 'key']);
  });
});

describe('dial mode over wss://', () => {
  let certs: TestCerts;

  before(async () => {
    certs = await makeTestCerts();
  });

  const dialTo = async (upstreamTls: { certFile: string; keyFile: string; clientCaFile?: string }, dialTls: Record<string, unknown>) => {
    const up = await startUpstreamServer({ tls: upstreamTls });
    const t = startEngine();
    const dial = createWsDial(
      { maxFrameBytes: 1 << 20, maxCredit: 100, ackTimeoutMs: 30_000, maxBatchRecords: 500, maxBufferedBytes: 1 << 20, stuckTimeoutMs: 30_000, dial: [dialSchema.parse({ url: up.url, reconnect: { initialMs: 40, maxMs: 200 }, ...dialTls })] },
      t.ctx,
    );
    await dial.start();
    const dialer = dial.dialers[0];
    assert.ok(dialer);
    return {
      up,
      t,
      dialer,
      close: async () => {
        await dial.stop();
        await up.close();
        t.stop();
      },
    };
  };

  it('trusts the upstream through caFile, and delivers', async () => {
    const d = await dialTo({ certFile: certs.serverCert, keyFile: certs.serverKey }, { tls: { ca: certs.caCert } });
    d.t.ingest('s', ['secure']);
    const c = await d.up.connection(0);
    await c.hello();
    c.send({ type: 'credit', n: 1 });
    await waitFor(() => c.records().length === 1 || undefined, 'the record over wss');
    await d.close();
  });

  it('without the CA the upstream is not trusted: no connection, retried', async () => {
    const d = await dialTo({ certFile: certs.serverCert, keyFile: certs.serverKey }, {});
    await waitFor(() => d.dialer.failures >= 2 || undefined, 'two failed attempts');
    assert.equal(d.up.connections.length, 0);
    await d.close();
  });

  it('presents its client certificate to an upstream that wants mutual TLS', async () => {
    const mtls = { certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert };
    const ok = await dialTo(mtls, { tls: { ca: certs.caCert, cert: certs.clientCert, key: certs.clientKey } });
    await (await ok.up.connection(0)).hello();
    await ok.close();
    const stranger = await dialTo(mtls, { tls: { ca: certs.caCert, cert: certs.strangerCert, key: certs.strangerKey } });
    await waitFor(() => stranger.dialer.failures >= 2 || undefined, 'two refused attempts');
    assert.equal(stranger.up.connections.length, 0);
    await stranger.close();
  });
});
