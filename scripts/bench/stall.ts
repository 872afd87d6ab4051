/**
 * The longest event-loop stall while spilling hard, in process: the spill
 * bench's Pipeline (ring of BATCH, `spill`, SQLite spool, no consumer) takes
 * CHUNK records per turn of the event loop (setImmediate between chunks),
 * with `monitorEventLoopDelay({ resolution: 1 })` on. Baseline: the same
 * chunks inserted bare, in transactions of BATCH. Reports the max and p99
 * delay; ratio = pipeline max / bare max (lower is better). Trials alternate
 * the order; the max is the worst over all trials, p99 the median.
 *
 * A CHUNK-record turn itself takes a few ms, so p99 is close to a turn's
 * length; the max shows what else stalls the loop (a GC, a slow commit).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { BareSpool, benchDir, openSpool } from './bare-spool.js';
import { ingest, spoolPipeline } from './core-pipeline.js';
import { distinctPayloads, fmtMs, median, PAYLOAD_BYTES, type BenchLine } from './stats.js';

const RECORDS = Number(process.env['BENCH_STALL_N'] ?? 500_000);
const CHUNK = 1_000;
const BATCH = 256;
const TRIALS = 2;

interface Delay {
  readonly maxMs: number;
  readonly p99Ms: number;
  readonly meanMs: number;
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs `chunk(first, n)` over RECORDS in CHUNK-record turns and returns the event-loop delay seen meanwhile. */
async function chunked(chunk: (first: number, n: number) => void): Promise<Delay> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  for (let done = 0; done < RECORDS; done += CHUNK) {
    chunk(done, Math.min(CHUNK, RECORDS - done));
    await turn();
  }
  h.disable();
  return { maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, meanMs: h.mean / 1e6 };
}

async function trial(payloads: readonly Uint8Array[], bareFirst: boolean): Promise<{ bare: Delay; pipeline: Delay }> {
  const dir = await benchDir();
  const ts = Date.now();
  const mask = payloads.length - 1;
  try {
    const runBare = async () => {
      const bare = BareSpool.create(dir.file('bare.db'));
      const d = await chunked((first, n) => bare.insertBatched(payloads, n, BATCH, ts, first + 1));
      bare.close();
      return d;
    };
    const runPipeline = async () => {
      const spool = openSpool(dir.file('spool.db'));
      const p = spoolPipeline({ spool, capacityRecords: BATCH, batchRecords: BATCH });
      const d = await chunked((first, n) => {
        for (let i = first; i < first + n; i++) ingest(p, payloads[i & mask] as Uint8Array, ts);
      });
      spool.close();
      return d;
    };
    if (bareFirst) {
      const bare = await runBare();
      return { bare, pipeline: await runPipeline() };
    }
    const pipeline = await runPipeline();
    return { bare: await runBare(), pipeline };
  } finally {
    await dir.remove();
  }
}

export async function runStall(): Promise<BenchLine[]> {
  const payloads = distinctPayloads();
  const bare: Delay[] = [];
  const pipeline: Delay[] = [];
  const fmt = (d: Delay) => `max ${fmtMs(d.maxMs)}, p99 ${fmtMs(d.p99Ms)}, mean ${fmtMs(d.meanMs)}`;
  for (let t = 1; t <= TRIALS; t++) {
    const r = await trial(payloads, t % 2 === 1);
    bare.push(r.bare);
    pipeline.push(r.pipeline);
    console.log(`stall trial ${t}: pipeline ${fmt(r.pipeline)}; bare ${fmt(r.bare)}`);
  }
  const worst = (ds: Delay[]) => Math.max(...ds.map((d) => d.maxMs));
  const p99 = (ds: Delay[]) => median(ds.map((d) => d.p99Ms));
  const [pMax, bMax] = [worst(pipeline), worst(bare)];
  console.log(`stall: event-loop delay while spilling, pipeline max ${fmtMs(pMax)} p99 ${fmtMs(p99(pipeline))}; bare max ${fmtMs(bMax)} p99 ${fmtMs(p99(bare))}`);
  return [
    {
      bench: 'spill loop stall',
      measured: `${fmtMs(pMax)} max`,
      baseline: `${fmtMs(bMax)} bare`,
      ratio: pMax / bMax,
      note: `p99 ${fmtMs(p99(pipeline))} (bare ${fmtMs(p99(bare))}); ${CHUNK} records/turn, ${RECORDS / 1000}k x ${PAYLOAD_BYTES} B, worst of ${TRIALS}; ratio lower is better`,
    },
  ];
}
