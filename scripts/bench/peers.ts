/**
 * `npm run bench:peers`: spillway against its peers as an MQTT forwarder,
 *
 *   publisher ──QoS 1──> Mosquitto A ──> forwarder ──QoS 1──> Mosquitto B ──QoS 1──> subscriber
 *
 * 100-byte payloads. The forwarders, all running at once, each on its own topic:
 *  - spillway: the daemon as a child process on its defaults (and with the node
 *    flags of systemd/spillway.service, as installed), an MQTT source
 *    subscribed to A (`in/s0/#`) and an MQTT upstream to B (nothing but `url`,
 *    plus BENCH_PEERS_UPSTREAM to compare other settings);
 *  - bare: a bare mqtt.js forwarder (bare-forwarder.ts, window 1,000) on `in/b/#`;
 *  - bridge: a Mosquitto bridge, where installed: a second broker A' bridging
 *    `in/m/#` out to B (its CPU and RSS are the whole broker's, A's work included).
 * Rounds are interleaved (spillway, bare, bridge, spillway, ...). Each round:
 *  - throughput: N messages as fast as the publisher (1,000 awaiting PUBACK)
 *    goes; msg/s = N / (first publish -> last arrival at the subscriber);
 *    CPU s per 100k from utime + stime of the forwarder process; peak RSS from
 *    VmHWM, reset before the round;
 *  - latency: LATENCY_RATE msg/s for LATENCY_S, each payload stamped with its
 *    send time (CLOCK_MONOTONIC); p50 / p99 of arrival - send.
 * Then, once per forwarder, an outage (BENCH_PEERS_OUTAGE_S, 0 skips it): at
 * 1,000 msg/s B is stopped for that long and started again; reported are the
 * messages lost, the first delivery after B is back, and when the last message
 * sent during the outage arrived. B keeps the subscriber's session (persistence)
 * so nothing is lost at B itself.
 * Medians over the rounds with the min-max spread; ratios against the bare forwarder.
 *
 *   BENCH_PEERS_N=60000            messages per throughput round
 *   BENCH_PEERS_ROUNDS=3           interleaved rounds
 *   BENCH_PEERS_LATENCY_S=5        seconds at 1,000 msg/s per round
 *   BENCH_PEERS_OUTAGE_S=15        the outage of B (0: none)
 *   BENCH_PEERS_UPSTREAM='{"window":100}'   upstream keys other than the defaults
 *   BENCH_PEERS_SPILLWAY_FLAGS='unit;--max-semi-space-size=8;'   one spillway per set of node flags
 *   SPILLWAY_NODE_ARGS=...         added to every spillway's flags (--cpu-prof ...)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { testConfig } from '../../test/helpers/daemon.js';
import { startMosquitto, stopChild, type Mosquitto } from '../../test/helpers/mosquitto.js';
import { freePort } from '../../test/helpers/ports.js';
import { nodeArgsFromEnv, startBenchDaemon } from './daemon-child.js';
import { startPublisher, type Publisher } from './mqtt-publisher.js';
import { startPacedPublisher, type PacedPublisher } from './paced-publisher.js';
import { Sink } from './peers-sink.js';
import { cpuSeconds, resetPeakRss } from './proc-stat.js';
import { unitNodeArgs } from './unit-flags.js';
import { fmtMiB, fmtRate, median, MiB, now, rssBytes } from './stats.js';

const N = Number(process.env['BENCH_PEERS_N'] ?? 60_000);
const WARMUP = 20_000;
const ROUNDS = Number(process.env['BENCH_PEERS_ROUNDS'] ?? 3);
const LATENCY_RATE = 1_000;
const LATENCY_S = Number(process.env['BENCH_PEERS_LATENCY_S'] ?? 5);
const OUTAGE_S = Number(process.env['BENCH_PEERS_OUTAGE_S'] ?? 15);
const OUTAGE_LEAD_S = 3;
const OUTAGE_TAIL_S = 5;
/** How long after the outage's publishing a forwarder has to deliver the rest. */
const OUTAGE_WAIT_MS = 60_000;
/** Keys of spillway's upstream other than its defaults, as JSON (to compare settings): BENCH_PEERS_UPSTREAM='{"window":1000}'. */
const UPSTREAM_OVERRIDES = JSON.parse(process.env['BENCH_PEERS_UPSTREAM'] ?? '{}') as Record<string, unknown>;
const BARE_FORWARDER = fileURLToPath(new URL('./bare-forwarder.js', import.meta.url));

interface Forwarder {
  readonly name: string;
  readonly pid: number;
  /** Where and on which topic the load goes in. */
  readonly topic: string;
  readonly bulk: Publisher;
  readonly paced: PacedPublisher;
  /** spillway only: records it has moved to its spool so far. */
  readonly spilled?: () => Promise<number>;
  stop(): Promise<void>;
}

interface Round {
  readonly rate: number;
  readonly cpuPer100k: number;
  readonly peakRss: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly lost: number;
  readonly spilled: number;
}

interface Outage {
  readonly lost: number;
  readonly sent: number;
  readonly firstMs: number;
  readonly lastBacklogMs: number;
  readonly drainRate: number;
}

