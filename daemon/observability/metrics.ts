/**
 * Prometheus text exposition of the names in docs/PROTOCOL.md, read straight
 * from the core's counters at scrape time (no per-record metric calls on the
 * hot path). Conservation holds exactly at a quiet moment because every
 * figure is read from the one pipeline in one synchronous pass.
 */
import type { Pipeline } from '../core/pipeline.js';
import { DROP_REASONS } from '../core/record.js';
import type { LabeledCounter, ShellCounters } from './counters.js';
import { renderProcessMetrics, type LoopDelayWindow } from './process-metrics.js';

export interface MetricsSources {
  readonly pipeline: Pipeline;
  readonly counters: ShellCounters;
  readonly consumers: () => number;
  /** Streams holding a source back now (`whenFull: block`, no room). */
  readonly blockedStreams: () => number;
  /** Corrupt spool files moved aside since start. */
  readonly spoolQuarantined: () => number;
  /** What the spool takes on disk (database and WAL), SpoolPort.sizeOnDisk. */
  readonly spoolDiskBytes?: () => number;
  /** Event-loop delay over a rolling window (a scrape resets nothing). */
  readonly loopDelay?: LoopDelayWindow;
}

export function renderMetrics(src: MetricsSources): string {
  const out: string[] = [];
  const streams = [...src.pipeline.streams(), ...src.pipeline.forgotten()];
  const t = src.pipeline.totals();

  const perStream = (name: string, type: 'counter' | 'gauge', help: string, value: (s: (typeof streams)[number]) => number) => {
    header(out, name, type, help);
    for (const s of streams) out.push(`${name}{stream=${label(s.name)}} ${value(s)}`);
  };

  perStream('spillway_records_ingested_total', 'counter', 'Records accepted from sources.', (s) => s.ingested);
  header(out, 'spillway_records_recovered_total', 'counter', 'Records found in the spool at start.');
  out.push(`spillway_records_recovered_total ${t.recovered}`);
  // Per group (docs/PROTOCOL.md, Groups): without `groups` the one group is `default`, and these sum to the v1 figures.
  const byGroup = [...src.pipeline.groupStreams()];
  const groups = src.pipeline.groups();
  header(out, 'spillway_records_acked_total', 'counter', 'Records acked by a consumer of the group.');
  for (const c of byGroup) out.push(`spillway_records_acked_total{stream=${label(c.stream)},group=${label(c.group)}} ${c.acked}`);
  header(out, 'spillway_records_dropped_total', 'counter', 'Records dropped, by reason (a record several groups held counts once for each).');
  for (const c of byGroup) {
    for (const reason of DROP_REASONS) out.push(`spillway_records_dropped_total{stream=${label(c.stream)},group=${label(c.group)},reason="${reason}"} ${c.dropped[reason]}`);
  }
  header(out, 'spillway_records_redelivered_total', 'counter', 'Deliveries after the group\'s first.');
  for (const c of byGroup) out.push(`spillway_records_redelivered_total{stream=${label(c.stream)},group=${label(c.group)}} ${c.redelivered}`);
  const perGroup = (name: string, type: 'counter' | 'gauge', help: string, value: (g: (typeof groups)[number]) => number) => {
    header(out, name, type, help);
    for (const g of groups) out.push(`${name}{group=${label(g.name)}} ${value(g)}`);
  };
  perGroup('spillway_group_ingested_total', 'counter', 'Records the group selects, taken from sources.', (g) => g.ingested);
  perGroup('spillway_group_recovered_total', 'counter', 'Records the group selects, found in the spool at start.', (g) => g.recovered);
  perGroup('spillway_group_backlog_records', 'gauge', 'Records the group selects that wait for it (not acked by it, not dropped for it, not in flight at it).', (g) => g.backlog);
  perStream('spillway_records_spilled_total', 'counter', 'Records moved to the spool.', (s) => s.spilled);
  labeled(out, src.counters.inputRejected);
  labeled(out, src.counters.consumerErrors);
  perStream('spillway_buffer_records', 'gauge', 'Records waiting in memory.', (s) => s.buffered);
  perStream('spillway_buffer_bytes', 'gauge', 'Payload bytes waiting in memory.', (s) => s.bufferedBytes);
  header(out, 'spillway_spool_records', 'gauge', 'Records only on disk.');
  out.push(`spillway_spool_records ${t.spooled}`);
  header(out, 'spillway_spool_bytes', 'gauge', 'Bytes in the spool against its quota (payload and row overhead).');
  out.push(`spillway_spool_bytes ${t.spoolBytes}`);
  if (src.spoolDiskBytes !== undefined) {
    header(out, 'spillway_spool_disk_bytes', 'gauge', 'Bytes the spool takes on disk: the database file and its WAL.');
    out.push(`spillway_spool_disk_bytes ${src.spoolDiskBytes()}`);
  }
  header(out, 'spillway_spool_write_failures_total', 'counter', 'Spool writes that failed (full disk, I/O error); their records were dropped as spool_full.');
  out.push(`spillway_spool_write_failures_total ${t.spoolFailures}`);
  header(out, 'spillway_spool_wal_refused_total', 'counter', 'Records dropped as spool_full because the spool WAL, waiting for its checkpoint, left no room under spool.quotaBytes (checkpoints behind the spill).');
  out.push(`spillway_spool_wal_refused_total ${t.spoolWalRefused}`);
  header(out, 'spillway_spool_quarantined_total', 'counter', 'Corrupt spool files moved aside at start.');
  out.push(`spillway_spool_quarantined_total ${src.spoolQuarantined()}`);
  perGroup('spillway_inflight_records', 'gauge', 'Records sent to the group and not yet acked by it.', (g) => g.inflight);
  perGroup('spillway_consumers', 'gauge', 'Consumers of the group connected and past hello (taps not counted).', (g) => g.consumers);
  header(out, 'spillway_taps', 'gauge', 'Taps connected (hello with tap: they see records as first delivered, and hold none).');
  out.push(`spillway_taps ${src.pipeline.taps}`);
  const sb = src.counters.sendBuffers.totals();
  header(out, 'spillway_consumer_send_buffer_bytes', 'gauge', 'Bytes written to consumer sockets and not yet taken by the kernel (each at most consumers.maxBufferedBytes and one frame).');
  out.push(`spillway_consumer_send_buffer_bytes ${sb.bytes}`);
  header(out, 'spillway_consumer_send_waiting_records', 'gauge', 'In-flight records waiting in a session for room in its send buffer (held in memory, counted in spillway_inflight_records).');
  out.push(`spillway_consumer_send_waiting_records ${sb.waitingRecords}`);
  header(out, 'spillway_consumers_unwritable', 'gauge', 'Consumers whose send buffer is full: they are sent nothing until it drains.');
  out.push(`spillway_consumers_unwritable ${sb.unwritable}`);
  header(out, 'spillway_streams_blocked', 'gauge', 'Streams holding their source back now: a record refused under whenFull: block waits for room (ring or memory budget).');
  out.push(`spillway_streams_blocked ${src.blockedStreams()}`);
  header(out, 'spillway_memory_held_bytes', 'gauge', 'Bytes held against the memory budget (payload and overhead, waiting and in flight).');
  out.push(`spillway_memory_held_bytes ${t.heldBytes}`);
  header(out, 'spillway_streams_forgotten_total', 'counter', 'Idle streams forgotten (limits.streamIdleSeconds); their counts are under stream="(forgotten)".');
  out.push(`spillway_streams_forgotten_total ${src.pipeline.forgottenStreams}`);
  header(out, 'spillway_acks_ignored_total', 'counter', 'Acked or nacked seqs that were unknown, foreign or already acked.');
  out.push(`spillway_acks_ignored_total ${t.acksIgnored}`);
  header(out, 'spillway_unselected_records_total', 'counter', 'Records of streams no group selects, discarded at ingest.');
  out.push(`spillway_unselected_records_total ${t.unselected}`);
  renderProcessMetrics(out, src.loopDelay?.figures());
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
