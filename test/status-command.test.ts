/**
 * `buildStatus` over a real Pipeline (built as daemon/app.ts builds it, a
 * memory spool in place of SQLite), and `spillway status` (`runStatus`)
 * against a real HTTP server on 127.0.0.1 serving that status: the table,
 * the exit codes, --json, and every way the admin port can fail to answer.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, type RequestListener, type Server } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Pipeline } from '../daemon/core/pipeline.js';
import { adminUrl, runStatus } from '../daemon/observability/status-command.js';
import { buildStatus, type Status } from '../daemon/observability/status.js';
import { MemorySpool } from '../daemon/spool/memory-spool.js';
import { pipelineOptions } from '../daemon/pipeline-options.js';
import { freePort } from './helpers/ports.js';
import { makeTempDir } from './helpers/tmp.js';

function testPipeline(overrides: Record<string, unknown>): { pipeline: Pipeline; config: Config } {
  const config = parseConfig(overrides);
  const pipeline = new Pipeline(pipelineOptions(() => config, { spool: new MemorySpool() }));
  return { pipeline, config };
}

function feed(pipeline: Pipeline, stream: string, n: number): void {
  const payload = new TextEncoder().encode('0123456789');
  for (let i = 0; i < n; i++) pipeline.ingest(stream, payload, Date.now(), Date.now());
}

/** Two streams (one overflowing), one consumer holding 6 of 10 records sent. */
function scenario() {
  const { pipeline, config } = testPipeline({
    streamDefaults: { capacityRecords: 100 },
    streams: { 'sensors/alarm': { priority: 0, whenFull: 'drop-newest', capacityRecords: 5 } },
  });
  feed(pipeline, 'sensors/temp', 30);
  feed(pipeline, 'sensors/alarm', 8);
  pipeline.connect(1, 'uplink');
  pipeline.credit(1, 10);
  const sent = pipeline.dispatch(0).flatMap((d) => d.records.map((r) => r.seq));
  pipeline.ack(1, sent.slice(0, 4));
  return { pipeline, config };
}

function status(pipeline: Pipeline, config: Config, extra: Partial<Parameters<typeof buildStatus>[1]> = {}): Status {
  return buildStatus(pipeline, {
    sources: [{ name: 'mqtt', up: true, detail: 'connected to mqtt://127.0.0.1:1883' }],
    health: { healthy: true, reasons: [] },
    memoryBudgetBytes: config.limits.memoryBudgetBytes,
    spoolQuotaBytes: config.spool.quotaBytes,
    now: 1_700_000_060_000,
    startedAt: 1_700_000_000_000,
    ...extra,
  });
}

