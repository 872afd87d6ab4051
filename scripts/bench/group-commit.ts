/**
 * Durable mode's group commit, end to end: 20 sensors (QoS 1, one message
 * in flight each) publish to the daemon's embedded broker, which takes each
 * record in process and PUBACKs it once the commit covering it is done; a
 * consumer acks everything. Three daemons, interleaved per trial:
 *
 *   durable + synchronous: full    against a bare better-sqlite3 loop of one
 *                                  FULL autocommit insert per row (an fsync
 *                                  per record): the gain of many records per fsync
 *   durable + synchronous: normal  against memory mode on the same load
 *   memory
 *
 * Rates are PUBACKed messages per second at the sensors (start to last
 * PUBACK); CPU is the daemon's, per record. Medians of TRIALS, the spread
 * as min-max.
 */
import { testConfig } from '../../test/helpers/daemon.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { freePort } from '../../test/helpers/ports.js';
import { Arrivals } from './arrivals.js';
import { BareSpool, benchDir } from './bare-spool.js';
import { countingConsumer, MAX_CREDIT } from './bench-consumer.js';
import { nodeArgsFromEnv, startBenchDaemon } from './daemon-child.js';
import { SENSORS, startSensorLoad } from './mqtt-sensors.js';
import { cpuSeconds, distinctPayloads, fmtRate, median, now, type BenchLine } from './stats.js';

const RECORDS = Number(process.env['BENCH_COMMIT_N'] ?? 20_000);
const BARE_FULL_N = Number(process.env['BENCH_COMMIT_BARE_N'] ?? 2_000);
const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 3);
/** PUBACKs a sensor waits for at once: 1 (firmware that waits for each), or more. */
const WINDOW = Number(process.env['BENCH_COMMIT_WINDOW'] ?? 1);
/** spool.groupCommitMs of the durable daemons (0: the records of one event-loop turn). */
const COMMIT_MS = Number(process.env['BENCH_COMMIT_MS'] ?? 0);

type Mode = 'full' | 'normal' | 'memory';
const MODES: readonly Mode[] = ['full', 'normal', 'memory'];

interface Run {
  readonly rate: number;
  readonly cpuUsPerRecord: number;
}

async function runDaemon(mode: Mode): Promise<Run> {
  const port = await freePort();
  const daemon = await startBenchDaemon(
    testConfig({
      durability: mode === 'memory' ? 'memory' : 'durable',
      spool: { synchronous: mode === 'full' ? 'full' : 'normal', groupCommitMs: COMMIT_MS },
      consumers: { maxCredit: MAX_CREDIT },
      sources: { embeddedBroker: { enabled: true, port, subscriptions: [{ topic: 'bench/#', stream: 'bench' }] } },
    }),
    nodeArgsFromEnv(),
  );
  const arrivals = new Arrivals();
  const consumer = await countingConsumer(daemon.consumerUrl, arrivals);
  // WINDOW messages in flight per sensor: every PUBACK a durable daemon holds for its commit holds that sensor back.
  const fleet = await startSensorLoad(`mqtt://127.0.0.1:${port}`, WINDOW);
  try {
    const expected = RECORDS;
    const all = arrivals.expect(expected);
    const cpu0 = await cpuSeconds(daemon.pid);
    const ms = await fleet.publish('bench/s', RECORDS);
    await arrivals.wait(all);
    const cpu = (await cpuSeconds(daemon.pid)) - cpu0;
    if (arrivals.count < expected) throw new Error(`group-commit bench (${mode}): ${arrivals.count} of ${expected} delivered`);
    return { rate: expected / (ms / 1000), cpuUsPerRecord: (cpu * 1e6) / expected };
  } finally {
    fleet.stop();
    await consumer.close();
    await daemon.stop();
  }
}

/**
 * The same sensors publishing to an external Mosquitto, the daemon's MQTT
 * source (one connection) taking them: mqtt.js hands over one message at a
 * time while its PUBACK is pending, so in durable mode each commit holds one
 * record of that connection. Rate: records delivered to the consumer per
 * second, from the first publish to the last arrival.
 */
