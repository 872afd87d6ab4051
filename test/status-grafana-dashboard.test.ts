/**
 * docs/grafana-dashboard.json: valid JSON that Grafana can import (a
 * Prometheus data-source variable every panel uses, unique ids, panels
 * inside the 24-column grid and not overlapping), whose queries name only
 * metrics the daemon exposes (read from `renderMetrics` of a real
 * Pipeline), and which shows every metric of docs/PROTOCOL.md plus the
 * spool write failures, consumer errors and memory held.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Pipeline } from '../daemon/core/pipeline.js';
import { createShellCounters } from '../daemon/observability/counters.js';
import { renderMetrics } from '../daemon/observability/metrics.js';
import { pipelineOptions } from '../daemon/pipeline-options.js';
import { parseConfig } from '../config/load.js';

const DASHBOARD = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'grafana-dashboard.json');

/** docs/PROTOCOL.md's table, and the three the issue asks for besides. */
const REQUIRED = [
  'spillway_records_ingested_total',
  'spillway_records_recovered_total',
  'spillway_records_acked_total',
  'spillway_records_dropped_total',
  'spillway_records_redelivered_total',
  'spillway_records_spilled_total',
  'spillway_input_rejected_total',
  'spillway_buffer_records',
  'spillway_buffer_bytes',
  'spillway_spool_records',
  'spillway_spool_bytes',
  'spillway_inflight_records',
  'spillway_consumers',
  'spillway_spool_write_failures_total',
  'spillway_consumer_errors_total',
  'spillway_memory_held_bytes',
];

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }>;
  panels?: Panel[];
}

interface Dashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
  panels: Panel[];
}

async function dashboard(): Promise<Dashboard> {
  return JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
}

function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** The metric names /metrics exposes, from a real pipeline with a stream, a drop and a consumer. */
function exposedMetrics(): Set<string> {
  const config = parseConfig({ streamDefaults: { capacityRecords: 1, whenFull: 'drop-oldest' } });
  const pipeline = new Pipeline(pipelineOptions(() => config));
  const payload = new TextEncoder().encode('x');
  pipeline.ingest('s', payload, 0, 0);
  pipeline.ingest('s', payload, 0, 0);
  const counters = createShellCounters();
  counters.inputRejected.inc(['mqtt', 'oversized']);
  counters.consumerErrors.inc(['bad_message']);
  const text = renderMetrics({ pipeline, counters, consumers: () => 1, blockedStreams: () => 0, spoolQuarantined: () => 0 });
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string));
}

describe('Grafana dashboard (docs/grafana-dashboard.json)', () => {
  it('is JSON with a Prometheus data-source variable that every panel and query uses', async () => {
    const d = await dashboard();
    assert.equal(d.title, 'spillway');
    assert.ok(d.uid.length > 0 && d.uid.length <= 40, 'a uid Grafana accepts');
    assert.ok(d.schemaVersion >= 36);
    const ds = d.templating.list.find((v) => v.type === 'datasource');
    assert.deepEqual([ds?.name, ds?.query], ['datasource', 'prometheus']);
    for (const p of allPanels(d).filter((x) => x.type !== 'row')) {
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, p.title);
      assert.ok((p.targets ?? []).length > 0, `${p.title} has queries`);
      for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, '${datasource}', `${p.title} ${t.refId}`);
    }
  });

  it('has unique panel ids and panels inside the grid that do not overlap', async () => {
    const panels = allPanels(await dashboard());
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'unique ids');
    for (const p of panels) assert.ok(p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24 && p.gridPos.h > 0, p.title);
    for (const a of panels) {
      for (const b of panels) {
        if (a === b) continue;
        const apart = a.gridPos.x + a.gridPos.w <= b.gridPos.x || b.gridPos.x + b.gridPos.w <= a.gridPos.x || a.gridPos.y + a.gridPos.h <= b.gridPos.y || b.gridPos.y + b.gridPos.h <= a.gridPos.y;
        assert.ok(apart, `${a.title} overlaps ${b.title}`);
      }
    }
  });

  it('queries only metrics the daemon exposes, and shows every required one', async () => {
    const exprs = allPanels(await dashboard()).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\bspillway_[a-z_]+/g)].map((m) => m[0])));
    const exposed = exposedMetrics();
    assert.deepEqual([...used].filter((n) => !exposed.has(n)), [], 'metrics the daemon does not expose');
    assert.deepEqual(REQUIRED.filter((n) => !used.has(n)), [], 'required metrics missing from the dashboard');
  });

  it('takes rates of counters over $__rate_interval, never of gauges', async () => {
    for (const p of allPanels(await dashboard())) {
      for (const t of p.targets ?? []) {
        for (const m of t.expr.matchAll(/\b(rate|increase)\((spillway_[a-z_]+)\{[^}]*\}(\[[^\]]+\])\)/g)) {
          assert.ok(m[2]?.endsWith('_total'), `${p.title}: ${m[1]} of gauge ${m[2]}`);
          assert.equal(m[3], '[$__rate_interval]', p.title);
        }
      }
    }
  });
});
