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
 * Fresh files each trial; trials alternate bare and pipeline; median of TRIALS.
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

async function trial(payloads: readonly Uint8Array[]): Promise<Trial> {
  const dir = await benchDir();
  const ts = Date.now();
  try {
    const bare = BareSpool.create(dir.file('bare.db'));
    const spillBare = time(() => bare.insertBatched(payloads, RECORDS, BATCH, ts));

    const spool = openSpool(dir.file('spool.db'));
    const p = spoolPipeline({ spool, capacityRecords: BATCH, batchRecords: BATCH });
    const spillRate = time(() => spill(p, payloads, ts));

    let drained = 0;
    const replayBare = time(() => (drained = bare.drain(BATCH)));
    if (drained !== RECORDS) throw new Error(`bare drain read ${drained} of ${RECORDS}`);
    const replayRate = time(() => replay(p));
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
    const r = await trial(payloads);
    trials.push(r);
    console.log(
      `spool trial ${t}: spill ${fmtRate(r.spill)} (bare ${fmtRate(r.spillBare)}), replay ${fmtRate(r.replay)} (bare ${fmtRate(r.replayBare)})`,
    );
  }
  const m = (k: keyof Trial) => median(trials.map((r) => r[k]));
  const [spillBare, spillRate, replayBare, replayRate] = [m('spillBare'), m('spill'), m('replayBare'), m('replay')];
  console.log(
    `spool: spill ${fmtRate(spillRate)} vs bare ${fmtRate(spillBare)} (ratio ${(spillRate / spillBare).toFixed(3)}); ` +
      `replay ${fmtRate(replayRate)} vs bare ${fmtRate(replayBare)} (ratio ${(replayRate / replayBare).toFixed(3)}); target >= ${TARGET_RATIO}`,
  );
  const met = (r: number) => (r >= TARGET_RATIO ? ' (met)' : ' (MISSED)');
  const size = `${RECORDS / 1000}k x ${PAYLOAD_BYTES} B, batch ${BATCH}, median of ${TRIALS}, target >= ${TARGET_RATIO}`;
  return [
    { bench: 'spool spill', measured: fmtRate(spillRate), baseline: `${fmtRate(spillBare)} bare`, ratio: spillRate / spillBare, note: `ring ${BATCH}, no consumer; ${size}${met(spillRate / spillBare)}` },
    { bench: 'spool replay', measured: fmtRate(replayRate), baseline: `${fmtRate(replayBare)} bare`, ratio: replayRate / replayBare, note: `dispatch+ack+flushSpool; ${size}${met(replayRate / replayBare)}` },
  ];
}
