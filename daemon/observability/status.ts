/**
 * The status snapshot behind `GET /status`, the status page and `spillway
 * status`: per stream its ring fill, backlog, drops by reason and counters;
 * the consumers with their credit and in-flight records; the sources; the
 * totals against the memory budget and the spool quota.
 *
 * Read from the one pipeline in one synchronous pass (like /metrics), so
 * the figures agree with each other: at a quiet moment
 *   recovered + ingested = acked + dropped + buffered + spooled + inflight.
 * Plain numbers and strings only: `JSON.stringify` of it is the wire format
 * (`version` 1; fields are only ever added).
 */
import type { SourceHealth } from '../../drivers/driver.js';
import type { Pipeline } from '../core/pipeline.js';
import { DROP_REASONS, type DropReason } from '../core/record.js';
import type { UplinkState } from './uplink.js';

export const STATUS_VERSION = 1;
/** Streams listed at most (the totals count every stream); the rest are counted in `streamsOmitted`. */
export const MAX_STATUS_STREAMS = 500;

export interface StatusInputs {
  /** Each source's health (`Driver.health()`). */
  readonly sources: readonly SourceHealth[];
  /** Dial upstreams and MQTT upstreams. */
  readonly uplinks?: readonly UplinkState[];
  /** The daemon's verdict, as /healthz gives it: `healthy`, and `reasons` when not. */
  readonly health: { readonly healthy: boolean; readonly reasons?: readonly unknown[] };
  /** Bounds to show fill against (config `limits.memoryBudgetBytes`, `spool.quotaBytes`). */
  readonly memoryBudgetBytes?: number;
  readonly spoolQuotaBytes?: number;
  /** Wall-clock ms of this snapshot, and of the start (for uptime). */
  readonly now?: number;
  readonly startedAt?: number;
  readonly maxStreams?: number;
}

export interface StreamStatus {
  readonly name: string;
  readonly priority: number;
  readonly whenFull: string;
  /** Records and payload bytes waiting in memory (ring, taken back, read back from the spool). */
  readonly buffered: number;
  readonly bufferedBytes: number;
  /** The ring alone, against its bounds; `fill` is the fuller of the two (0..1). */
  readonly ringRecords: number;
  readonly ringBytes: number;
  readonly capacityRecords: number;
  readonly capacityBytes: number;
  readonly fill: number;
  /** Records only on disk. */
  readonly spooled: number;
  readonly spooledBytes: number;
  readonly ingested: number;
  readonly acked: number;
  readonly redelivered: number;
  readonly spilled: number;
  readonly dropped: Readonly<Record<DropReason, number>>;
  readonly droppedTotal: number;
}

export interface ConsumerStatus {
  readonly id: number;
  readonly name: string;
  /** Records it may still be sent. */
  readonly credit: number;
  /** Sent to it and not yet acked. */
  readonly inflight: number;
  readonly sent: number;
  readonly granted: number;
}

export interface SourceStatus {
  readonly name: string;
  readonly state: 'up' | 'down';
  readonly detail: string;
}

export interface Status {
  readonly version: typeof STATUS_VERSION;
  readonly at: number;
  readonly uptimeMs: number | null;
  readonly healthy: boolean;
  readonly status: 'ok' | 'degraded';
  readonly reasons: readonly string[];
  readonly totals: {
    readonly streams: number;
    readonly consumers: number;
    readonly recovered: number;
    readonly ingested: number;
    readonly acked: number;
    readonly dropped: number;
    readonly droppedByReason: Readonly<Record<DropReason, number>>;
    readonly redelivered: number;
    readonly spilled: number;
    readonly buffered: number;
    readonly bufferedBytes: number;
    readonly spooled: number;
    readonly spoolBytes: number;
    readonly inflight: number;
    readonly heldBytes: number;
    readonly memoryBudgetBytes: number | null;
    /** heldBytes / memoryBudgetBytes (0..1), null without a budget. */
    readonly memoryFill: number | null;
    readonly spoolQuotaBytes: number | null;
    readonly spoolFill: number | null;
    readonly spoolFailures: number;
  };
  readonly streams: readonly StreamStatus[];
  readonly streamsOmitted: number;
  readonly consumers: readonly ConsumerStatus[];
  readonly sources: readonly SourceStatus[];
  /** Dial and MQTT upstreams: connected, last ack, window in use, reconnects. */
  readonly uplinks: readonly UplinkState[];
  /** Destinations (docs/PROTOCOL.md, Groups): without `groups`, the one group `default`. */
  readonly groups: readonly GroupStatus[];
  readonly taps: number;
}

