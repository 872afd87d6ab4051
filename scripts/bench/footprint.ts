/**
 * The idle footprint of the daemon on a default-like config: the embedded
 * broker on (a free port, taking publishes in process), consumers and admin on port 0, no traffic. Reports the time from spawn to
 * the `ready` log line, RSS right after ready and after BENCH_IDLE_S (60)
 * seconds idle, and the CPU it used (utime + stime from /proc/<pid>/stat,
 * as % of one core) over the first BENCH_SETTLE_S (20) seconds after ready
 * (V8's post-start GCs) and, idle, over the BENCH_IDLE_S after those. Done twice: with node's default heap
 * settings (plus SPILLWAY_NODE_ARGS) and with the node flags of
 * systemd/spillway.service (as installed).
 */
import { createServer, type AddressInfo } from 'node:net';
import { testConfig } from '../../test/helpers/daemon.js';
import { nodeArgsFromEnv, startBenchDaemon } from './daemon-child.js';
import { CLK_TCK, cpuSeconds, fmtMiB, fmtMs, MiB, now, rssBytes, type BenchLine } from './stats.js';
import { unitNodeArgs } from './unit-flags.js';

const IDLE_S = Number(process.env['BENCH_IDLE_S'] ?? 60);
const SETTLE_S = Number(process.env['BENCH_SETTLE_S'] ?? 20);
const TARGET_RSS = 60 * MiB;
const TARGET_CPU_PCT = 0.1;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

interface Footprint {
  readonly readyMs: number;
  readonly rssStart: number;
  readonly rssIdle: number;
  readonly hwm: number;
  readonly cpuPct: number;
  /** Over the first SETTLE_S seconds after ready. */
  readonly settleCpuPct: number;
}

async function measure(nodeArgs: readonly string[]): Promise<Footprint> {
  const port = await freePort();
  const config = testConfig({
    sources: {
      embeddedBroker: { enabled: true, host: '127.0.0.1', port, subscriptions: [{ topic: '#', stream: 'default' }] },
    },
  });
  const t0 = now();
  const daemon = await startBenchDaemon(config, nodeArgs);
  const readyMs = now() - t0;
  try {
    const rssStart = await rssBytes(daemon.pid, 'VmRSS');
    const s0 = await cpuSeconds(daemon.pid);
    const t1 = now();
    await new Promise((resolve) => setTimeout(resolve, SETTLE_S * 1000));
    const cpu0 = await cpuSeconds(daemon.pid);
    const settleCpuPct = ((cpu0 - s0) / ((now() - t1) / 1000)) * 100;
    const w0 = now();
    await new Promise((resolve) => setTimeout(resolve, IDLE_S * 1000));
    const cpu1 = await cpuSeconds(daemon.pid);
    const cpuPct = ((cpu1 - cpu0) / ((now() - w0) / 1000)) * 100;
    return { readyMs, rssStart, rssIdle: await rssBytes(daemon.pid, 'VmRSS'), hwm: await rssBytes(daemon.pid, 'VmHWM'), cpuPct, settleCpuPct };
  } finally {
    await daemon.stop();
  }
}

export async function runFootprint(): Promise<BenchLine[]> {
  const lines: BenchLine[] = [];
  const variants: Array<[string, string[]]> = [
    ['default heap', nodeArgsFromEnv()],
    [`unit: ${unitNodeArgs().join(' ')}`, [...nodeArgsFromEnv(), ...unitNodeArgs()]],
  ];
  for (const [label, args] of variants) {
    const f = await measure(args);
    const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
    console.log(
      `footprint (${label}): ready in ${fmtMs(f.readyMs)}; RSS ${fmtMiB(f.rssStart)} after start, ${fmtMiB(f.rssIdle)} after ${SETTLE_S + IDLE_S} s idle ` +
        `(peak ${fmtMiB(f.hwm)}, target <= ${fmtMiB(TARGET_RSS)}: ${met(f.rssIdle <= TARGET_RSS)}); CPU ${f.settleCpuPct.toFixed(3)} % of a core over the first ${SETTLE_S} s, then ${f.cpuPct.toFixed(3)} % over ${IDLE_S} s ` +
        `(target <= ${TARGET_CPU_PCT} %: ${met(f.cpuPct <= TARGET_CPU_PCT)}; resolution ${((100 / CLK_TCK / IDLE_S)).toFixed(3)} %)`,
    );
    lines.push(
      { bench: `idle RSS (${label})`, measured: fmtMiB(f.rssIdle), baseline: `${fmtMiB(f.rssStart)} at start`, note: `after ${SETTLE_S + IDLE_S} s idle, peak ${fmtMiB(f.hwm)}, target <= ${fmtMiB(TARGET_RSS)} (${met(f.rssIdle <= TARGET_RSS)})` },
      { bench: `idle CPU (${label})`, measured: `${f.cpuPct.toFixed(3)} %`, baseline: `${f.settleCpuPct.toFixed(3)} % first ${SETTLE_S} s`, note: `of one core over ${IDLE_S} s after ${SETTLE_S} s to settle, target <= ${TARGET_CPU_PCT} % (${met(f.cpuPct <= TARGET_CPU_PCT)})` },
      { bench: `spawn -> ready (${label})`, measured: fmtMs(f.readyMs), baseline: '-', note: 'embedded broker (in process)' },
    );
  }
  return lines;
}