async function runExternal(durable: boolean): Promise<number> {
  const broker = await startMosquitto();
  const daemon = await startBenchDaemon(
    testConfig({
      durability: durable ? 'durable' : 'memory',
      consumers: { maxCredit: MAX_CREDIT },
      sources: { mqtt: [{ url: broker.url, subscriptions: [{ topic: 'bench/#', qos: 1, stream: 'bench' }] }] },
    }),
    nodeArgsFromEnv(),
  );
  const arrivals = new Arrivals();
  const consumer = await countingConsumer(daemon.consumerUrl, arrivals);
  const fleet = await startSensorLoad(broker.url, WINDOW);
  try {
    // Warm-up: the source has subscribed once the first records come through.
    const warm = arrivals.expect(200);
    await fleet.publish('bench/s', 200);
    await arrivals.wait(warm);
    const n = RECORDS / 2;
    const all = arrivals.expect(n);
    const t0 = now();
    await fleet.publish('bench/s', n);
    await arrivals.wait(all);
    if (arrivals.count < n) throw new Error(`group-commit bench (external, ${durable ? 'durable' : 'memory'}): ${arrivals.count} of ${n} delivered`);
    return n / ((now() - t0) / 1000);
  } finally {
    fleet.stop();
    await consumer.close();
    await daemon.stop();
    await broker.stop();
  }
}

async function bareFull(): Promise<number> {
  const dir = await benchDir();
  try {
    const bare = BareSpool.create(dir.file('bare.db'), 'full');
    const t0 = now();
    bare.insertEach(distinctPayloads(), BARE_FULL_N, Date.now());
    const ms = now() - t0;
    bare.close();
    return BARE_FULL_N / (ms / 1000);
  } finally {
    await dir.remove();
  }
}

const spread = (xs: readonly number[], fmt: (x: number) => string) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})`;

export async function runGroupCommit(): Promise<BenchLine[]> {
  const runs: Record<Mode, Run[]> = { full: [], normal: [], memory: [] };
  const bare: number[] = [];
  const external = { durable: [] as number[], memory: [] as number[] };
  for (let t = 0; t < TRIALS; t++) {
    bare.push(await bareFull());
    // Rotate the order each trial so no mode always runs first on a warm or cold machine.
    for (let i = 0; i < MODES.length; i++) {
      const mode = MODES[(i + t) % MODES.length] as Mode;
      runs[mode].push(await runDaemon(mode));
    }
    for (const durable of t % 2 === 0 ? [true, false] : [false, true]) external[durable ? 'durable' : 'memory'].push(await runExternal(durable));
    console.log(
      `group-commit trial ${t + 1}: ` +
        MODES.map((m) => `${m} ${fmtRate((runs[m].at(-1) as Run).rate)}`).join(', ') +
        `, bare FULL autocommit ${fmtRate(bare.at(-1) as number)}; external broker: durable ${fmtRate(external.durable.at(-1) as number)}, memory ${fmtRate(external.memory.at(-1) as number)}`,
    );
  }
  const rates = (m: Mode) => runs[m].map((r) => r.rate);
  const cpu = (m: Mode) => median(runs[m].map((r) => r.cpuUsPerRecord));
  const fullRatios = runs.full.map((r, i) => r.rate / (bare[i] as number));
  const normalRatios = runs.normal.map((r, i) => r.rate / (runs.memory[i] as Run).rate);
  const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const note = `${SENSORS} QoS 1 sensors, ${WINDOW} in flight each, ${RECORDS / 1000}k x 100 B, median of ${TRIALS} (min-max)`;
  return [
    {
      bench: 'durable full vs FULL autocommit',
      measured: spread(rates('full'), fmtRate),
      baseline: `${spread(bare, fmtRate)} bare`,
      ratio: median(fullRatios),
      note: `${note}; ${cpu('full').toFixed(1)} us CPU/record; target >= 3 (${met(median(fullRatios) >= 3)})`,
    },
    {
      bench: 'durable normal vs memory',
      measured: spread(rates('normal'), fmtRate),
      baseline: `${spread(rates('memory'), fmtRate)} memory`,
      ratio: median(normalRatios),
      note: `${note}; CPU/record ${cpu('normal').toFixed(1)} vs ${cpu('memory').toFixed(1)} us; target >= 0.7 (${met(median(normalRatios) >= 0.7)})`,
    },
    {
      bench: 'external broker: durable vs memory',
      measured: spread(external.durable, fmtRate),
      baseline: `${spread(external.memory, fmtRate)} memory`,
      ratio: median(external.durable.map((d, i) => d / (external.memory[i] as number))),
      note: `the same sensors through Mosquitto into one MQTT source connection (durable normal: one record per commit, mqtt.js's limit), ${RECORDS / 2000}k, median of ${TRIALS}`,
    },
  ];
}
