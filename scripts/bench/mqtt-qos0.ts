/**
 * MQTT QoS 0 end to end, 100-byte payloads, on a real Mosquitto:
 *  - baseline: a bare mqtt.js subscriber counting the messages;
 *  - daemon: Mosquitto -> spillway (child process) -> a SpillwayConsumer
 *    that keeps credit topped up and acks every batch it gets.
 * Both are fed by the same publisher process (mqtt-publisher.ts), on
 * separate topics so both can stay connected and the trials alternate.
 * Rate = messages / (first publish -> last message received), median of
 * TRIALS. Also reports the daemon's peak RSS (VmHWM).
 */
import mqtt from 'mqtt';
import { SpillwayConsumer, type WireRecord } from '../../daemon/client/consumer.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { testConfig } from '../../test/helpers/daemon.js';
import { nodeArgsFromEnv, startBenchDaemon, type BenchDaemon } from './daemon-child.js';
import { startPublisher, type Publisher } from './mqtt-publisher.js';
import { fmtMiB, fmtRate, median, MiB, now, rssBytes, type BenchLine } from './stats.js';

const N = Number(process.env['BENCH_MQTT_N'] ?? 200_000);
const WARMUP = 20_000;
const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 3);
const MAX_CREDIT = 50_000;
/** A run ends early when nothing arrives for this long (QoS 0 may lose messages). */
const IDLE_MS = 5_000;
const TARGET_RATIO = 0.9;

/** Counts arrivals of one run and notes when the last one came. */
class Arrivals {
  count = 0;
  lastAt = 0;
  #target = 0;
  #done: (() => void) | undefined;

  expect(target: number): Promise<void> {
    this.count = 0;
    this.#target = target;
    return new Promise((resolve) => (this.#done = resolve));
  }

  add(n: number): void {
    this.count += n;
    this.lastAt = now();
    if (this.count >= this.#target) this.#done?.();
  }

  /** Resolves once the target arrived, or nothing arrived for IDLE_MS. */
  async wait(all: Promise<void>): Promise<void> {
    for (;;) {
      const seen = this.count;
      const idle = await Promise.race([all.then(() => false), new Promise<boolean>((r) => setTimeout(r, IDLE_MS, true))]);
      if (!idle || this.count === seen) return;
    }
  }
}

interface RunResult {
  readonly rate: number;
  readonly received: number;
  readonly publishRate: number;
}

async function run(publisher: Publisher, arrivals: Arrivals, topic: string, n: number): Promise<RunResult> {
  const all = arrivals.expect(n);
  const t0 = now();
  const publishMs = await publisher.publish(topic, n);
  await arrivals.wait(all);
  const rate = arrivals.count === 0 ? 0 : arrivals.count / ((arrivals.lastAt - t0) / 1000);
  return { rate, received: arrivals.count, publishRate: n / (publishMs / 1000) };
}

/** The baseline: mqtt.js, QoS 0, counting. */
async function bareSubscriber(url: string, arrivals: Arrivals): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(url, { clientId: `spillway-bench-sub-${process.pid}`, clean: true });
  await client.subscribeAsync('bare/#', { qos: 0 });
  client.on('message', () => arrivals.add(1));
  return client;
}

async function daemonWithConsumer(brokerUrl: string, arrivals: Arrivals): Promise<{ daemon: BenchDaemon; consumer: SpillwayConsumer }> {
  const config = testConfig({
    log: { level: 'info' }, // 'warn' would hide the `ready` line the helper waits for; nothing per record is logged at info
    limits: { memoryBudgetBytes: 256 * MiB },
    streamDefaults: { capacityRecords: 1_000_000, capacityBytes: 256 * MiB },
    consumers: { maxCredit: MAX_CREDIT },
    sources: { embeddedBroker: { enabled: false }, mqtt: [{ url: brokerUrl, subscriptions: [{ topic: 'bench/#', qos: 0, stream: 'bench' }] }] },
  });
  const daemon = await startBenchDaemon(config, nodeArgsFromEnv());
  const consumer = new SpillwayConsumer({ url: daemon.consumerUrl, name: 'bench' });
  consumer.on('records', (records: WireRecord[]) => {
    consumer.ack(records.map((r) => r.seq));
    consumer.credit(records.length);
    arrivals.add(records.length);
  });
  await consumer.connect();
  consumer.credit(MAX_CREDIT);
  return { daemon, consumer };
}

export async function runMqttQos0(): Promise<BenchLine[]> {
  const mosquitto = await startMosquitto();
  const arrivals = new Arrivals();
  const publisher = await startPublisher(mosquitto.url);
  const subscriber = await bareSubscriber(mosquitto.url, arrivals);
  const { daemon, consumer } = await daemonWithConsumer(mosquitto.url, arrivals);
  try {
    const idleRss = await rssBytes(daemon.pid, 'VmRSS');
    await run(publisher, arrivals, 'bare/x', WARMUP);
    await run(publisher, arrivals, 'bench/x', WARMUP);
    const bare: RunResult[] = [];
    const through: RunResult[] = [];
    for (let t = 1; t <= TRIALS; t++) {
      bare.push(await run(publisher, arrivals, 'bare/x', N));
      through.push(await run(publisher, arrivals, 'bench/x', N));
      const [b, d] = [bare.at(-1) as RunResult, through.at(-1) as RunResult];
      console.log(
        `mqtt qos0 trial ${t}: bare ${fmtRate(b.rate)} (${b.received}/${N}), daemon ${fmtRate(d.rate)} (${d.received}/${N}); ` +
          `publisher ${fmtRate(b.publishRate)} / ${fmtRate(d.publishRate)}`,
      );
    }
    const rss = await rssBytes(daemon.pid, 'VmHWM');
    const b = median(bare.map((r) => r.rate));
    const d = median(through.map((r) => r.rate));
    const lost = (rs: RunResult[]) => rs.reduce((a, r) => a + (N - r.received), 0);
    console.log(`mqtt qos0: bare ${fmtRate(b)}, daemon ${fmtRate(d)}, ratio ${(d / b).toFixed(3)} (target >= ${TARGET_RATIO}); daemon peak RSS ${fmtMiB(rss)} (${fmtMiB(idleRss)} idle after start)`);
    const lossNote = lost(bare) + lost(through) > 0 ? `; LOST bare ${lost(bare)}, daemon ${lost(through)}` : '';
    return [
      {
        bench: 'mqtt qos0 e2e',
        measured: `${fmtRate(d)} daemon`,
        baseline: `${fmtRate(b)} bare`,
        ratio: d / b,
        note: `${N / 1000}k x 100 B, median of ${TRIALS}, target >= ${TARGET_RATIO}${d / b >= TARGET_RATIO ? ' (met)' : ' (MISSED)'}${lossNote}`,
      },
      { bench: 'daemon peak RSS', measured: fmtMiB(rss), baseline: `${fmtMiB(idleRss)} idle`, note: `VmHWM over ${TRIALS + 1} daemon runs incl. warmup` },
    ];
  } finally {
    await consumer.close();
    await daemon.stop();
    await subscriber.endAsync();
    publisher.stop();
    await mosquitto.stop();
  }
}
