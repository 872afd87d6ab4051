/**
 * Groups in the core, against one group on the same load (issue 10):
 *  - throughput: ingest -> dispatch -> ack with three groups selecting every
 *    stream (a consumer each, all acking) against one group: the rate per
 *    group (records each group received and acked per second) as a share of
 *    the one group's rate (target >= 0.7);
 *  - heap per buffered 100-byte record with three groups against one: one
 *    payload copy serves them all (target <= 1.2x);
 *  - spill then replay on a real SQLite spool with two groups against one
 *    (target >= 0.8): one row per record, read back once per group.
 * Trials alternate which runs first; medians, with the spread as min-max.
 */
import { benchDir, openSpool } from './bare-spool.js';
import { benchPipeline, groupNames, ingest, spoolPipeline } from './core-pipeline.js';
import { measureHeapPerRecord } from './core-heap.js';
import type { Pipeline } from '../../daemon/core/pipeline.js';
import { distinctPayloads, fmtRate, median, now, type BenchLine } from './stats.js';

const RECORDS = Number(process.env['BENCH_GROUPS_N'] ?? 600_000);
const SPOOL_RECORDS = Number(process.env['BENCH_GROUPS_SPOOL_N'] ?? 200_000);
const BATCH = 1_000;
const SPOOL_BATCH = 256;
const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 3);

/** Connects one consumer per group; returns their ids. */
function consumers(p: Pipeline, groups: number): number[] {
  return groupNames(groups).map((group, i) => {
    if (p.connect(i + 1, `c-${group}`, { group }) === undefined) throw new Error(`no group ${group}`);
    return i + 1;
  });
}

/** Records per second per group, ingest -> dispatch -> ack. */
function flow(groups: number, payloads: readonly Uint8Array[]): number {
  const p = benchPipeline(2 * BATCH, groups);
  const ids = consumers(p, groups);
  const ts = Date.now();
  const mask = payloads.length - 1;
  const t0 = now();
  for (let done = 0; done < RECORDS; done += BATCH) {
    for (let i = 0; i < BATCH; i++) ingest(p, payloads[(done + i) & mask] as Uint8Array, ts);
    for (const id of ids) p.credit(id, BATCH);
    for (const d of p.dispatch(now())) p.ack(d.consumer.id, d.records.map((r) => r.seq));
  }
  const ms = now() - t0;
  for (const g of p.groups()) if (g.acked !== RECORDS) throw new Error(`groups bench: ${g.name} acked ${g.acked} of ${RECORDS}`);
  return RECORDS / (ms / 1000);
}

/** Spill SPOOL_RECORDS with no consumer, then every group drains them; records per second (spill + replay, per group). */
async function spillReplay(groups: number, payloads: readonly Uint8Array[]): Promise<number> {
  const dir = await benchDir();
  try {
    const spool = openSpool(dir.file('spool.db'));
    const p = spoolPipeline({ spool, capacityRecords: SPOOL_BATCH, batchRecords: SPOOL_BATCH, groups });
    const mask = payloads.length - 1;
    const t0 = now();
    for (let i = 0; i < SPOOL_RECORDS; i++) ingest(p, payloads[i & mask] as Uint8Array, Date.now());
    const ids = consumers(p, groups);
    for (let guard = 0; p.groups().some((g) => g.acked < SPOOL_RECORDS); guard++) {
      if (guard > 10 * SPOOL_RECORDS) throw new Error('groups spill bench stalled');
      for (const id of ids) p.credit(id, SPOOL_BATCH);
      for (const d of p.dispatch(now())) p.ack(d.consumer.id, d.records.map((r) => r.seq));
      p.flushSpool();
    }
    const ms = now() - t0;
    spool.close();
    return SPOOL_RECORDS / (ms / 1000);
  } finally {
    await dir.remove();
  }
}

const spread = (xs: readonly number[], f: (x: number) => string) => `${f(median(xs))} (${f(Math.min(...xs))}-${f(Math.max(...xs))})`;
const met = (ok: boolean) => (ok ? 'met' : 'MISSED');

export async function runGroups(): Promise<BenchLine[]> {
  const payloads = distinctPayloads();
  flow(1, payloads); // warm-up
  const one: number[] = [];
  const three: number[] = [];
  const spillOne: number[] = [];
  const spillTwo: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    if (t % 2 === 0) {
      one.push(flow(1, payloads));
      three.push(flow(3, payloads));
      spillOne.push(await spillReplay(1, payloads));
      spillTwo.push(await spillReplay(2, payloads));
    } else {
      three.push(flow(3, payloads));
      one.push(flow(1, payloads));
      spillTwo.push(await spillReplay(2, payloads));
      spillOne.push(await spillReplay(1, payloads));
    }
    console.log(`groups trial ${t + 1}: per group 1 ${fmtRate(one.at(-1) as number)}, 3 ${fmtRate(three.at(-1) as number)}; spill+replay 1 ${fmtRate(spillOne.at(-1) as number)}, 2 ${fmtRate(spillTwo.at(-1) as number)}`);
  }
  const heap1 = await measureHeapPerRecord(1);
  const heap3 = await measureHeapPerRecord(3);
  const flowRatio = median(three.map((x, i) => x / (one[i] as number)));
  const heapRatio = heap3.bytesPerRecord / heap1.bytesPerRecord;
  const spillRatio = median(spillTwo.map((x, i) => x / (spillOne[i] as number)));
  return [
    { bench: 'groups: 3 vs 1, per group', measured: spread(three, fmtRate), baseline: `${spread(one, fmtRate)} one group`, ratio: flowRatio, note: `ingest->dispatch->ack, ${RECORDS / 1000}k x 100 B, median of ${TRIALS}; target >= 0.7 (${met(flowRatio >= 0.7)})` },
    { bench: 'groups: heap/record 3 vs 1', measured: `${heap3.bytesPerRecord.toFixed(0)} B`, baseline: `${heap1.bytesPerRecord.toFixed(0)} B one group`, ratio: heapRatio, note: `buffered 100-byte records; target <= 1.2 (${met(heapRatio <= 1.2)})` },
    { bench: 'groups: spill+replay 2 vs 1', measured: spread(spillTwo, fmtRate), baseline: `${spread(spillOne, fmtRate)} one group`, ratio: spillRatio, note: `${SPOOL_RECORDS / 1000}k records spilled then drained by every group; target >= 0.8 (${met(spillRatio >= 0.8)})` },
  ];
}
