/**
 * The daemon under benchmark as a child process. Without extra node flags it
 * is the test helper's `startDaemon`; with SPILLWAY_NODE_ARGS (say
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`) it is spawned here with those flags
 * before the CLI, since the helper always runs plain `node CLI run`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CLI, parseMetrics, startDaemon, type Metrics } from '../../test/helpers/daemon.js';

export interface BenchDaemon {
  readonly pid: number;
  readonly consumerUrl: string;
  readonly adminUrl: string;
  /** Scrapes /metrics. */
  metrics(): Promise<Metrics>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

const READY_TIMEOUT_MS = 20_000;

export function nodeArgsFromEnv(): string[] {
  return (process.env['SPILLWAY_NODE_ARGS'] ?? '').split(/\s+/).filter((a) => a !== '');
}

export async function startBenchDaemon(config: Record<string, unknown>, nodeArgs: readonly string[]): Promise<BenchDaemon> {
  if (nodeArgs.length === 0) {
    const d = await startDaemon(config);
    return { pid: d.child.pid as number, consumerUrl: d.consumerUrl, adminUrl: d.adminUrl, metrics: () => d.metrics(), stop: () => d.stop() };
  }
  const dir = await mkdtemp(join(tmpdir(), 'spillway-bench-'));
  const file = join(dir, 'spillway.json');
  await writeFile(file, JSON.stringify({ dataDir: join(dir, 'var'), ...config }, null, 2));
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'run', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('daemon not ready in time')), READY_TIMEOUT_MS);
    void exited.then((code) => reject(new Error(`daemon exited (${code}) before ready`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = parseLine(line);
      if (entry?.['event'] !== 'ready') return;
      clearTimeout(timer);
      resolve(entry);
    });
  });
  const adminUrl = String(ready['admin']);
  return {
    pid: child.pid as number,
    consumerUrl: String(ready['consumers']),
    adminUrl,
    metrics: async () => parseMetrics(await (await fetch(`${adminUrl}/metrics`)).text()),
    stop: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined; // not a log line (a warning from node, say): ignored
  }
}
