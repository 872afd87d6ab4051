/**
 * Prometheus text exposition of the names in spec/PROTOCOL.md, read straight
 * from the core's counters at scrape time (no per-record metric calls on the
 * hot path). Conservation holds exactly at a quiet moment because every
 * figure is read from the one pipeline in one synchronous pass.
 */
import type { IntervalHistogram } from 'node:perf_hooks';
import type { Pipeline } from '../core/pipeline.js';
import { DROP_REASONS } from '../core/record.js';
import type { LabeledCounter, ShellCounters } from './counters.js';

export interface MetricsSources {
  readonly pipeline: Pipeline;
  readonly counters: ShellCounters;
  readonly consumers: () => number;
  /** Corrupt spool files moved aside since start. */
  readonly spoolQuarantined: () => number;
  /** Event-loop delay since the last scrape (reset by the scrape). */
  readonly loopDelay?: IntervalHistogram;
  /** The process's memory (`process.memoryUsage()`), read at scrape time. */
  readonly memory?: () => NodeJS.MemoryUsage;
}

export function renderMetrics(src: MetricsSources): string {
  const out: string[] = [];
  const streams = [...src.pipeline.streams()];
  const t = src.pipeline.totals();

  const perStream = (name: string, type: 'counter' | 'gauge', help: string, value: (s: (typeof streams)[number]) => number) => {
    header(out, name, type, help);
    for (const s of streams) out.push(`${name}{stream=${label(s.name)}} ${value(s)}`);
  };

  perStream('spillway_records_ingested_total', 'counter', 'Records accepted from sources.', (s) => s.ingested);
  header(out, 'spillway_records_recovered_total', 'counter', 'Records found in the spool at start.');
  out.push(`spillway_records_recovered_total ${t.recovered}`);
  perStream('spillway_records_acked_total', 'counter', 'Records acked by a consumer.', (s) => s.acked);
  header(out, 'spillway_records_dropped_total', 'counter', 'Records dropped, by reason.');
  for (const s of streams) {
    for (const reason of DROP_REASONS) out.push(`spillway_records_dropped_total{stream=${label(s.name)},reason="${reason}"} ${s.dropped[reason]}`);
  }
  perStream('spillway_records_redelivered_total', 'counter', 'Deliveries after the first.', (s) => s.redelivered);
  perStream('spillway_records_spilled_total', 'counter', 'Records moved to the spool.', (s) => s.spilled);
  labeled(out, src.counters.inputRejected);
  labeled(out, src.counters.consumerErrors);
  perStream('spillway_buffer_records', 'gauge', 'Records waiting in memory.', (s) => s.buffered);
  perStream('spillway_buffer_bytes', 'gauge', 'Payload bytes waiting in memory.', (s) => s.bufferedBytes);
  header(out, 'spillway_spool_records', 'gauge', 'Records only on disk.');
  out.push(`spillway_spool_records ${t.spooled}`);
  header(out, 'spillway_spool_bytes', 'gauge', 'Bytes in the spool against its quota (payload and row overhead).');
  out.push(`spillway_spool_bytes ${t.spoolBytes}`);
  header(out, 'spillway_spool_write_failures_total', 'counter', 'Spool writes that failed (full disk, I/O error); their records were dropped as spool_full.');
  out.push(`spillway_spool_write_failures_total ${t.spoolFailures}`);
  header(out, 'spillway_spool_quarantined_total', 'counter', 'Corrupt spool files moved aside at start.');
  out.push(`spillway_spool_quarantined_total ${src.spoolQuarantined()}`);
  header(out, 'spillway_inflight_records', 'gauge', 'Records sent and not yet acked.');
  out.push(`spillway_inflight_records ${t.inflight}`);
  header(out, 'spillway_consumers', 'gauge', 'Consumers connected and past hello.');
  out.push(`spillway_consumers ${src.consumers()}`);
  header(out, 'spillway_memory_held_bytes', 'gauge', 'Bytes held against the memory budget (payload and overhead, waiting and in flight).');
  out.push(`spillway_memory_held_bytes ${t.heldBytes}`);
  header(out, 'spillway_acks_ignored_total', 'counter', 'Acked or nacked seqs that were unknown, foreign or already acked.');
  out.push(`spillway_acks_ignored_total ${t.acksIgnored}`);
  if (src.loopDelay !== undefined) {
    // Nanoseconds in, seconds out; the window is the time since the last scrape.
    header(out, 'spillway_event_loop_delay_max_seconds', 'gauge', 'Longest event-loop stall since the last scrape.');
    out.push(`spillway_event_loop_delay_max_seconds ${src.loopDelay.max / 1e9}`);
    header(out, 'spillway_event_loop_delay_p99_seconds', 'gauge', '99th percentile event-loop delay since the last scrape.');
    out.push(`spillway_event_loop_delay_p99_seconds ${src.loopDelay.percentile(99) / 1e9}`);
    src.loopDelay.reset();
  }
  if (src.memory !== undefined) {
    // The names prom-client's default metrics use, so existing Node dashboards read them.
    const m = src.memory();
    header(out, 'process_resident_memory_bytes', 'gauge', 'Resident set size of the daemon (RSS).');
    out.push(`process_resident_memory_bytes ${m.rss}`);
    header(out, 'nodejs_heap_size_total_bytes', 'gauge', 'V8 heap reserved.');
    out.push(`nodejs_heap_size_total_bytes ${m.heapTotal}`);
    header(out, 'nodejs_heap_size_used_bytes', 'gauge', 'V8 heap in use (live objects and garbage not yet collected).');
    out.push(`nodejs_heap_size_used_bytes ${m.heapUsed}`);
    header(out, 'nodejs_external_memory_bytes', 'gauge', 'Memory outside the V8 heap held by JavaScript objects (Buffers: payloads in flight, socket data).');
    out.push(`nodejs_external_memory_bytes ${m.external}`);
  }
  return out.join('\n') + '\n';
}

function header(out: string[], name: string, type: string, help: string): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

function labeled(out: string[], c: LabeledCounter): void {
  header(out, c.name, 'counter', c.help);
  for (const { labels, value } of c.entries()) {
    out.push(`${c.name}{${c.labelNames.map((n, i) => `${n}=${label(labels[i] ?? '')}`).join(',')}} ${value}`);
  }
}

/** A label value, quoted and escaped as the exposition format requires. */
function label(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}
