/**
 * Durable mode in process, on a real SQLite file (synchronous=normal): a
 * Pipeline with `durable: true` commits the records of each BATCH in one
 * group commit (as the engine does for the records of one event-loop turn),
 * and a consumer keeps up: every BATCH records it grants BATCH
 * credit, acks what is dispatched and the acked rows are deleted
 * (flushSpool). Baseline: the same rows inserted bare, one autocommit
 * INSERT each (the floor of "commit every record"; it deletes nothing).
 * Fresh files each trial; trials alternate the order. Rates are the median
 * of TRIALS; the ratio is the median of the per-trial ratios.
 */
import type { Pipeline } from '../../daemon/core/pipeline.js';
import { BareSpool, benchDir, openSpool } from './bare-spool.js';
import { ingest, spoolPipeline } from './core-pipeline.js';
import { distinctPayloads, fmtRate, median, now, PAYLOAD_BYTES, type BenchLine } from './stats.js';

const RECORDS = Number(process.env['BENCH_DURABLE_N'] ?? 50_000);
const BATCH = 256;
const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 3);
const TARGET_RATIO = 0.7;

function keepUp(p: Pipeline, payloads: readonly Uint8Array[], ts: number): void {
  const mask = payloads.length - 1;
  p.connect(1, 'bench');
  for (let done = 0; done < RECORDS; done += BATCH) {
    const n = Math.min(BATCH, RECORDS - done);
    for (let i = done; i < done + n; i++) ingest(p, payloads[i & mask] as Uint8Array, ts);
    if (!p.commit()) throw new Error('durable bench: a group commit failed');
    p.credit(1, n);
    for (const d of p.dispatch(now())) p.ack(1, d.records.map((r) => r.seq));
    p.flushSpool();
  }
  const t = p.totals();
  if (t.acked !== RECORDS || t.spoolPendingDeletes !== 0) throw new Error(`durable bench: ${t.acked} of ${RECORDS} acked, ${t.spoolPendingDeletes} deletes pending`);
}

async function trial(payloads: readonly Uint8Array[], bareFirst: boolean): Promise<{ bare: number; durable: number }> {
  const dir = await benchDir();
  const ts = Date.now();
  try {
    const runBare = () => {
      const bare = BareSpool.create(dir.file('bare.db'));
      const t0 = now();
      bare.insertEach(payloads, RECORDS, ts);
      const ms = now() - t0;
      bare.close();
      return RECORDS / (ms / 1000);
    };
    const runDurable = () => {
      const spool = openSpool(dir.file('spool.db'));
      const p = spoolPipeline({ spool, capacityRecords: 10 * BATCH, batchRecords: BATCH, durable: true });
      const t0 = now();
      keepUp(p, payloads, ts);
      const ms = now() - t0;
      spool.close();
      return RECORDS / (ms / 1000);
    };
    if (bareFirst) {
      const bare = runBare();
      return { bare, durable: runDurable() };
    }
    const durable = runDurable();
    return { bare: runBare(), durable };
  } finally {
    await dir.remove();
  }
}

export async function runDurable(): Promise<BenchLine[]> {
  const payloads = distinctPayloads();
  const trials: Array<{ bare: number; durable: number }> = [];
  for (let t = 1; t <= TRIALS; t++) {
    const r = await trial(payloads, t % 2 === 1);
    trials.push(r);
    console.log(`durable trial ${t}: pipeline ${fmtRate(r.durable)}, bare autocommit inserts ${fmtRate(r.bare)}, ratio ${(r.durable / r.bare).toFixed(3)}`);
  }
  const [b, d, ratio] = [median(trials.map((r) => r.bare)), median(trials.map((r) => r.durable)), median(trials.map((r) => r.durable / r.bare))];
  console.log(`durable: pipeline ${fmtRate(d)} vs bare autocommit ${fmtRate(b)}, ratio ${ratio.toFixed(3)} (target >= ${TARGET_RATIO})`);
  return [
    {
      bench: 'durable ingest->ack',
      measured: fmtRate(d),
      baseline: `${fmtRate(b)} bare`,
      ratio,
      note:
        `one group commit per ${BATCH} records, consumer acks every ${BATCH}; ${RECORDS / 1000}k x ${PAYLOAD_BYTES} B, median of ${TRIALS} (ratio: of per-trial ratios), ` +
        `target >= ${TARGET_RATIO}${ratio >= TARGET_RATIO ? ' (met)' : ' (MISSED)'}`,
    },
  ];
}