describe('buildStatus', () => {
  it('reports each stream, the consumers, the sources and totals that balance', () => {
    const { pipeline, config } = scenario();
    const s = status(pipeline, config);
    assert.equal(s.version, 1);
    assert.equal(s.status, 'ok');
    assert.equal(s.uptimeMs, 60_000);
    assert.deepEqual(
      s.streams.map((x) => x.name),
      ['sensors/alarm', 'sensors/temp'],
      'most important first',
    );
    const [alarm, temp] = s.streams;
    assert.deepEqual(
      { ...alarm, dropped: { ...alarm?.dropped } },
      {
        name: 'sensors/alarm', priority: 0, whenFull: 'drop-newest', buffered: 0, bufferedBytes: 0, ringRecords: 0, ringBytes: 0, capacityRecords: 5, capacityBytes: 4 * 1024 * 1024, fill: 0,
        spooled: 0, spooledBytes: 0, ingested: 8, acked: 4, redelivered: 0, spilled: 0, dropped: { overflow: 3, spool_full: 0, expired: 0, poison: 0, corrupt: 0, lagging: 0 }, droppedTotal: 3,
      },
    );
    assert.equal(temp?.ingested, 30);
    assert.equal(temp?.ringRecords, 25);
    assert.equal(temp?.buffered, 25);
    assert.equal(temp?.fill, 0.25);
    assert.deepEqual(s.consumers, [{ id: 1, name: 'uplink', credit: 0, inflight: 6, sent: 10, granted: 10 }]);
    assert.deepEqual(s.sources, [{ name: 'mqtt', state: 'up', detail: 'connected to mqtt://127.0.0.1:1883' }]);
    const t = s.totals;
    assert.deepEqual([t.streams, t.consumers, t.ingested, t.acked, t.dropped, t.inflight, t.buffered], [2, 1, 38, 4, 3, 6, 25]);
    assert.deepEqual(t.droppedByReason, { overflow: 3, spool_full: 0, expired: 0, poison: 0, corrupt: 0, lagging: 0 });
    assert.equal(t.recovered + t.ingested, t.acked + t.dropped + t.buffered + t.spooled + t.inflight, 'conservation');
    assert.equal(t.memoryFill, t.heldBytes / config.limits.memoryBudgetBytes);
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s, 'JSON-able as it is');
  });

  it('shows spilled records and spool fill, and passes the health verdict through', () => {
    const { pipeline, config } = testPipeline({ streamDefaults: { capacityRecords: 10 }, spool: { spillBatchRecords: 5, quotaBytes: 100_000 } });
    feed(pipeline, 'gps', 25);
    const s = status(pipeline, config, { health: { healthy: false, reasons: ['source gps is down: ENOENT'] }, sources: [{ name: 'gps', up: false, detail: 'ENOENT' }] });
    const gps = s.streams[0];
    assert.ok(gps !== undefined && gps.spooled > 0 && gps.spilled === gps.spooled, JSON.stringify(gps));
    assert.equal(gps.spooled + gps.buffered, 25);
    assert.ok((s.totals.spoolFill ?? 0) > 0);
    assert.equal(s.status, 'degraded');
    assert.deepEqual(s.reasons, ['source gps is down: ENOENT']);
    assert.deepEqual(s.sources, [{ name: 'gps', state: 'down', detail: 'ENOENT' }]);
  });

  it('lists at most maxStreams streams and counts the rest', () => {
    const { pipeline, config } = testPipeline({});
    for (const name of ['a', 'b', 'c']) feed(pipeline, name, 1);
    const s = status(pipeline, config, { maxStreams: 2 });
    assert.deepEqual(
      s.streams.map((x) => x.name),
      ['a', 'b'],
    );
    assert.equal(s.streamsOmitted, 1);
    assert.equal(s.totals.streams, 3);
  });
});

// ── runStatus against a real server ────────────────────────────────────

