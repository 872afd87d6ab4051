/**
 * The status page's charts in real Chromium against the daemon as a child
 * process (admin.chartSampleSeconds 1): records flow from a real Mosquitto
 * to a consumer that acks part of them, then all is quiet; the charts are in
 * the page as first served (a screenshot on load is not empty), and their
 * last data points agree with /metrics to the record: ingested, acked and
 * dropped totals, delivered = acked + inflight + redelivered, the records
 * held (buffered, spooled, in flight) and the fills.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SpillwayConsumer } from '../daemon/client/consumer.js';
import { startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';
import { launchChromium, type Browser, type Page } from './helpers/chromium.js';

interface SeriesData {
  readonly at: number[];
  readonly values: number[];
  readonly totals: number[];
}

/** Browser-side: every polyline's data, keyed by series name. */
const SERIES = `(() => Object.fromEntries(Array.from(document.querySelectorAll('polyline[data-series]')).map((p) => {
  const nums = (a) => (p.getAttribute(a) || '').split(' ').filter((x) => x !== '').map(Number);
  return [p.getAttribute('data-series'), { at: nums('data-at'), values: nums('data-values'), totals: nums('data-totals'), points: p.points.length }];
})))()`;

describe('status page charts in headless Chromium', () => {
  let mosquitto: Mosquitto;
  let daemon: DaemonProcess;
  let browser: Browser | undefined;
  let page: Page;

  before(async () => {
    mosquitto = await startMosquitto();
    daemon = await startDaemon(
      testConfig({
        sources: { mqtt: [{ url: mosquitto.url, subscriptions: [{ topic: 'sensors/#', qos: 1 }] }] },
        streamDefaults: { capacityRecords: 50, whenFull: 'drop-oldest' },
        admin: { chartSampleSeconds: 1 },
      }),
    );
    browser = await launchChromium();
    page = await browser.newPage();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    await mosquitto?.stop();
  });

  it('draws ingest, delivery, acks, drops and fills whose last points match /metrics', async () => {
    const c = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'half' });
    let acked = 0;
    let received = 0;
    // Acks the first 60 records it is sent, holds the rest in flight.
    c.on('records', (rs) => {
      received += rs.length;
      const take = rs.slice(0, Math.max(0, 60 - acked)).map((r) => r.seq);
      acked += take.length;
      if (take.length > 0) c.ack(take);
    });
    await c.connect();
    c.credit(80);
    await publishAll(mosquitto.url, Array.from({ length: 200 }, (_, i) => ({ topic: 'sensors/t', payload: `reading-${i}` })));
    const quiet = await waitFor(async () => {
      const m = await daemon.metrics();
      return m.sum('spillway_records_ingested_total') === 200 && m.sum('spillway_records_acked_total') === 60 && received >= 60 && m.sum('spillway_inflight_records') === received - 60 ? m : undefined;
    }, 'all 200 ingested, 60 acked, the rest of what the consumer got in flight').catch(async (err: Error) => {
      const m = await daemon.metrics();
      const st = await (await fetch(`${daemon.adminUrl}/status`)).text();
      throw new Error(`${st} ${err.message}: ingested ${m.sum('spillway_records_ingested_total')}, acked ${m.sum('spillway_records_acked_total')}, in flight ${m.sum('spillway_inflight_records')}`);
    });
    const quietAt = Date.now();
    // A sample taken after the quiet moment, and one more so a rate point covers only quiet time.
    await waitFor(async () => {
      await page.goto(`${daemon.adminUrl}/`);
      const s = (await page.evaluate(SERIES)) as Record<string, SeriesData>;
      const at = s['ingested']?.at ?? [];
      return at.length >= 2 && (at[at.length - 2] ?? 0) > quietAt ? true : undefined;
    }, 'two chart samples after the quiet moment');
    const s = (await page.evaluate(SERIES)) as Record<string, SeriesData & { points: number }>;
    const last = (name: string, field: 'totals' | 'values') => s[name]?.[field].at(-1);
    const m = await daemon.metrics();
    assert.equal(m.sum('spillway_records_ingested_total'), quiet.sum('spillway_records_ingested_total'), 'still quiet');
    assert.equal(last('ingested', 'totals'), m.sum('spillway_records_ingested_total'));
    assert.equal(last('acked', 'totals'), m.sum('spillway_records_acked_total'));
    assert.equal(last('dropped', 'totals'), m.sum('spillway_records_dropped_total'));
    assert.ok((last('dropped', 'totals') ?? 0) > 0, 'the 50-record ring dropped some');
    assert.equal(last('delivered', 'totals'), m.sum('spillway_records_acked_total') + m.sum('spillway_inflight_records') + m.sum('spillway_records_redelivered_total'));
    for (const name of ['ingested', 'delivered', 'acked', 'dropped']) {
      assert.equal(last(name, 'values'), 0, `${name}/s is 0 once quiet`);
      assert.equal(s[name]?.points, s[name]?.at.length, `${name}: one drawn point per sample`);
      // Each drawn rate is the difference of two totals over the time between them.
      const d = s[name] as SeriesData;
      for (let i = 1; i < d.at.length; i++) {
        const want = ((d.totals[i] as number) - (d.totals[i - 1] as number)) / (((d.at[i] as number) - (d.at[i - 1] as number)) / 1_000);
        assert.ok(Math.abs((d.values[i] as number) - want) < 0.01, `${name}[${i}]: ${d.values[i]} vs ${want}`);
      }
    }
    // The fullest ring as /status gives it; the memory budget's fill is held bytes over the budget.
    const status = (await (await fetch(`${daemon.adminUrl}/status`)).json()) as { streams: Array<{ fill: number }> };
    assert.equal(last('ringFill', 'values'), Math.round((status.streams[0]?.fill ?? -1) * 1_000) / 1_000);
    const budget = 32 * 1_048_576;
    assert.ok(Math.abs((last('memoryFill', 'values') ?? -1) - m.sum('spillway_memory_held_bytes') / budget) < 0.001);
    assert.equal(last('spoolFill', 'values'), 0);
    const caption = (await page.evaluate(`Array.from(document.querySelectorAll('figure.chart figcaption')).map((f) => f.textContent)`)) as string[];
    assert.deepEqual(caption, ['Records per second last 1 min', 'Records held last 1 min', 'Fill last 1 min', 'Backlog by group last 1 min']);
    assert.equal(last('backlog-default', 'values'), m.sum('spillway_group_backlog_records', { group: 'default' }));
    assert.equal(last('buffered', 'values'), m.sum('spillway_buffer_records'));
    assert.equal(last('spooled', 'values'), m.sum('spillway_spool_records'));
    assert.equal(last('inflight', 'values'), m.sum('spillway_inflight_records'));
    await c.close();
  });

  it('is served with its charts and status already in the HTML (a screenshot on load is not empty)', async () => {
    const html = await (await fetch(`${daemon.adminUrl}/`)).text();
    assert.match(html, /<polyline data-series="ingested" data-at="\d+/);
    assert.match(html, /<script type="application\/json" id="initial-status">\{"version":1,/);
    // Rendered before any poll: the badge and the stream row are there once the page's script ran once.
    await page.goto(`${daemon.adminUrl}/`);
    assert.equal(await page.evaluate(`document.getElementById('status').textContent`), 'ok');
    assert.equal(await page.evaluate(`document.querySelectorAll('tr[data-stream]').length`), 1);
  });
});
