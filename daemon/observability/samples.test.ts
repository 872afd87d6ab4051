import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { niceMax, renderCharts } from './charts.js';
import { CHART_SPAN_MS, SampleRing, type Sample } from './samples.js';

const sample = (at: number, n: number): Sample => ({ at, ingested: n * 10, delivered: n * 8, acked: n * 7, dropped: n, buffered: n, spooled: 2 * n, inflight: 3, ringFill: 0.5, memoryFill: 0.25, spoolFill: 0, backlog: { cloud: 2 * n, archive: n } });

describe('SampleRing', () => {
  it('keeps 15 minutes of samples, both ends included: 181 at one per 5 s', () => {
    assert.equal(SampleRing.forInterval(5_000).capacity, CHART_SPAN_MS / 5_000 + 1);
    assert.equal(SampleRing.forInterval(5_000).capacity, 181);
  });

  it('keeps the last `capacity` samples, oldest first', () => {
    const ring = new SampleRing(3);
    for (let i = 1; i <= 5; i++) ring.push(sample(i * 1_000, i));
    assert.deepEqual(
      ring.list().map((s) => s.at),
      [3_000, 4_000, 5_000],
    );
  });
});

describe('renderCharts', () => {
  it('draws one point per pair of samples for rates, one per sample for held records and fills, with their figures', () => {
    const html = renderCharts([sample(0, 0), sample(2_000, 1), sample(4_000, 3)], 4_000);
    assert.match(html, /<polyline data-series="ingested" data-at="2000 4000" data-values="5 10" data-totals="10 30" points="[\d. ,]+"/);
    assert.match(html, /<polyline data-series="dropped" data-at="2000 4000" data-values="0.5 1" data-totals="1 3"/);
    assert.match(html, /<polyline data-series="spooled" data-at="0 2000 4000" data-values="0 2 6"/);
    assert.match(html, /<polyline data-series="memoryFill" data-at="0 2000 4000" data-values="0.25 0.25 0.25"/);
    assert.equal((html.match(/<figure class="chart"/g) ?? []).length, 4, "rates, held, fill, backlog by group");
  });

  it('says it is collecting before the first rate exists', () => {
    assert.match(renderCharts([sample(0, 0)], 0), /collecting the first samples…/);
  });

  it('scales to 1, 2 or 5 times a power of ten', () => {
    assert.deepEqual([0.7, 1, 1.5, 3, 7, 12, 450, 501].map(niceMax), [1, 1, 2, 5, 10, 20, 500, 1000]);
  });
});

describe('the backlog chart', () => {
  it('draws one series per group, whose points are the samples\' backlogs', () => {
    const html = renderCharts([sample(1_000, 1), sample(6_000, 2), sample(11_000, 3)], 11_000);
    const series = (name: string) => new RegExp(`<polyline data-series="${name}" data-at="([^"]*)" data-values="([^"]*)"`).exec(html);
    assert.deepEqual(series('backlog-cloud')?.slice(1), ['1000 6000 11000', '2 4 6']);
    assert.deepEqual(series('backlog-archive')?.slice(1), ['1000 6000 11000', '1 2 3']);
    assert.match(html, /Backlog by group/);
  });
});
