/**
 * The embedded broker's ingest, 100-byte QoS 1 payloads from SENSORS (20)
 * concurrent publishers (mqtt-sensors.ts, one child process):
 *  - baseline: a bare aedes broker (its own process, bare-aedes.ts) with a
 *    bare mqtt.js subscriber (QoS 1, in this process) counting messages:
 *    what the old loopback path cost without any pipeline;
 *  - daemon: the same publishers on spillway's embedded broker, which takes
 *    each publish in process before its PUBACK, and a SpillwayConsumer
 *    (this process) that keeps credit topped up and acks every batch.
 * Rate = messages / (first publish -> last arrival), CPU per record = the
 * broker-or-daemon process's utime + stime plus this process's (subscriber
 * or consumer) over the trial, divided by n. Median of TRIALS, alternating.
 */
import mqtt from 'mqtt';
import { testConfig } from '../../test/helpers/daemon.js';
import { freePort } from '../../test/helpers/ports.js';
import { Arrivals } from './arrivals.js';
import { startBareAedes } from './bare-aedes.js';
import { countingConsumer, MAX_CREDIT } from './bench-consumer.js';
import { nodeArgsFromEnv, startBenchDaemon } from './daemon-child.js';
import { SENSORS, startSensorLoad, type SensorLoad } from './mqtt-sensors.js';
import { cpuSeconds, fmtRate, median, MiB, now, type BenchLine } from './stats.js';

const N = Number(process.env['BENCH_BROKER_N'] ?? 60_000);
const WARMUP = 10_000;
const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 3);

interface Trial {
  readonly rate: number;
  readonly received: number;
  /** CPU µs per record, both processes together. */
  readonly cpuUs: number;
}

async function trial(sensors: SensorLoad, arrivals: Arrivals, pid: number, n: number): Promise<Trial> {
  const all = arrivals.expect(n);
  const child0 = await cpuSeconds(pid);
  const self0 = process.cpuUsage();
  const t0 = now();
  await sensors.publish('bench/x', n);
  await arrivals.wait(all);
  const rate = arrivals.rateSince(t0);
  const self = process.cpuUsage(self0);
  const cpu = (await cpuSeconds(pid)) - child0 + (self.user + self.system) / 1e6;
  return { rate, received: arrivals.count, cpuUs: (cpu * 1e6) / n };
}

export async function runEmbeddedBroker(): Promise<BenchLine[]> {
  const barePort = await freePort();
  const aedes = await startBareAedes(barePort);
  const bareUrl = `mqtt://127.0.0.1:${barePort}`;
  const bareArrivals = new Arrivals();
  const subscriber = await mqtt.connectAsync(bareUrl, { clientId: `spillway-bench-bare-sub-${process.pid}`, clean: true });
  await subscriber.subscribeAsync('bench/#', { qos: 1 });
  subscriber.on('message', () => bareArrivals.add(1));
  const bareSensors = await startSensorLoad(bareUrl);

  const brokerPort = await freePort();
  const daemon = await startBenchDaemon(
    testConfig({
      log: { level: 'info' },
      limits: { memoryBudgetBytes: 256 * MiB },
      streamDefaults: { capacityRecords: 1_000_000, capacityBytes: 256 * MiB },
      consumers: { maxCredit: MAX_CREDIT },
      sources: { embeddedBroker: { enabled: true, port: brokerPort, subscriptions: [{ topic: 'bench/#', stream: 'bench' }] } },
    }),
    nodeArgsFromEnv(),
  );
  const daemonArrivals = new Arrivals();
  const consumer = await countingConsumer(daemon.consumerUrl, daemonArrivals);
  const daemonSensors = await startSensorLoad(`mqtt://127.0.0.1:${brokerPort}`);
  try {
    await trial(bareSensors, bareArrivals, aedes.pid, WARMUP);
    await trial(daemonSensors, daemonArrivals, daemon.pid, WARMUP);
    const bare: Trial[] = [];
    const through: Trial[] = [];
    for (let t = 1; t <= TRIALS; t++) {
      bare.push(await trial(bareSensors, bareArrivals, aedes.pid, N));
      through.push(await trial(daemonSensors, daemonArrivals, daemon.pid, N));
      const [b, d] = [bare.at(-1) as Trial, through.at(-1) as Trial];
      console.log(`embedded broker trial ${t}: bare aedes + subscriber ${fmtRate(b.rate)} ${b.cpuUs.toFixed(1)} µs/rec (${b.received}/${N}), daemon ${fmtRate(d.rate)} ${d.cpuUs.toFixed(1)} µs/rec (${d.received}/${N})`);
    }
    const rate = (ts: Trial[]) => median(ts.map((x) => x.rate));
    const cpu = (ts: Trial[]) => median(ts.map((x) => x.cpuUs));
    const note = `${N / 1000}k x 100 B QoS 1 from ${SENSORS} publishers, median of ${TRIALS}`;
    return [
      { bench: 'embedded broker ingest', measured: `${fmtRate(rate(through))} daemon`, baseline: `${fmtRate(rate(bare))} bare aedes+sub`, ratio: rate(through) / rate(bare), note },
      { bench: 'embedded broker CPU/record', measured: `${cpu(through).toFixed(1)} µs daemon`, baseline: `${cpu(bare).toFixed(1)} µs bare aedes+sub`, ratio: cpu(through) / cpu(bare), note: 'both processes of each side (lower is better)' },
    ];
  } finally {
    daemonSensors.stop();
    bareSensors.stop();
    await consumer.close();
    await daemon.stop();
    await subscriber.endAsync();
    aedes.stop();
  }
}
