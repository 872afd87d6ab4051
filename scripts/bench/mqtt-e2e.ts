/**
 * MQTT end to end, 100-byte payloads, on a real Mosquitto, at QoS 0 or 1:
 *  - baseline: a bare mqtt.js subscriber (at the same QoS) counting the
 *    messages;
 *  - daemon: Mosquitto -> spillway (child process, subscribed at the same
 *    QoS) -> a SpillwayConsumer that keeps credit topped up and acks every
 *    batch it gets.
 * Both are fed by the same publisher process (mqtt-publisher.ts), on
 * separate topics so both can stay connected and the trials alternate.
 * Rate = messages / (first publish -> last message received), median of
 * TRIALS. Also reports the daemon's peak RSS (VmHWM).
 *
 * At QoS 1 Mosquitto keeps at most `max_inflight_messages` (default 20)
 * unacked messages per subscriber, for the bare subscriber and the daemon
 * alike; the rest wait in its queue (`max_queued_messages 0`: unlimited, set
 * by the test helper).
 */
import mqtt from 'mqtt';
import type { SpillwayConsumer } from '../../daemon/client/consumer.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { testConfig } from '../../test/helpers/daemon.js';
import { Arrivals } from './arrivals.js';
import { countingConsumer, MAX_CREDIT } from './bench-consumer.js';
import { nodeArgsFromEnv, startBenchDaemon, type BenchDaemon } from './daemon-child.js';
import { startPublisher, type Publisher, type Qos } from './mqtt-publisher.js';
import { fmtMiB, fmtRate, median, MiB, now, rssBytes, type BenchLine } from './stats.js';

const N: Record<Qos, number> = {
  0: Number(process.env['BENCH_MQTT_N'] ?? 200_000),
  1: Number(process.env['BENCH_MQTT1_N'] ?? 60_000),
};
const WARMUP = 20_000;
const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 3);
const TARGET_RATIO = 0.9;

interface RunResult {
  readonly rate: number;
  readonly received: number;
  readonly publishRate: number;
}

async function run(publisher: Publisher, arrivals: Arrivals, topic: string, n: number, qos: Qos): Promise<RunResult> {
  const all = arrivals.expect(n);
  const t0 = now();
  const publishMs = await publisher.publish(topic, n, qos);
  await arrivals.wait(all);
  return { rate: arrivals.rateSince(t0), received: arrivals.count, publishRate: n / (publishMs / 1000) };
}

/** The baseline: mqtt.js, counting (at QoS 1 it sends each PUBACK as the message arrives). */
async function bareSubscriber(url: string, qos: Qos, arrivals: Arrivals): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(url, { clientId: `spillway-bench-sub-${process.pid}`, clean: true });
  await client.subscribeAsync('bare/#', { qos });
  client.on('message', () => arrivals.add(1));
  return client;
}

async function daemonWithConsumer(brokerUrl: string, qos: Qos, arrivals: Arrivals): Promise<{ daemon: BenchDaemon; consumer: SpillwayConsumer }> {
  const config = testConfig({
    log: { level: 'info' }, // 'warn' would hide the `ready` line the helper waits for; nothing per record is logged at info
    limits: { memoryBudgetBytes: 256 * MiB },
    streamDefaults: { capacityRecords: 1_000_000, capacityBytes: 256 * MiB },
    consumers: { maxCredit: MAX_CREDIT },
    sources: { embeddedBroker: { enabled: false }, mqtt: [{ url: brokerUrl, subscriptions: [{ topic: 'bench/#', qos, stream: 'bench' }] }] },
  });
  const daemon = await startBenchDaemon(config, nodeArgsFromEnv());
  return { daemon, consumer: await countingConsumer(daemon.consumerUrl, arrivals) };
}

export async function runMqtt(qos: Qos): Promise<BenchLine[]> {
  const n = N[qos];
  const name = `mqtt qos${qos}`;
  const mosquitto = await startMosquitto();
  const arrivals = new Arrivals();
  const publisher = await startPublisher(mosquitto.url);
  const subscriber = await bareSubscriber(mosquitto.url, qos, arrivals);
  const { daemon, consumer } = await daemonWithConsumer(mosquitto.url, qos, arrivals);
  try {
    const idleRss = await rssBytes(daemon.pid, 'VmRSS');
    await run(publisher, arrivals, 'bare/x', WARMUP, qos);
    await run(publisher, arrivals, 'bench/x', WARMUP, qos);
    const bare: RunResult[] = [];
    const through: RunResult[] = [];
    for (let t = 1; t <= TRIALS; t++) {
      bare.push(await run(publisher, arrivals, 'bare/x', n, qos));
      through.push(await run(publisher, arrivals, 'bench/x', n, qos));
      const [b, d] = [bare.at(-1) as RunResult, through.at(-1) as RunResult];
      console.log(
        `${name} trial ${t}: bare ${fmtRate(b.rate)} (${b.received}/${n}), daemon ${fmtRate(d.rate)} (${d.received}/${n}); ` +
          `publisher ${fmtRate(b.publishRate)} / ${fmtRate(d.publishRate)}`,
      );
    }
    const rss = await rssBytes(daemon.pid, 'VmHWM');
    const b = median(bare.map((r) => r.rate));
    const d = median(through.map((r) => r.rate));
    const lost = (rs: RunResult[]) => rs.reduce((a, r) => a + (n - r.received), 0);
    console.log(`${name}: bare ${fmtRate(b)}, daemon ${fmtRate(d)}, ratio ${(d / b).toFixed(3)} (target >= ${TARGET_RATIO}); daemon peak RSS ${fmtMiB(rss)} (${fmtMiB(idleRss)} idle after start)`);
    const lossNote = lost(bare) + lost(through) > 0 ? `; LOST bare ${lost(bare)}, daemon ${lost(through)}` : '';
    return [
      {
        bench: `${name} e2e`,
        measured: `${fmtRate(d)} daemon`,
        baseline: `${fmtRate(b)} bare`,
        ratio: d / b,
        note: `${n / 1000}k x 100 B, median of ${TRIALS}, target >= ${TARGET_RATIO}${d / b >= TARGET_RATIO ? ' (met)' : ' (MISSED)'}${lossNote}`,
      },
      { bench: `daemon peak RSS (${name})`, measured: fmtMiB(rss), baseline: `${fmtMiB(idleRss)} idle`, note: `VmHWM over ${TRIALS + 1} daemon runs incl. warmup` },
    ];
  } finally {
    await consumer.close();
    await daemon.stop();
    await subscriber.endAsync();
    publisher.stop();
    await mosquitto.stop();
  }
}
