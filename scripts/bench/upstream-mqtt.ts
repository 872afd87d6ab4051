/**
 * MQTT upstream throughput, 100-byte payloads, on a real Mosquitto:
 *  - baseline: the bench publisher (mqtt-publisher.ts) publishing QoS 1
 *    straight to `out/bare`, at most 1,000 awaiting their PUBACK;
 *  - daemon: the same publisher feeds the daemon at QoS 0 (`in/x`, an MQTT
 *    source), and the daemon publishes every record QoS 1 to `out/bench`
 *    through `upstreams.mqtt` (window 1,000, MQTT 3.1.1 like the publisher,
 *    so Mosquitto's Receive Maximum does not cap it).
 * One subscriber (QoS 0, `out/#`) counts both. Rate = messages / (first
 * publish -> last arrival), median of TRIALS; the daemon's rate includes its
 * ingest of the same messages from the broker.
 */
import mqtt from 'mqtt';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { testConfig } from '../../test/helpers/daemon.js';
import { Arrivals } from './arrivals.js';
import { nodeArgsFromEnv, startBenchDaemon } from './daemon-child.js';
import { startPublisher, type Publisher, type Qos } from './mqtt-publisher.js';
import { fmtMiB, fmtRate, median, MiB, now, rssBytes, type BenchLine } from './stats.js';

const N = Number(process.env['BENCH_UPSTREAM_N'] ?? 100_000);
const WARMUP = 20_000;
const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 3);
const WINDOW = 1_000;
const TARGET_RATIO = 0.85;

interface RunResult {
  readonly rate: number;
  readonly received: number;
}

async function run(publisher: Publisher, arrivals: Arrivals, topic: string, n: number, qos: Qos): Promise<RunResult> {
  const all = arrivals.expect(n);
  const t0 = now();
  await publisher.publish(topic, n, qos);
  await arrivals.wait(all);
  return { rate: arrivals.rateSince(t0), received: arrivals.count };
}

export async function runUpstreamMqtt(): Promise<BenchLine[]> {
  const mosquitto = await startMosquitto();
  const arrivals = new Arrivals();
  const publisher = await startPublisher(mosquitto.url);
  const subscriber = await mqtt.connectAsync(mosquitto.url, { clientId: `spillway-bench-sub-${process.pid}`, clean: true });
  await subscriber.subscribeAsync('out/#', { qos: 0 });
  subscriber.on('message', () => arrivals.add(1));
  const config = testConfig({
    log: { level: 'info' },
    limits: { memoryBudgetBytes: 256 * MiB },
    streamDefaults: { capacityRecords: 1_000_000, capacityBytes: 256 * MiB },
    sources: { embeddedBroker: { enabled: false }, mqtt: [{ url: mosquitto.url, subscriptions: [{ topic: 'in/#', qos: 0, stream: 'bench' }] }] },
    upstreams: { mqtt: [{ url: mosquitto.url, protocolVersion: 4, topicTemplate: 'out/{stream}', window: WINDOW }] },
  });
  const daemon = await startBenchDaemon(config, nodeArgsFromEnv());
  try {
    await run(publisher, arrivals, 'out/bare', WARMUP, 1);
    await run(publisher, arrivals, 'in/x', WARMUP, 0);
    const bare: RunResult[] = [];
    const through: RunResult[] = [];
    for (let t = 1; t <= TRIALS; t++) {
      bare.push(await run(publisher, arrivals, 'out/bare', N, 1));
      through.push(await run(publisher, arrivals, 'in/x', N, 0));
      const [b, d] = [bare.at(-1) as RunResult, through.at(-1) as RunResult];
      console.log(`upstream-mqtt trial ${t}: bare QoS 1 publisher ${fmtRate(b.rate)} (${b.received}/${N}), daemon upstream ${fmtRate(d.rate)} (${d.received}/${N})`);
    }
    const rss = await rssBytes(daemon.pid, 'VmHWM');
    const b = median(bare.map((r) => r.rate));
    const d = median(through.map((r) => r.rate));
    const lost = (rs: RunResult[]) => rs.reduce((a, r) => a + (N - r.received), 0);
    console.log(`upstream-mqtt: bare ${fmtRate(b)}, daemon ${fmtRate(d)}, ratio ${(d / b).toFixed(3)} (target >= ${TARGET_RATIO}); daemon peak RSS ${fmtMiB(rss)}`);
    const lossNote = lost(bare) + lost(through) > 0 ? `; LOST bare ${lost(bare)}, daemon ${lost(through)}` : '';
    return [
      {
        bench: 'mqtt upstream qos1',
        measured: `${fmtRate(d)} daemon`,
        baseline: `${fmtRate(b)} bare`,
        ratio: d / b,
        note: `${N / 1000}k x 100 B, window ${WINDOW}, median of ${TRIALS}, target >= ${TARGET_RATIO}${d / b >= TARGET_RATIO ? ' (met)' : ' (MISSED)'}${lossNote}`,
      },
    ];
  } finally {
    await daemon.stop();
    await subscriber.endAsync();
    publisher.stop();
    await mosquitto.stop();
  }
}