async function startBare(urlA: string, urlB: string, bulk: Publisher, paced: PacedPublisher): Promise<Forwarder> {
  const child = spawn(process.execPath, [BARE_FORWARDER, urlA, urlB, 'in/b/#'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bare forwarder exited (${code}) before ready`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', () => resolve());
  });
  return { name: 'bare mqtt.js', pid: child.pid as number, topic: 'in/b/x', bulk, paced, stop: () => stopChild(child as ChildProcess) };
}

async function round(f: Forwarder, sink: Sink): Promise<Round> {
  await resetPeakRss(f.pid);
  const spilled0 = (await f.spilled?.()) ?? 0;
  const cpu0 = await cpuSeconds(f.pid);
  const all = sink.expect(N);
  const t0 = now();
  await f.bulk.publish(f.topic, N, 1);
  await sink.wait(all);
  const rate = sink.rateSince(t0);
  const cpu = (await cpuSeconds(f.pid)) - cpu0;
  const peakRss = await rssBytes(f.pid, 'VmHWM');
  const lost = N - sink.count;
  const spilled = ((await f.spilled?.()) ?? 0) - spilled0;
  const n = LATENCY_RATE * LATENCY_S;
  const stamped = sink.expect(n);
  await f.paced.publish(f.topic, LATENCY_RATE, LATENCY_S);
  await sink.wait(stamped);
  const [p50Ms, p99Ms] = sink.latencyPercentiles([0.5, 0.99]) as [number, number];
  return { rate, cpuPer100k: (cpu / N) * 100_000, peakRss, p50Ms, p99Ms, lost: lost + (n - sink.count), spilled };
}

async function outage(f: Forwarder, sink: Sink, b: RestartableB): Promise<Outage> {
  const total = LATENCY_RATE * (OUTAGE_LEAD_S + OUTAGE_S + OUTAGE_TAIL_S);
  const all = sink.expect(total);
  const publishing = f.paced.publish(f.topic, LATENCY_RATE, OUTAGE_LEAD_S + OUTAGE_S + OUTAGE_TAIL_S);
  await sleep(OUTAGE_LEAD_S * 1000);
  await b.stop();
  await sleep(OUTAGE_S * 1000);
  // B is back from the moment it is started (its own start-up, ~10 ms, counts against the forwarder).
  const back = process.hrtime.bigint();
  await b.start();
  await publishing;
  // Not Arrivals' 5 s of silence: a forwarder may wait longer than that to reconnect (Mosquitto's bridge does).
  await Promise.race([all, sleep(OUTAGE_WAIT_MS)]);
  return { ...sink.outageFigures(back), sent: total };
}

interface RestartableB {
  readonly url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

async function startB(dir: string): Promise<RestartableB> {
  const port = await freePort();
  const launch = () => startMosquitto([], { port, persistenceDir: dir });
  let broker: Mosquitto | undefined = await launch();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    stop: async () => {
      await broker?.stop();
      broker = undefined;
    },
    start: async () => {
      broker ??= await launch();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function spread(xs: readonly number[], fmt: (x: number) => string): string {
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})`;
}

function printPeers(forwarders: readonly Forwarder[], rounds: ReadonlyMap<string, Round[]>, outages: ReadonlyMap<string, Outage>): void {
  const bare = rounds.get('bare mqtt.js') as Round[];
  const ratio = (x: number, of: (r: Round) => number) => (x / median(bare.map(of))).toFixed(2);
  const header = ['forwarder', 'msg/s', 'x bare', 'CPU s/100k', 'x bare', 'peak RSS', 'p50 @1k/s', 'p99 @1k/s', 'x bare', 'lost', 'spilled', `outage ${OUTAGE_S} s: lost`, 'first after', 'last backlog', 'drain msg/s'];
  const rows = forwarders.map((f) => {
    const rs = rounds.get(f.name) as Round[];
    const o = outages.get(f.name);
    const med = (of: (r: Round) => number) => median(rs.map(of));
    return [
      f.name,
      spread(rs.map((r) => r.rate), (x) => (x / 1000).toFixed(1) + 'k'),
      ratio(med((r) => r.rate), (r) => r.rate),
      spread(rs.map((r) => r.cpuPer100k), (x) => x.toFixed(2)),
      ratio(med((r) => r.cpuPer100k), (r) => r.cpuPer100k),
      spread(rs.map((r) => r.peakRss / MiB), (x) => x.toFixed(0)) + ' MiB',
      spread(rs.map((r) => r.p50Ms), (x) => x.toFixed(1)) + ' ms',
      spread(rs.map((r) => r.p99Ms), (x) => x.toFixed(1)) + ' ms',
      ratio(med((r) => r.p99Ms), (r) => r.p99Ms),
      String(rs.reduce((a, r) => a + r.lost, 0)),
      f.spilled === undefined ? '-' : String(rs.reduce((a, r) => a + r.spilled, 0)),
      o === undefined ? '-' : `${o.lost} of ${o.sent}`,
      o === undefined ? '-' : `${(o.firstMs / 1000).toFixed(2)} s`,
      o === undefined ? '-' : `${(o.lastBacklogMs / 1000).toFixed(2)} s`,
      o === undefined ? '-' : fmtRate(o.drainRate),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const fmt = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  console.log(fmt(header));
  console.log(fmt(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(fmt(r));
}

export async function runPeers(): Promise<void> {
  const bDir = await mkdtemp(join(tmpdir(), 'spillway-bench-peers-'));
  const stops: Array<() => Promise<void> | void> = [];
  try {
    const b = await startB(bDir);
    stops.push(() => b.stop());
    const a = await startMosquitto();
    stops.push(() => a.stop());
    const sink = await Sink.connect(b.url);
    stops.push(() => sink.close());
    const bulkA = await startPublisher(a.url);
    const pacedA = await startPacedPublisher(a.url);
    stops.push(() => bulkA.stop(), () => pacedA.stop());

    const forwarders: Forwarder[] = [];
    // One spillway per set of node flags: the unit's, or those of BENCH_PEERS_SPILLWAY_FLAGS
    // ('unit;--max-semi-space-size=8;' compares the unit's, semi-space 8 and node's defaults), each on its own topic.
    const flagSets = (process.env['BENCH_PEERS_SPILLWAY_FLAGS'] ?? 'unit').split(';').map((f) => (f.trim() === 'unit' ? unitNodeArgs() : f.split(/\s+/).filter((a) => a !== '')));
    for (const [i, flags] of flagSets.entries()) {
      const config = testConfig({
        log: { level: 'info' },
        sources: { mqtt: [{ url: a.url, subscriptions: [{ topic: `in/s${i}/#`, qos: 1, stream: 'bench' }] }] },
        upstreams: { mqtt: [{ url: b.url, ...UPSTREAM_OVERRIDES }] },
      });
      const nodeArgs = [...flags, ...nodeArgsFromEnv()];
      const name = flagSets.length === 1 ? 'spillway' : `spillway ${flags.join(' ') || '(node defaults)'}`;
      console.log(`peers: ${name} runs with node ${nodeArgs.join(' ') || '(no flags)'}`);
      const daemon = await startBenchDaemon(config, nodeArgs);
      stops.push(async () => void (await daemon.stop()));
      const spilled = async () => (await daemon.metrics()).sum('spillway_records_spilled_total');
      forwarders.push({ name, pid: daemon.pid, topic: `in/s${i}/x`, bulk: bulkA, paced: pacedA, spilled, stop: async () => undefined });
    }
    const bare = await startBare(a.url, b.url, bulkA, pacedA);
    stops.push(() => bare.stop());
    forwarders.push(bare);
    try {
      const bridge = await startMosquitto(['', 'connection peers-bridge', `address ${b.url.slice('mqtt://'.length)}`, 'topic in/m/# out 1']);
      stops.push(() => bridge.stop());
      const bulkM = await startPublisher(bridge.url);
      const pacedM = await startPacedPublisher(bridge.url);
      stops.push(() => bulkM.stop(), () => pacedM.stop());
      forwarders.push({ name: 'mosquitto bridge', pid: bridge.pid, topic: 'in/m/x', bulk: bulkM, paced: pacedM, stop: async () => undefined });
    } catch (err) {
      console.log(`peers: no Mosquitto bridge (${String(err).split('\n')[0]})`);
    }

    for (const f of forwarders) {
      const warm = sink.expect(WARMUP);
      await f.bulk.publish(f.topic, WARMUP, 1);
      await sink.wait(warm);
    }
    const rounds = new Map<string, Round[]>(forwarders.map((f) => [f.name, []]));
    for (let i = 1; i <= ROUNDS; i++) {
      for (const f of forwarders) {
        const r = await round(f, sink);
        (rounds.get(f.name) as Round[]).push(r);
        console.log(
          `peers round ${i} ${f.name}: ${fmtRate(r.rate)}, CPU ${r.cpuPer100k.toFixed(2)} s/100k, peak RSS ${fmtMiB(r.peakRss)}, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms${f.spilled === undefined ? '' : `, spilled ${r.spilled}`}${r.lost > 0 ? `, LOST ${r.lost}` : ''}`,
        );
      }
    }
    const outages = new Map<string, Outage>();
    if (OUTAGE_S > 0) {
      for (const f of forwarders) {
        const o = await outage(f, sink, b);
        outages.set(f.name, o);
        console.log(`peers outage ${f.name}: lost ${o.lost} of ${o.sent}, first delivery ${o.firstMs.toFixed(0)} ms after B was back, last backlog message ${o.lastBacklogMs.toFixed(0)} ms, drain ${fmtRate(o.drainRate)}`);
      }
    }
    console.log(`\n== peers (node ${process.version}, ${process.arch}; ${N / 1000}k x 100 B per round, QoS 1, median (min-max) of ${ROUNDS} interleaved rounds)`);
    printPeers(forwarders, rounds, outages);
  } finally {
    for (const stop of stops.reverse()) await stop();
    await rm(bDir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runPeers().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
