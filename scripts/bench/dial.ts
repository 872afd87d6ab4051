/**
 * Dial mode against listen mode, 100-byte payloads fed at QoS 0 through
 * Mosquitto by the bench publisher (mqtt-publisher.ts):
 *  - listen: a daemon subscribed to `listen/#`, read by the bench's
 *    SpillwayConsumer (bench-consumer.ts);
 *  - dial: a second daemon subscribed to `dial/#` with `consumers.dial`
 *    pointing at an upstream served here, which plays the consumer: it says
 *    hello, grants MAX_CREDIT, and acks every batch it gets (one `ack`, one
 *    `credit` per batch), as the SpillwayConsumer does.
 * Both daemons stay up and the trials alternate. Rate = records / (first
 * publish -> last record received), median of TRIALS.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { WireRecord } from '../../daemon/client/consumer.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { testConfig } from '../../test/helpers/daemon.js';
import { Arrivals } from './arrivals.js';
import { countingConsumer, MAX_CREDIT } from './bench-consumer.js';
import { nodeArgsFromEnv, startBenchDaemon } from './daemon-child.js';
import { startPublisher, type Publisher } from './mqtt-publisher.js';
import { fmtRate, median, MiB, now, type BenchLine } from './stats.js';

const N = Number(process.env['BENCH_DIAL_N'] ?? 200_000);
const WARMUP = 20_000;
const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 3);

interface RunResult {
  readonly rate: number;
  readonly received: number;
}

async function run(publisher: Publisher, arrivals: Arrivals, topic: string, n: number): Promise<RunResult> {
  const all = arrivals.expect(n);
  const t0 = now();
  await publisher.publish(topic, n, 0);
  await arrivals.wait(all);
  return { rate: arrivals.rateSince(t0), received: arrivals.count };
}

interface BenchUpstream {
  readonly url: string;
  /** Resolves once a dialled connection was welcomed and granted credit. */
  readonly welcomed: Promise<void>;
  close(): Promise<void>;
}

/** The upstream that plays the consumer of a dialling daemon. */
async function benchUpstream(arrivals: Arrivals): Promise<BenchUpstream> {
  const server = createServer();
  const wss = new WebSocketServer({ server, handleProtocols: (p) => (p.has('spillway.v1') ? 'spillway.v1' : false) });
  let onWelcome: () => void = () => undefined;
  const welcomed = new Promise<void>((resolve) => (onWelcome = resolve));
  wss.on('connection', (ws) => {
    ws.on('error', () => undefined);
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as { type: string; records?: WireRecord[] };
      if (msg.type === 'records' && msg.records !== undefined) {
        const records = msg.records;
        ws.send(JSON.stringify({ type: 'ack', seqs: records.map((r) => r.seq) }));
        ws.send(JSON.stringify({ type: 'credit', n: records.length }));
        arrivals.add(records.length);
      } else if (msg.type === 'welcome') {
        ws.send(JSON.stringify({ type: 'credit', n: MAX_CREDIT }));
        onWelcome();
      }
    });
    ws.send(JSON.stringify({ type: 'hello', v: 1, consumer: 'bench-upstream' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/v1/upstream`,
    welcomed,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function runDial(): Promise<BenchLine[]> {
  const mosquitto = await startMosquitto();
  const arrivals = new Arrivals();
  const publisher = await startPublisher(mosquitto.url);
  const upstream = await benchUpstream(arrivals);
  const config = (topic: string, consumers: Record<string, unknown>) =>
    testConfig({
      log: { level: 'info' },
      limits: { memoryBudgetBytes: 256 * MiB },
      streamDefaults: { capacityRecords: 1_000_000, capacityBytes: 256 * MiB },
      consumers: { maxCredit: MAX_CREDIT, ...consumers },
      sources: { embeddedBroker: { enabled: false }, mqtt: [{ url: mosquitto.url, subscriptions: [{ topic, qos: 0, stream: 'bench' }] }] },
    });
  const listenDaemon = await startBenchDaemon(config('listen/#', {}), nodeArgsFromEnv());
  const dialDaemon = await startBenchDaemon(config('dial/#', { dial: [{ url: upstream.url }] }), nodeArgsFromEnv());
  const consumer = await countingConsumer(listenDaemon.consumerUrl, arrivals);
  try {
    await upstream.welcomed;
    await run(publisher, arrivals, 'listen/x', WARMUP);
    await run(publisher, arrivals, 'dial/x', WARMUP);
    const listen: RunResult[] = [];
    const dial: RunResult[] = [];
    for (let t = 1; t <= TRIALS; t++) {
      listen.push(await run(publisher, arrivals, 'listen/x', N));
      dial.push(await run(publisher, arrivals, 'dial/x', N));
      const [l, d] = [listen.at(-1) as RunResult, dial.at(-1) as RunResult];
      console.log(`dial trial ${t}: listen ${fmtRate(l.rate)} (${l.received}/${N}), dial ${fmtRate(d.rate)} (${d.received}/${N})`);
    }
    const l = median(listen.map((r) => r.rate));
    const d = median(dial.map((r) => r.rate));
    const lost = (rs: RunResult[]) => rs.reduce((a, r) => a + (N - r.received), 0);
    console.log(`dial: listen ${fmtRate(l)}, dial ${fmtRate(d)}, ratio ${(d / l).toFixed(3)}`);
    const lossNote = lost(listen) + lost(dial) > 0 ? `; LOST listen ${lost(listen)}, dial ${lost(dial)}` : '';
    return [{ bench: 'ws dial vs listen', measured: `${fmtRate(d)} dial`, baseline: `${fmtRate(l)} listen`, ratio: d / l, note: `${N / 1000}k x 100 B via MQTT QoS 0, median of ${TRIALS}${lossNote}` }];
  } finally {
    await consumer.close();
    await listenDaemon.stop();
    await dialDaemon.stop();
    await upstream.close();
    publisher.stop();
    await mosquitto.stop();
  }
}
