/**
 * Serial end to end, 100-byte lines, through pty pairs (socat,
 * test/helpers/pty.ts), each fed by its own writer process
 * (serial-writer.ts) as fast as the pty takes the lines:
 *  - baseline: serialport's ReadlineParser on the reading end, counting
 *    lines;
 *  - daemon: the pty -> spillway (child process, a serial source with
 *    `lines` framing) -> a SpillwayConsumer acking every batch it gets.
 * Both pairs stay up and the trials alternate. Rate = lines / (first write
 * -> last line received), median of TRIALS. A pty ignores the baud rate.
 *
 * The daemon gets the same roomy ring and budget as in the MQTT bench, so
 * this measures the serial path, not spilling.
 */
import { ReadlineParser, SerialPort } from 'serialport';
import type { SpillwayConsumer } from '../../daemon/client/consumer.js';
import { testConfig } from '../../test/helpers/daemon.js';
import { ptyLinks, removePtyDir, startSocat, type Socat } from '../../test/helpers/pty.js';
import { Arrivals } from './arrivals.js';
import { countingConsumer, MAX_CREDIT } from './bench-consumer.js';
import { nodeArgsFromEnv, startBenchDaemon, type BenchDaemon } from './daemon-child.js';
import { startSerialWriter, type SerialWriter } from './serial-writer.js';
import { fmtRate, median, MiB, now, PAYLOAD_BYTES, type BenchLine } from './stats.js';

const N = Number(process.env['BENCH_SERIAL_N'] ?? 500_000);
const WARMUP = 20_000;
const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 3);
const TARGET_RATIO = 0.8;

interface RunResult {
  readonly rate: number;
  readonly received: number;
  readonly writeRate: number;
}

/** One pty pair and the writer on its peer end; the reading end is opened before the writer starts. */
interface Line {
  readonly socat: Socat;
  writer?: SerialWriter;
}

async function ptyPair(): Promise<Line> {
  return { socat: await startSocat(await ptyLinks()) };
}

async function stopLine(line: Line): Promise<void> {
  line.writer?.stop();
  await line.socat.stop();
  await removePtyDir(line.socat.links);
}

async function run(line: Line, arrivals: Arrivals, n: number): Promise<RunResult> {
  const writer = line.writer as SerialWriter;
  const all = arrivals.expect(n);
  const t0 = now();
  const writeMs = await writer.write(n);
  await arrivals.wait(all);
  return { rate: arrivals.rateSince(t0), received: arrivals.count, writeRate: n / (writeMs / 1000) };
}

/** The baseline: serialport + ReadlineParser, counting lines. */
async function bareReader(path: string, arrivals: Arrivals): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  port.pipe(new ReadlineParser({ delimiter: '\n' })).on('data', () => arrivals.add(1));
  return port;
}

async function daemonOn(path: string, arrivals: Arrivals): Promise<{ daemon: BenchDaemon; consumer: SpillwayConsumer }> {
  const config = testConfig({
    log: { level: 'info' },
    limits: { memoryBudgetBytes: 256 * MiB },
    streamDefaults: { capacityRecords: 1_000_000, capacityBytes: 256 * MiB },
    consumers: { maxCredit: MAX_CREDIT },
    sources: {
      serial: [{ name: 'bench', path, baudRate: 115200, framing: { type: 'lines', maxFrameBytes: 4096 } }],
      mqtt: [],
      embeddedBroker: { enabled: false },
    },
  });
  const daemon = await startBenchDaemon(config, nodeArgsFromEnv());
  return { daemon, consumer: await countingConsumer(daemon.consumerUrl, arrivals) };
}

export async function runSerial(): Promise<BenchLine[]> {
  const arrivals = new Arrivals();
  const bareLine = await ptyPair();
  const daemonLine = await ptyPair();
  let reader: SerialPort | undefined;
  let daemon: BenchDaemon | undefined;
  let consumer: SpillwayConsumer | undefined;
  try {
    reader = await bareReader(bareLine.socat.links.device, arrivals);
    ({ daemon, consumer } = await daemonOn(daemonLine.socat.links.device, arrivals));
    bareLine.writer = await startSerialWriter(bareLine.socat.links.peer);
    daemonLine.writer = await startSerialWriter(daemonLine.socat.links.peer);
    await run(bareLine, arrivals, WARMUP);
    await run(daemonLine, arrivals, WARMUP);
    const bare: RunResult[] = [];
    const through: RunResult[] = [];
    for (let t = 1; t <= TRIALS; t++) {
      bare.push(await run(bareLine, arrivals, N));
      through.push(await run(daemonLine, arrivals, N));
      const [b, d] = [bare.at(-1) as RunResult, through.at(-1) as RunResult];
      console.log(
        `serial trial ${t}: bare ${fmtRate(b.rate)} (${b.received}/${N}), daemon ${fmtRate(d.rate)} (${d.received}/${N}); writer ${fmtRate(b.writeRate)} / ${fmtRate(d.writeRate)}`,
      );
    }
    const b = median(bare.map((r) => r.rate));
    const d = median(through.map((r) => r.rate));
    const lost = (rs: RunResult[]) => rs.reduce((a, r) => a + (N - r.received), 0);
    console.log(`serial: bare ReadlineParser ${fmtRate(b)}, daemon ${fmtRate(d)}, ratio ${(d / b).toFixed(3)} (target >= ${TARGET_RATIO})`);
    const lossNote = lost(bare) + lost(through) > 0 ? `; LOST bare ${lost(bare)}, daemon ${lost(through)}` : '';
    return [
      {
        bench: 'serial e2e',
        measured: `${fmtRate(d)} daemon`,
        baseline: `${fmtRate(b)} readline`,
        ratio: d / b,
        note: `${N / 1000}k x ${PAYLOAD_BYTES} B lines via pty, median of ${TRIALS}, target >= ${TARGET_RATIO}${d / b >= TARGET_RATIO ? ' (met)' : ' (MISSED)'}${lossNote}`,
      },
    ];
  } finally {
    await consumer?.close();
    await daemon?.stop();
    if (reader?.isOpen === true) await new Promise<void>((resolve) => reader?.close(() => resolve()));
    await stopLine(bareLine);
    await stopLine(daemonLine);
  }
}
