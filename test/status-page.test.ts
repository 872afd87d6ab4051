/**
 * The status page in a real browser: Debian's Chromium (/usr/bin/chromium,
 * `apt-get install chromium`) driven by playwright-core, against an HTTP
 * server on 127.0.0.1 that serves `renderStatusPage()` at `/` with its
 * Content-Security-Policy and `buildStatus()` of a real Pipeline at
 * `/status`. The test feeds the pipeline and watches the page follow: stream
 * rows and their numbers appear, update within a poll or two, a failing
 * /status shows an error and recovers, and a hostile stream name stays text.
 * The browser-side checks are strings: the project compiles without DOM types.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../config/load.js';
import { Pipeline } from '../daemon/core/pipeline.js';
import { renderStatusPage, statusPageHeaders } from '../daemon/observability/status-page.js';
import { buildStatus } from '../daemon/observability/status.js';
import { MemorySpool } from '../daemon/spool/memory-spool.js';
import { pipelineOptions } from '../daemon/pipeline-options.js';

const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT_MS = 15_000;

/** The few playwright-core calls used (typed here: it is a devDependency loaded at run time). */
interface Page {
  goto(url: string): Promise<unknown>;
  on(event: 'console', listener: (m: { type(): string; text(): string }) => void): void;
  on(event: 'pageerror', listener: (e: Error) => void): void;
  evaluate(expression: string): Promise<unknown>;
}
interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}
interface Chromium {
  launch(options: { executablePath: string; args: string[]; headless: boolean }): Promise<Browser>;
}

async function loadChromium(): Promise<Chromium> {
  const name = 'playwright-core';
  try {
    return ((await import(name)) as { chromium: Chromium }).chromium;
  } catch (err) {
    throw new Error(`the status page test needs playwright-core (a devDependency: npm install) and Debian chromium at ${CHROMIUM}: ${(err as Error).message}`, { cause: err });
  }
}

const config = parseConfig({
  streamDefaults: { capacityRecords: 100 },
  streams: { 'sensors/alarm': { priority: 0, whenFull: 'drop-newest', capacityRecords: 5 } },
});
const pipeline = new Pipeline(pipelineOptions(() => config, { spool: new MemorySpool(), durable: false }));

function feed(stream: string, n: number): void {
  const payload = new TextEncoder().encode('0123456789');
  for (let i = 0; i < n; i++) pipeline.ingest(stream, payload, Date.now(), Date.now());
}

let failing = false;
let sourceUp = true;
const startedAt = Date.now();
const server: Server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/') {
    res.writeHead(200, statusPageHeaders()).end(renderStatusPage());
  } else if (path === '/status') {
    if (failing) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('boom\n');
      return;
    }
    const sources = [{ name: 'mqtt', up: sourceUp, detail: sourceUp ? 'connected' : 'broker unreachable' }];
    const reasons = sourceUp ? [] : ['source mqtt is down: broker unreachable'];
    const now = Date.now();
    const uplinks = [
      { name: 'cloud', kind: 'dial' as const, group: 'default', url: 'wss://cloud.example/v1/consume', connected: true, lastAckAt: now - 3_000, inflight: 5, window: 64, reconnects: 2, detail: 'connected, window 64' },
      { name: 'cluster', kind: 'mqtt' as const, group: 'default', url: 'mqtt://cluster.example:1883', connected: false, lastAckAt: null, inflight: 0, window: 0, reconnects: 7, detail: 'reconnecting (7 failed attempts)' },
    ];
    const status = buildStatus(pipeline, { sources, uplinks, health: { healthy: sourceUp, reasons }, memoryBudgetBytes: config.limits.memoryBudgetBytes, spoolQuotaBytes: config.spool.quotaBytes, now, startedAt });
    res.writeHead(sourceUp ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(status));
  } else {
    res.writeHead(404).end();
  }
});

/** Browser-side: the raw value of a stream's cell, or null. */
const cell = (stream: string, field: string) =>
  `(() => { const r = Array.from(document.querySelectorAll('tr[data-stream]')).find((r) => r.getAttribute('data-stream') === ${JSON.stringify(stream)}); const c = r && r.querySelector('td[data-field=${JSON.stringify(field)}]'); return c ? c.dataset.value : null; })()`;
const text = (selector: string) => `(() => { const e = document.querySelector(${JSON.stringify(selector)}); return e ? e.textContent : null; })()`;

let browser: Browser | undefined;
let page: Page;
let url = '';
const consoleErrors: string[] = [];

/**
 * Polls a browser-side expression from here until it is truthy. (Not
 * `waitForFunction`: it evaluates strings inside the page, which the page's
 * own CSP rightly forbids; `evaluate` goes through the debugger protocol.)
 */
