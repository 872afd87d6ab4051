/**
 * The daemon's memory while a backlog piles up on disk: the daemon as a
 * child (Mosquitto source at QoS 0, `limits.memoryBudgetBytes` 16 MiB,
 * `whenFull: spill`, no consumer connected) takes RECORDS 100-byte messages
 * from the publisher (mqtt-publisher.ts). Every SAMPLE_MS, during the load
 * and AFTER_MS after it, the bench reads the daemon's VmRSS and scrapes
 * /metrics, timing the scrape.
 *
 * Reports: peak RSS above the idle RSS measured after start (target at most
 * TARGET_ABOVE_IDLE), whether RSS is flat at the end (spread of the last
 * FLAT_SAMPLES samples), how long ingesting took, and that the counters
 * balance (spooled + buffered + dropped = ingested = published).
 *
 * The daemon exposes no event-loop metric, so the bench preloads
 * loop-delay-preload.ts into it (`--import`) and reports the longest
 * event-loop delay and p99 while it ingests, against the same at idle; the
 * /metrics scrape latency is shown beside it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { testConfig, type Metrics } from '../../test/helpers/daemon.js';
import { nodeArgsFromEnv, startBenchDaemon, type BenchDaemon } from './daemon-child.js';
import { LOOP_DELAY_FILE_ENV, LOOP_WINDOW_MS, loopDelayNodeArgs, readLoopDelay, summarize, type LoopDelay } from './loop-delay.js';
import { startPublisher } from './mqtt-publisher.js';
import { fmtMiB, fmtMs, fmtRate, MiB, now, rssBytes, type BenchLine } from './stats.js';

const RECORDS = Number(process.env['BENCH_RSS_N'] ?? 1_000_000);
const MEMORY_BUDGET = 16 * MiB;
const SAMPLE_MS = 500;
const IDLE_SAMPLES = 4;
const AFTER_MS = 10_000;
const FLAT_SAMPLES = 10;
/** Ingest is over once the count stops moving for this long (QoS 0 may lose messages). */
const STALL_MS = 5_000;
const TARGET_ABOVE_IDLE = 32 * MiB;