const servers: Server[] = [];
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function serveStatus(make: () => unknown, prefix = ''): Promise<string> {
  return serve((req, res) => {
    if (req.url === `${prefix}/status`) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(make()));
    else res.writeHead(404).end('not found');
  });
}

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runStatus(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe('spillway status', () => {
  it('prints the totals and a row per stream, consumer and source; exit 0 when healthy', async () => {
    const { pipeline, config } = scenario();
    const url = await serveStatus(() => status(pipeline, config));
    const { code, out, err } = await run(['--admin', url]);
    assert.equal(err, '');
    assert.equal(code, 0);
    const lines = out.split('\n');
    assert.equal(lines[0], 'spillway ok · up 1m 0s · 2 streams · 1 consumer · 0 of 1 source down');
    assert.match(lines[1] ?? '', /^memory [\d.]+ KiB \/ 32\.0 MiB \((<0\.1|[\d.]+)%\) · spool 0 B \/ 1\.0 GiB \(0%\) · in flight 6$/);
    assert.equal(lines[2], 'ingested 38 · acked 4 · dropped 3 (overflow 3) · recovered 0 · buffered 25 · spooled 0');
    assert.match(out, /^STREAM +PRIO +WHEN FULL +RING FILL +RING +BUFFERED +SPOOLED +INGESTED +ACKED +DROPPED$/m);
    assert.match(out, /^sensors\/alarm +0 +drop-newest +0% +0 \/ 5 +0 +0 +8 +4 +3 \(overflow 3\)$/m);
    assert.match(out, /^sensors\/temp +1 +spill +25% +25 \/ 100 +25 +0 +30 +0 +0$/m);
    assert.match(out, /^CONSUMER +CREDIT +IN FLIGHT +SENT\nuplink +0 +6 +10$/m);
    assert.match(out, /^SOURCE +STATE +DETAIL\nmqtt +up +connected to mqtt:\/\/127\.0\.0\.1:1883$/m);
  });

  it('prints a row per uplink: state, window in use, last ack and reconnects', async () => {
    const { pipeline, config } = scenario();
    const base = status(pipeline, config);
    const uplinks = [
      { name: 'cloud', kind: 'dial', url: 'wss://cloud.example/', connected: true, lastAckAt: base.at - 3_000, inflight: 40, window: 10_000, reconnects: 2, detail: 'connected' },
      { name: 'cluster', kind: 'mqtt', url: 'mqtts://cluster.example:8883', connected: false, lastAckAt: null, inflight: 0, window: 0, reconnects: 7, detail: 'disconnected' },
    ];
    const url = await serveStatus(() => ({ ...base, uplinks }));
    const { out } = await run(['--admin', url]);
    assert.match(out, /^UPLINK +KIND +STATE +IN FLIGHT +LAST ACK +RECONNECTS +DETAIL\ncloud +dial +up +40 \/ 10,000 +3s ago +2 +connected\ncluster +mqtt +down +0 \/ 0 +never +7 +disconnected$/m);
  });

  it('exits 1 when degraded, printing the reasons; --json prints the status itself', async () => {
    const { pipeline, config } = scenario();
    const degraded = () => status(pipeline, config, { health: { healthy: false, reasons: ['source gps is down: unplugged'] }, sources: [{ name: 'gps', up: false, detail: 'unplugged' }] });
    const url = await serveStatus(degraded);
    const human = await run(['--admin', url]);
    assert.equal(human.code, 1);
    assert.match(human.out, /^spillway degraded · .* · 1 of 1 source down\n {2}! source gps is down: unplugged$/m);
    assert.match(human.out, /^gps +down +unplugged$/m);
    const json = await run(['--admin', `${url}/`, '--json']);
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.out), JSON.parse(JSON.stringify(degraded())));
  });

  it('follows a path prefix in --admin (a reverse proxy)', async () => {
    const { pipeline, config } = scenario();
    const url = await serveStatus(() => status(pipeline, config), '/spillway');
    assert.equal((await run(['--admin', `${url}/spillway`])).code, 0);
  });

  it('escapes control characters in names from the daemon', async () => {
    const { pipeline, config } = testPipeline({});
    feed(pipeline, 'evil\u001b[2Jname', 1);
    const url = await serveStatus(() => status(pipeline, config));
    const { out } = await run(['--admin', url]);
    assert.ok(!out.includes('\u001b'), 'no raw ESC');
    assert.match(out, /^evil\\u001b\[2Jname /m);
  });

  it('exits 69 when the admin port is closed, answers an error, is not spillway, or is silent', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const refused = await run(['--admin', closed]);
    assert.equal(refused.code, 69);
    assert.equal(refused.err, `spillway status: cannot read ${closed}/status: ECONNREFUSED\n`);

    const notFound = await serve((_req, res) => res.writeHead(404).end('nope'));
    assert.match((await run(['--admin', notFound])).err, /cannot read .*: HTTP 404 Not Found$/m);

    const other = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":"world"}'));
    const wrong = await run(['--admin', other]);
    assert.equal(wrong.code, 69);
    assert.match(wrong.err, /not a spillway status \(is --admin the admin port\?\)/);

    const silent = await serve(() => undefined);
    const t0 = Date.now();
    const timedOut = await run(['--admin', silent, '--timeout', '300']);
    assert.equal(timedOut.code, 69);
    assert.match(timedOut.err, /no answer within 300 ms/);
    assert.ok(Date.now() - t0 < 3_000);
  });

  it('takes the admin port from --config, and exits 78 when that file is invalid', async () => {
    const { pipeline, config } = scenario();
    const url = await serveStatus(() => status(pipeline, config));
    const dir = await makeTempDir('status');
    try {
      const good = join(dir, 'good.yaml');
      await writeFile(good, `admin:\n  host: 0.0.0.0\n  port: ${new URL(url).port}\n`, { mode: 0o600 });
      assert.equal((await run(['--config', good])).code, 0);
      const bad = join(dir, 'bad.yaml');
      await writeFile(bad, 'admin:\n  port: 99999\n', { mode: 0o600 });
      const refused = await run(['--config', bad]);
      assert.equal(refused.code, 78);
      assert.match(refused.err, /admin\.port: 99999 is not allowed: expected at most 65535/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    assert.equal(adminUrl('::', 7421), 'http://[::1]:7421');
    assert.equal(adminUrl('192.168.1.5', 7421), 'http://192.168.1.5:7421');
  });

  it('exits 64 on bad arguments', async () => {
    assert.equal((await run(['--bogus'])).code, 64);
    assert.equal((await run(['--timeout', 'soon'])).code, 64);
    const ftp = await run(['--admin', 'ftp://127.0.0.1']);
    assert.equal(ftp.code, 64);
    assert.match(ftp.err, /--admin "ftp:\/\/127\.0\.0\.1" is not allowed: expected an http:\/\/ or https:\/\/ URL/);
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /^usage: spillway status/);
  });
});
