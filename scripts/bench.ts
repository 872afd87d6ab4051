/**
 * `npm run bench`: runs each benchmark in turn and prints a summary table.
 * Benchmarks report figures and ratios to a baseline measured in the same
 * run; none asserts a timing.
 *
 *   BENCH_ONLY=core,mqtt     run a subset (names below)
 *   BENCH_MQTT_N=200000      messages per MQTT trial
 *   BENCH_TRIALS=3           MQTT trials (median reported)
 *   SPILLWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"
 *                            extra node flags for the daemon child
 */
import { runCore } from './bench/core.js';
import { runMqttQos0 } from './bench/mqtt-qos0.js';
import { printTable, type BenchLine } from './bench/stats.js';

const BENCHES: ReadonlyArray<{ name: string; run: () => Promise<BenchLine[]> }> = [
  { name: 'core', run: runCore },
  { name: 'mqtt', run: runMqttQos0 },
];

async function main(): Promise<void> {
  const only = process.env['BENCH_ONLY']?.split(',');
  const lines: BenchLine[] = [];
  for (const b of BENCHES) {
    if (only !== undefined && !only.includes(b.name)) continue;
    console.log(`== ${b.name}`);
    lines.push(...(await b.run()));
  }
  console.log(`\n== summary (node ${process.version}, ${process.arch})`);
  printTable(lines);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
