/**
 * The spool tier in process, on a real SQLite file (synchronous=normal):
 *  - spill: a Pipeline with a tiny ring (BATCH records, `spill`, spill
 *    batches of BATCH) and no consumer ingests RECORDS 100-byte records, so
 *    all but the last ring's worth go to disk in transactions of BATCH;
 *    baseline: the same rows inserted bare in transactions of BATCH
 *    (bare-spool.ts);
 *  - replay: a consumer then drains that spool (credit BATCH, dispatch, ack,
 *    flushSpool, until all are acked: one read and one delete transaction of
 *    BATCH per turn); baseline: bare select + delete of BATCH rows at a time
 *    from the baseline's file.
 * Fresh files each trial; trials alternate which goes first. Rates are the
 * median of TRIALS; the ratio is the median of the per-trial ratios (each
 * trial's pair runs back to back, so load from elsewhere on the machine
 * hits both alike).
 */
import type { Pipeline } from '../../daemon/core/pipeline.js';
import { BareSpool, benchDir, openSpool } from './bare-spool.js';
import { ingest, spoolPipeline } from './core-pipeline.js';
import { distinctPayloads, fmtRate, median, now, PAYLOAD_BYTES, type BenchLine } from './stats.js';

const RECORDS = Number(process.env['BENCH_SPOOL_N'] ?? 500_000);
const BATCH = 256;
const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 3);
const TARGET_RATIO = 0.85;

interface Trial {
  readonly spillBare: number;
  readonly spill: number;
  readonly replayBare: number;
  readonly replay: number;
}

function spill(p: Pipeline, payloads: readonly Uint8Array[], ts: number): void {
  const mask = payloads.length - 1;
  for (let i = 0; i < RECORDS; i++) ingest(p, payloads[i & mask] as Uint8Array, ts);
  const t = p.totals();
  if (t.spooled + t.buffered !== RECORDS || t.dropped !== 0) throw new Error(`spill bench: ${t.spooled} spooled + ${t.buffered} buffered, ${t.dropped} dropped of ${RECORDS}`);
}

/** Credit BATCH, dispatch, ack what came, delete it from the spool; until all are acked. */
function replay(p: Pipeline): void {
  p.connect(1, 'bench');
  let acked = 0;
  while (acked < RECORDS) {
    p.credit(1, BATCH);
    let sent = 0;
    for (const d of p.dispatch(now())) {
      p.ack(1, d.records.map((r) => r.seq));
      sent += d.records.length;
    }
    p.flushSpool();
    if (sent === 0) throw new Error(`replay bench stalled at ${acked} of ${RECORDS}`);
    acked += sent;
  }
  const t = p.totals();
  if (t.acked !== RECORDS || t.spooled + t.buffered + t.spoolPendingDeletes !== 0) throw new Error(`replay bench: ${t.acked} acked, ${t.spooled} left on disk`);
}

const rate = (ms: number) => RECORDS / (ms / 1000);

function time(run: () => void): number {
  const t0 = now();
  run();
  return rate(now() - t0);
}

/** Runs both, `a` first when `aFirst`; returns [a, b]. */
function pair(aFirst: boolean, a: () => number, b: () => number): [number, number] {
  if (aFirst) {
    const ra = a();
    return [ra, b()];
  }
  const rb = b();
  return [a(), rb];
}

async function trial(payloads: readonly Uint8Array[], bareFirst: boolean): Promise<Trial> {
  const dir = await benchDir();
  const ts = Date.now();
  try {
    const bare = BareSpool.create(dir.file('bare.db'));
    const spool = openSpool(dir.file('spool.db'));
    const p = spoolPipeline({ spool, capacityRecords: BATCH, batchRecords: BATCH });
    const [spillBare, spillRate] = pair(
      bareFirst,
      () => time(() => bare.insertBatched(payloads, RECORDS, BATCH, ts)),
      () => time(() => spill(p, payloads, ts)),
    );
    let drained = 0;
    const [replayBare, replayRate] = pair(
      bareFirst,
      () => time(() => (drained = bare.drain(BATCH))),
      () => time(() => replay(p)),
    );
    if (drained !== RECORDS) throw new Error(`bare drain read ${drained} of ${RECORDS}`);
    bare.close();
    spool.close();
    return { spillBare, spill: spillRate, replayBare, replay: replayRate };
  } finally {
    await dir.remove();
  }
}

export async function runSpool(): Promise<BenchLine[]> {
  const payloads = distinctPayloads();
  const trials: Trial[] = [];
  for (let t = 1; t <= TRIALS; t++) {
    const r = await trial(payloads, t % 2 === 1);
    trials.push(r);
    console.log(
      `spool trial ${t}: spill ${fmtRate(r.spill)} (bare ${fmtRate(r.spillBare)}, ratio ${(r.spill / r.spillBare).toFixed(3)}), ` +
        `replay ${fmtRate(r.replay)} (bare ${fmtRate(r.replayBare)}, ratio ${(r.replay / r.replayBare).toFixed(3)})`,
    );
  }
  const m = (f: (r: Trial) => number) => median(trials.map(f));
  const [spillBare, spillRate, spillRatio] = [m((r) => r.spillBare), m((r) => r.spill), m((r) => r.spill / r.spillBare)];
  const [replayBare, replayRate, replayRatio] = [m((r) => r.replayBare), m((r) => r.replay), m((r) => r.replay / r.replayBare)];
  console.log(
    `spool: spill ${fmtRate(spillRate)} vs bare ${fmtRate(spillBare)} (ratio ${spillRatio.toFixed(3)}); ` +
      `replay ${fmtRate(replayRate)} vs bare ${fmtRate(replayBare)} (ratio ${replayRatio.toFixed(3)}); target >= ${TARGET_RATIO}`,
  );
  const met = (r: number) => (r >= TARGET_RATIO ? ' (met)' : ' (MISSED)');
  const size = `${RECORDS / 1000}k x ${PAYLOAD_BYTES} B, batch ${BATCH}, median of ${TRIALS} (ratio: of per-trial ratios), target >= ${TARGET_RATIO}`;
  return [
    { bench: 'spool spill', measured: fmtRate(spillRate), baseline: `${fmtRate(spillBare)} bare`, ratio: spillRatio, note: `ring ${BATCH}, no consumer; ${size}${met(spillRatio)}` },
    { bench: 'spool replay', measured: fmtRate(replayRate), baseline: `${fmtRate(replayBare)} bare`, ratio: replayRatio, note: `dispatch+ack+flushSpool; ${size}${met(replayRatio)}` },
  ];
}