interface Sample {
  /** ms since the phase began. */
  readonly at: number;
  /** Date.now() (to match the loop-delay windows). */
  readonly wall: number;
  readonly rss: number;
  readonly ingested: number;
  readonly scrapeMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function sample(daemon: BenchDaemon, t0: number): Promise<Sample> {
  const rss = await rssBytes(daemon.pid, 'VmRSS');
  const s0 = now();
  const m = await daemon.metrics();
  return { at: now() - t0, wall: Date.now(), rss, scrapeMs: now() - s0, ingested: m.sum('spillway_records_ingested_total') };
}

/** Samples every SAMPLE_MS until `done(samples)` says stop. */
async function sampleUntil(daemon: BenchDaemon, t0: number, samples: Sample[], done: (s: readonly Sample[]) => boolean): Promise<void> {
  for (;;) {
    const next = now() + SAMPLE_MS;
    samples.push(await sample(daemon, t0));
    if (done(samples)) return;
    await sleep(Math.max(0, next - now()));
  }
}

function balance(m: Metrics): { ingested: number; spooled: number; buffered: number; dropped: number; inflight: number } {
  return {
    ingested: m.sum('spillway_records_ingested_total'),
    spooled: m.sum('spillway_spool_records'),
    buffered: m.sum('spillway_buffer_records'),
    dropped: m.sum('spillway_records_dropped_total'),
    inflight: m.sum('spillway_inflight_records'),
  };
}

export async function runSpoolRss(): Promise<BenchLine[]> {
  const mosquitto = await startMosquitto();
  const publisher = await startPublisher(mosquitto.url);
  const config = testConfig({
    log: { level: 'info' },
    limits: { memoryBudgetBytes: MEMORY_BUDGET },
    streamDefaults: { whenFull: 'spill' },
    sources: { embeddedBroker: { enabled: false }, mqtt: [{ url: mosquitto.url, subscriptions: [{ topic: 'bench/#', qos: 0, stream: 'bench' }] }] },
  });
  const dir = await mkdtemp(join(tmpdir(), 'spillway-bench-rss-'));
  const loopFile = join(dir, 'loop-delay.jsonl');
  const daemon = await startBenchDaemon(config, [...nodeArgsFromEnv(), ...loopDelayNodeArgs()], { [LOOP_DELAY_FILE_ENV]: loopFile });
  try {
    const idleFrom = Date.now();
    const idle: Sample[] = [];
    await sampleUntil(daemon, now(), idle, (s) => s.length >= IDLE_SAMPLES);
    const idleRss = (idle.at(-1) as Sample).rss;
    const idleScrapeMs = Math.max(...idle.map((s) => s.scrapeMs));

    const t0 = now();
    const publishFrom = Date.now();
    const samples: Sample[] = [];
    let publishMs = 0;
    const published = publisher.publish('bench/x', RECORDS, 0).then((ms) => (publishMs = ms));
    let endAt = Infinity;
    await sampleUntil(daemon, t0, samples, (s) => {
      const last = s.at(-1) as Sample;
      if (endAt === Infinity) {
        const still = s.filter((x) => x.ingested === last.ingested);
        const stuck = (still[0] as Sample).at <= last.at - STALL_MS;
        if (last.ingested >= RECORDS || (publishMs > 0 && stuck)) endAt = last.at + AFTER_MS;
      }
      return last.at >= endAt;
    });
    await published;
    const final = balance(await daemon.metrics());
    const hwm = await rssBytes(daemon.pid, 'VmHWM');

    const firstAtFinal = samples.find((s) => s.ingested === final.ingested) as Sample;
    const ingestSeconds = firstAtFinal.at / 1000;
    const windows = await readLoopDelay(loopFile);
    const noWindows: LoopDelay = { windows: 0, maxMs: NaN, p99Ms: NaN };
    // Idle: windows wholly after ready. Busy: up to the window that holds the last ingest.
    const idleLoop = summarize(windows, idleFrom + LOOP_WINDOW_MS, publishFrom) ?? noWindows;
    const busyLoop = summarize(windows, publishFrom, firstAtFinal.wall + LOOP_WINDOW_MS) ?? noWindows;
    const peak = Math.max(...samples.map((s) => s.rss));
    const tail = samples.slice(-FLAT_SAMPLES).map((s) => s.rss);
    const spread = Math.max(...tail) - Math.min(...tail);
    const worstScrape = Math.max(...samples.map((s) => s.scrapeMs));
    const owed = final.spooled + final.buffered + final.inflight + final.dropped;
    const balanced = owed === final.ingested;
    const above = peak - idleRss;

    console.log(`spool rss: ${samples.length} samples every ${SAMPLE_MS} ms; RSS MiB: ${samples.map((s) => (s.rss / MiB).toFixed(0)).join(' ')}`);
    console.log(
      `spool rss: published ${RECORDS} in ${(publishMs / 1000).toFixed(1)} s; daemon ingested ${final.ingested} in ~${ingestSeconds.toFixed(1)} s (${fmtRate(final.ingested / ingestSeconds)}); ` +
        `spooled ${final.spooled} + buffered ${final.buffered} + inflight ${final.inflight} + dropped ${final.dropped} = ${owed} (${balanced ? 'balances' : 'DOES NOT balance'})`,
    );
    console.log(
      `spool rss: idle ${fmtMiB(idleRss)}, peak VmRSS ${fmtMiB(peak)} (+${fmtMiB(above)}, target <= +${fmtMiB(TARGET_ABOVE_IDLE)}), VmHWM ${fmtMiB(hwm)}; ` +
        `last ${FLAT_SAMPLES} samples spread ${fmtMiB(spread)}`,
    );
    console.log(
      `spool rss: daemon event-loop delay while ingesting max ${fmtMs(busyLoop.maxMs)}, p99 ${fmtMs(busyLoop.p99Ms)} (${busyLoop.windows} windows); ` +
        `idle max ${fmtMs(idleLoop.maxMs)}, p99 ${fmtMs(idleLoop.p99Ms)}; /metrics scrape max ${fmtMs(worstScrape)} (idle ${fmtMs(idleScrapeMs)})`,
    );
    const lost = RECORDS - final.ingested;
    return [
      {
        bench: `rss, ${RECORDS >= 1e6 ? `${RECORDS / 1e6}M` : `${RECORDS / 1e3}k`} in spool`,
        measured: `+${fmtMiB(above)} peak`,
        baseline: `${fmtMiB(idleRss)} idle`,
        ratio: peak / idleRss,
        note:
          `budget ${fmtMiB(MEMORY_BUDGET)}, target <= +${fmtMiB(TARGET_ABOVE_IDLE)}${above <= TARGET_ABOVE_IDLE ? ' (met)' : ' (MISSED)'}; ` +
          `last ${FLAT_SAMPLES} samples spread ${fmtMiB(spread)}; VmHWM ${fmtMiB(hwm)}`,
      },
      {
        bench: 'spill via mqtt',
        measured: fmtRate(final.ingested / ingestSeconds),
        baseline: '-',
        note:
          `${final.ingested} ingested in ~${ingestSeconds.toFixed(1)} s (publisher ${(publishMs / 1000).toFixed(1)} s)${lost > 0 ? `, ${lost} never ingested` : ''}; ` +
          `spooled+buffered+dropped ${balanced ? '= ingested' : `${owed} != ingested ${final.ingested}`} (dropped ${final.dropped})`,
      },
      {
        bench: 'daemon loop stall (spill)',
        measured: `${fmtMs(busyLoop.maxMs)} max`,
        baseline: `${fmtMs(idleLoop.maxMs)} idle`,
        ratio: busyLoop.maxMs / idleLoop.maxMs,
        note: `p99 ${fmtMs(busyLoop.p99Ms)} (idle ${fmtMs(idleLoop.p99Ms)}); preloaded monitorEventLoopDelay; /metrics scrape max ${fmtMs(worstScrape)}; ratio lower is better`,
      },
    ];
  } finally {
    await daemon.stop();
    publisher.stop();
    await mosquitto.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
