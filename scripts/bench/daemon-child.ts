/**
 * The daemon under benchmark as a child process. Without extra node flags or
 * environment it is the test helper's `startDaemon`; with node flags (from
 * SPILLWAY_NODE_ARGS, say `--cpu-prof --cpu-prof-dir=/tmp/prof`, or a
 * bench's `--import` preload) or extra environment it is spawned here, its
 * stderr passed through so node's own messages are seen.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { CLI, parseMetrics, startDaemon, type Metrics } from '../../test/helpers/daemon.js';

export interface BenchDaemon {
  readonly pid: number;
  readonly consumerUrl: string;
  readonly adminUrl: string;
  /** Scrapes /metrics. */
  metrics(): Promise<Metrics>;
  /** SIGTERM; resolves with the exit code once the daemon exited and its temp dir (config, spool) is removed. */
  stop(): Promise<number | null>;
}

const READY_TIMEOUT_MS = 20_000;

export function nodeArgsFromEnv(): string[] {
  return (process.env['SPILLWAY_NODE_ARGS'] ?? '').split(/\s+/).filter((a) => a !== '');
}

export async function startBenchDaemon(config: Record<string, unknown>, nodeArgs: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<BenchDaemon> {
  if (nodeArgs.length === 0 && Object.keys(env).length === 0) {
    const d = await startDaemon(config);
    const stop = async () => {
      const code = await d.stop();
      await rm(dirname(d.dataDir), { recursive: true, force: true }); // the helper's temp dir: config file and dataDir
      return code;
    };
    return { pid: d.child.pid as number, consumerUrl: d.consumerUrl, adminUrl: d.adminUrl, metrics: () => d.metrics(), stop };
  }
  const dir = await mkdtemp(join(tmpdir(), 'spillway-bench-'));
  const file = join(dir, 'spillway.json');
  await writeFile(file, JSON.stringify({ dataDir: join(dir, 'var'), ...config }, null, 2), { mode: 0o600 });
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'run', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
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
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await exited;
      await rm(dir, { recursive: true, force: true });
      return code;
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