export interface GroupStatus {
  readonly name: string;
  readonly consumers: number;
  readonly taps: number;
  /** Records the group selects that wait for it: not acked by it, not dropped for it, not in flight at it. */
  readonly backlog: number;
  readonly backlogBytes: number;
  readonly inflight: number;
  readonly ingested: number;
  readonly recovered: number;
  readonly acked: number;
  readonly dropped: number;
  readonly droppedByReason: Readonly<Record<DropReason, number>>;
  readonly redelivered: number;
}

export function buildStatus(pipeline: Pipeline, inputs: StatusInputs): Status {
  const t = pipeline.totals();
  const droppedByReason = zero();
  let redelivered = 0;
  let spilled = 0;
  const all: StreamStatus[] = [];
  for (const s of pipeline.streams()) {
    const dropped = { ...s.dropped };
    let droppedTotal = 0;
    for (const r of DROP_REASONS) {
      droppedByReason[r] += dropped[r];
      droppedTotal += dropped[r];
    }
    redelivered += s.redelivered;
    spilled += s.spilled;
    const { ring } = s;
    all.push({
      name: s.name,
      priority: s.priority,
      whenFull: s.spec.whenFull,
      buffered: s.buffered,
      bufferedBytes: s.bufferedBytes,
      ringRecords: ring.length,
      ringBytes: ring.bytes,
      capacityRecords: ring.capacityRecords,
      capacityBytes: ring.capacityBytes,
      fill: Math.min(1, Math.max(ring.length / ring.capacityRecords, ring.bytes / ring.capacityBytes)),
      spooled: s.spooled,
      spooledBytes: s.spooledBytes,
      ingested: s.ingested,
      acked: s.acked,
      redelivered: s.redelivered,
      spilled: s.spilled,
      dropped,
      droppedTotal,
    });
  }
  all.sort((a, b) => a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const limit = inputs.maxStreams ?? MAX_STATUS_STREAMS;
  const consumers = [...pipeline.consumers()].map((c) => ({ id: c.id, name: c.name, credit: c.credit, inflight: c.inflight, sent: c.sent, granted: c.granted }));
  const reasons = (inputs.health.reasons ?? []).map(String);
  const budget = inputs.memoryBudgetBytes ?? null;
  const quota = inputs.spoolQuotaBytes ?? null;
  const now = inputs.now ?? Date.now();
  return {
    version: STATUS_VERSION,
    at: now,
    uptimeMs: inputs.startedAt === undefined ? null : Math.max(0, now - inputs.startedAt),
    healthy: inputs.health.healthy,
    status: inputs.health.healthy ? 'ok' : 'degraded',
    reasons,
    totals: {
      streams: all.length,
      consumers: consumers.length,
      recovered: t.recovered,
      ingested: t.ingested,
      acked: t.acked,
      dropped: t.dropped,
      droppedByReason,
      redelivered,
      spilled,
      buffered: t.buffered,
      bufferedBytes: t.bufferedBytes,
      spooled: t.spooled,
      spoolBytes: t.spoolBytes,
      inflight: t.inflight,
      heldBytes: t.heldBytes,
      memoryBudgetBytes: budget,
      memoryFill: budget === null || budget <= 0 ? null : t.heldBytes / budget,
      spoolQuotaBytes: quota,
      spoolFill: quota === null || quota <= 0 ? null : t.spoolBytes / quota,
      spoolFailures: t.spoolFailures,
    },
    streams: all.slice(0, limit),
    streamsOmitted: Math.max(0, all.length - limit),
    consumers,
    sources: inputs.sources.map((s) => ({ name: s.name, state: s.up ? 'up' : 'down', detail: s.detail })),
    uplinks: inputs.uplinks ?? [],
    groups: pipeline.groups().map((g) => ({
      name: g.name,
      consumers: g.consumers,
      taps: g.taps,
      backlog: g.backlog,
      backlogBytes: g.backlogBytes,
      inflight: g.inflight,
      ingested: g.ingested,
      recovered: g.recovered,
      acked: g.acked,
      dropped: g.dropped,
      droppedByReason: { ...g.droppedBy },
      redelivered: g.redelivered,
    })),
    taps: pipeline.taps,
  };
}

function zero(): Record<DropReason, number> {
  const out = {} as Record<DropReason, number>;
  for (const r of DROP_REASONS) out[r] = 0;
  return out;
}
