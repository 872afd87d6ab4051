/**
 * `npm run bench`: runs each benchmark in turn and prints a summary table.
 * Benchmarks report figures and ratios to a baseline measured in the same
 * run; none asserts a timing.
 *
 *   BENCH_ONLY=core,mqtt     run a subset (names below)
 *   BENCH_TRIALS=3           trials of the alternating benches (median reported)
 *   BENCH_MQTT_N=200000      messages per MQTT QoS 0 trial
 *   BENCH_MQTT1_N=60000      messages per MQTT QoS 1 trial
 *   BENCH_BROKER_N=60000     messages per embedded-broker trial
 *   BENCH_SPOOL_N=500000     records per spill / replay trial
 *   BENCH_DURABLE_N=50000    records per durable-mode trial
 *   BENCH_COMMIT_N=20000     messages per group-commit trial (20 sensors)
 *   BENCH_COMMIT_BARE_N=2000 rows of the bare FULL autocommit baseline
 *   BENCH_COMMIT_WINDOW=1    PUBACKs each group-commit sensor waits for at once
 *   BENCH_STALL_N=500000     records per event-loop stall trial
 *   BENCH_RSS_N=1000000      messages into the spool for the RSS bench
 *   BENCH_SERIAL_N=500000    lines per serial trial
 *   BENCH_UPSTREAM_N=100000  messages per MQTT upstream trial
 *   BENCH_DIAL_N=200000      records per dial / listen trial
 *   BENCH_IDLE_S=60          idle window of the footprint bench
 *   BENCH_SKIP_INSTALL=1     install-size: skip `npm ci`, report dist/ only
 *   SPILLWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"
 *                            extra node flags for the daemon child
 */
import { runCore } from './bench/core.js';
import { runDial } from './bench/dial.js';
import { runDurable } from './bench/durable.js';
import { runEmbeddedBroker } from './bench/embedded-broker.js';
import { runFootprint } from './bench/footprint.js';
import { runGroupCommit } from './bench/group-commit.js';
import { runGroups } from './bench/groups.js';
import { runInstallSize } from './bench/install-size.js';
import { runMqtt } from './bench/mqtt-e2e.js';
import { runSerial } from './bench/serial.js';
import { runSpool } from './bench/spool.js';
import { runSpoolRss } from './bench/spool-rss.js';
import { runStall } from './bench/stall.js';
import { now, printTable, type BenchLine } from './bench/stats.js';
import { runUpstreamMqtt } from './bench/upstream-mqtt.js';

const BENCHES: ReadonlyArray<{ name: string; run: () => Promise<BenchLine[]> }> = [
  { name: 'core', run: runCore },
  /** spill into the SQLite spool, then replay it (replay needs the spill). */
  { name: 'spool', run: runSpool },
  /** three groups against one (throughput per group, heap per record), spill and replay with two. */
  { name: 'groups', run: runGroups },
  { name: 'durable', run: runDurable },
  /** durable mode's group commit: 20 QoS 1 sensors on the embedded broker, full / normal / memory. */
  { name: 'group-commit', run: runGroupCommit },
  { name: 'stall', run: runStall },
  { name: 'mqtt', run: () => runMqtt(0) },
  { name: 'mqtt1', run: () => runMqtt(1) },
  /** the embedded broker taking publishes in process vs a bare aedes broker with a bare subscriber (20 QoS 1 publishers). */
  { name: 'broker', run: runEmbeddedBroker },
  { name: 'serial', run: runSerial },
  /** 1M records into the spool of a daemon with a 16 MiB budget. */
  { name: 'rss', run: runSpoolRss },
  /** the daemon publishing QoS 1 to a broker (upstreams.mqtt) vs a bare QoS 1 publisher. */
  { name: 'upstream-mqtt', run: runUpstreamMqtt },
  /** consumers.dial vs listen mode. */
  { name: 'dial', run: runDial },
  /** idle RSS / CPU / time to ready, default and small-heap node flags. */
  { name: 'footprint', run: runFootprint },
  /** npm ci --omit=dev + dist/. */
  { name: 'install-size', run: runInstallSize },
];

async function main(): Promise<void> {
  const only = process.env['BENCH_ONLY']?.split(',');
  const unknown = only?.filter((name) => !BENCHES.some((b) => b.name === name)) ?? [];
  if (unknown.length > 0) throw new Error(`BENCH_ONLY: no bench named ${unknown.join(', ')} (one of ${BENCHES.map((b) => b.name).join(', ')})`);
  const lines: BenchLine[] = [];
  for (const b of BENCHES) {
    if (only !== undefined && !only.includes(b.name)) continue;
    console.log(`== ${b.name}`);
    const t0 = now();
    lines.push(...(await b.run()));
    console.log(`(${b.name}: ${((now() - t0) / 1000).toFixed(1)} s)`);
  }
  console.log(`\n== summary (node ${process.version}, ${process.arch})`);
  printTable(lines);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
