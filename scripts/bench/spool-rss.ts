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
 * balance (spooled + buffered + dropped = ingested = published). The daemon
 * exposes no event-loop metric, so the scrape latency stands in for it: a
 * scrape waits out whatever stalls the daemon's loop (an upper bound of a
 * stall only when a scrape happens to hit one); baseline: scrapes at idle.
 */
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { testConfig, type Metrics } from '../../test/helpers/daemon.js';
import { nodeArgsFromEnv, startBenchDaemon, type BenchDaemon } from './daemon-child.js';
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
  readonly at: number;
  readonly rss: number;
  readonly ingested: number;
  readonly scrapeMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function sample(daemon: BenchDaemon, t0: number): Promise<Sample> {
  const rss = await rssBytes(daemon.pid, 'VmRSS');
  const s0 = now();
  const m = await daemon.metrics();
  return { at: now() - t0, rss, scrapeMs: now() - s0, ingested: m.sum('spillway_records_ingested_total') };
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
  const daemon = await startBenchDaemon(config, nodeArgsFromEnv());
  try {
    const idle: Sample[] = [];
    await sampleUntil(daemon, now(), idle, (s) => s.length >= IDLE_SAMPLES);
    const idleRss = (idle.at(-1) as Sample).rss;
    const idleScrapeMs = Math.max(...idle.map((s) => s.scrapeMs));

    const t0 = now();
    const samples: Sample[] = [];
    let publishMs = 0;
    const published = publisher.publish('bench/x', RECORDS, 0).then((ms) => (publishMs = ms));
    let endAt = Infinity;
    await sampleUntil(daemon, t0, samples, (s) => {
      const last = s.at(-1) as Sample;
      if (endAt === Infinity) {
        const still = s.filter((x) => x.ingested === last.ingested);
        const stuck = last.ingested > 0 && (still[0] as Sample).at <= last.at - STALL_MS;
        if (last.ingested >= RECORDS || (publishMs > 0 && stuck)) endAt = last.at + AFTER_MS;
      }
      return last.at >= endAt;
    });
    await published;
    const final = balance(await daemon.metrics());
    const hwm = await rssBytes(daemon.pid, 'VmHWM');

    const firstAtFinal = samples.find((s) => s.ingested === final.ingested) as Sample;
    const ingestSeconds = firstAtFinal.at / 1000;
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
        `last ${FLAT_SAMPLES} samples spread ${fmtMiB(spread)}; /metrics scrape max ${fmtMs(worstScrape)} (idle ${fmtMs(idleScrapeMs)})`,
    );
    const lost = RECORDS - final.ingested;
    return [
      {
        bench: 'rss, 1M in spool',
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
        bench: 'daemon /metrics latency',
        measured: `${fmtMs(worstScrape)} max`,
        baseline: `${fmtMs(idleScrapeMs)} idle`,
        ratio: worstScrape / idleScrapeMs,
        note: `one scrape per ${SAMPLE_MS} ms during the spill; stands in for an event-loop metric (none exposed)`,
      },
    ];
  } finally {
    await daemon.stop();
    publisher.stop();
    await mosquitto.stop();
  }
}