async function until(expression: string, what: string): Promise<unknown> {
  const deadline = Date.now() + WAIT_MS;
  let last: unknown;
  for (;;) {
    last = await page.evaluate(expression);
    if (last !== false && last !== null && last !== undefined && last !== 0 && last !== '') return last;
    if (Date.now() > deadline) throw new Error(`page never showed ${what} (last: ${JSON.stringify(last)}); console: ${JSON.stringify(consoleErrors)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('status page in headless Chromium', () => {
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const chromium = await loadChromium();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  });
  after(async () => {
    await browser?.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('shows a row per stream with its numbers, the consumers and the sources', async () => {
    feed('sensors/temp', 30);
    feed('sensors/alarm', 8); // 3 dropped: its ring holds 5
    pipeline.connect(1, 'uplink');
    pipeline.credit(1, 10);
    const sent = pipeline.dispatch(0).flatMap((d) => d.records.map((r) => r.seq));
    pipeline.ack(1, sent.slice(0, 4));

    await page.goto(url);
    await until(`${cell('sensors/temp', 'ingested')} === "30"`, 'sensors/temp ingested 30');
    const fields = ['priority', 'whenFull', 'buffered', 'spooled', 'ingested', 'acked', 'dropped', 'ring'];
    const read = async (stream: string) => Object.fromEntries(await Promise.all(fields.map(async (f) => [f, await page.evaluate(cell(stream, f))])));
    assert.deepEqual(await read('sensors/alarm'), { priority: '0', whenFull: 'drop-newest', buffered: '0', spooled: '0', ingested: '8', acked: '4', dropped: '3', ring: '0' });
    assert.deepEqual(await read('sensors/temp'), { priority: '1', whenFull: 'spill', buffered: '25', spooled: '0', ingested: '30', acked: '0', dropped: '0', ring: '25' });
    assert.equal(await page.evaluate(cell('sensors/temp', 'fill')), '0.25');
    assert.equal(await page.evaluate(`Array.from(document.querySelectorAll('tr[data-stream]')).map((r) => r.getAttribute('data-stream')).join(',')`), 'sensors/alarm,sensors/temp', 'most important first');
    assert.match(String(await page.evaluate(text('tr[data-stream="sensors/alarm"] td[data-field="dropped"]'))), /^3 \(overflow 3\)$/);
    assert.equal(await page.evaluate(text('#t-ingested')), '38');
    assert.equal(await page.evaluate(text('#t-inflight')), '6');
    assert.equal(await page.evaluate(text('#status')), 'ok');
    assert.equal(await page.evaluate(`document.querySelector('tr[data-consumer="1"] td[data-field="inflight"]').dataset.value`), '6');
    assert.equal(await page.evaluate(`document.querySelector('tr[data-consumer="1"] td').textContent`), 'uplink');
    assert.equal(await page.evaluate(`document.querySelector('tr[data-source="mqtt"] td[data-field="state"]').textContent`), 'up');
    const uplinkRow = (key: string) => page.evaluate(`Array.from(document.querySelectorAll('tr[data-uplink="${key}"] td')).map((c) => c.textContent).join(' | ')`);
    assert.equal(await uplinkRow('dial cloud'), 'cloud | dial | up | 5 / 64 | 3s ago | 2 | connected, window 64');
    assert.equal(await uplinkRow('mqtt cluster'), 'cluster | mqtt | down | 0 / 0 | never | 7 | reconnecting (7 failed attempts)');
    assert.deepEqual(consoleErrors, [], 'no CSP violation or script error');
  });

  it('follows the pipeline: new records, acks and rates appear within a poll or two', async () => {
    feed('sensors/temp', 20);
    const rate = await until(`${cell('sensors/temp', 'ingested')} === "50" && Number(${cell('sensors/temp', 'ingestRate')})`, 'sensors/temp ingested 50');
    assert.ok(typeof rate === 'number' && rate > 0, `an ingest rate (${String(rate)}/s)`);
    const more = pipeline.dispatch(0).flatMap((d) => d.records.map((r) => r.seq));
    assert.equal(more.length, 0, 'no credit left');
    pipeline.credit(1, 5);
    pipeline.ack(1, [...sent(), ...pipeline.dispatch(0).flatMap((d) => d.records.map((r) => r.seq))]);
    await until(`${cell('sensors/temp', 'acked')} === "10" && document.querySelector('#t-inflight').textContent === "0"`, 'sensors/temp acked 10, nothing in flight');
    feed('sensors/humidity', 3);
    await until(`${cell('sensors/humidity', 'ingested')} === "3"`, 'a new stream row');
  });

  it('shows a failing /status and the degraded state, then recovers', async () => {
    failing = true;
    await until(`(document.querySelector('#error').textContent || '').includes('HTTP 500')`, 'the error banner');
    assert.equal(await page.evaluate(cell('sensors/temp', 'ingested')), '50', 'the last status stays on screen');
    failing = false;
    sourceUp = false;
    await until(`document.querySelector('#error').textContent === '' && document.querySelector('#status').textContent === 'degraded'`, 'degraded, without the error');
    assert.equal(await page.evaluate(text('#reasons li')), 'source mqtt is down: broker unreachable');
    assert.equal(await page.evaluate(`document.querySelector('tr[data-source="mqtt"] td[data-field="state"]').textContent`), 'down');
    sourceUp = true;
    await until(`document.querySelector('#status').textContent === 'ok'`, 'ok again');
  });

  it('shows a hostile stream name as text', async () => {
    const evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
    feed(evil, 1);
    await until(`${cell(evil, 'ingested')} === "1"`, 'the hostile row');
    const row = `Array.from(document.querySelectorAll('tr[data-stream]')).find((r) => r.getAttribute('data-stream') === ${JSON.stringify(evil)})`;
    assert.equal(await page.evaluate(`${row}.cells[0].textContent`), evil);
    assert.equal(await page.evaluate(`document.querySelectorAll('img').length`), 0);
    assert.equal(await page.evaluate(`window.__pwned === undefined`), true);
    assert.deepEqual(
      consoleErrors.filter((e) => !e.startsWith('Failed to load resource')),
      [],
      'no script error (the failing polls log their 500 and 503)',
    );
  });
});

/** Seqs in flight at consumer 1 (so the test can ack them). */
function sent(): number[] {
  return [...pipeline.inflightRecords()].filter((r) => r.holder?.id === 1).map((r) => r.seq);
}
