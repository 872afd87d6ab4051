/**
 * The daemon as a real child process: compiled `dist/daemon/cli.js run`,
 * its config written to a temp file, its JSON log lines collected, its
 * addresses read from the `ready` line (tests listen on port 0).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';
import { makeTempDir } from './tmp.js';

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'daemon', 'cli.js');

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly event?: string;
  readonly [key: string]: unknown;
}

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  /** The log lines as written (JSON.parse would hide a repeated key). */
  readonly rawLogs: string[];
  readonly consumerUrl: string;
  readonly adminUrl: string;
  readonly brokerUrl: string | undefined;
  readonly dataDir: string;
  /** The config file it was started with (rewrite it and send SIGHUP to reload). */
  readonly configFile: string;
  metrics(): Promise<Metrics>;
  health(): Promise<{ status: number; body: Record<string, unknown> }>;
  waitForLog(pred: (l: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** A config for tests: loopback, port 0 everywhere, no embedded broker unless asked. */
export function testConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    log: { level: 'info' },
    sources: { embeddedBroker: { enabled: false }, mqtt: [] },
    consumers: { listen: { port: 0 } },
    admin: { port: 0 },
    shutdown: { drainTimeoutMs: 2_000 },
  };
  return deepMerge(base, overrides);
}

export interface StartOptions {
  /** Reuse a data directory (a restart); default: a fresh temp dir. */
  readonly dataDir?: string;
  /** Extra arguments for node (before the script). */
  readonly nodeArgs?: readonly string[];
  /** A command prefix, e.g. ['bash', '-c', 'ulimit -f 64; exec "$@"', '--'] to run under limits. */
  readonly wrapper?: readonly string[];
  /** Another build's cli.js (an installed tree); default: this tree's. */
  readonly cli?: string;
}

export async function startDaemon(config: Record<string, unknown>, opts: StartOptions = {}): Promise<DaemonProcess> {
  const dir = await makeTempDir('test');
  const file = join(dir, 'spillway.yaml');
  const dataDir = opts.dataDir ?? join(dir, 'var');
  await writeFile(file, JSON.stringify({ dataDir, ...config }, null, 2), { mode: 0o600 });
  const argv = [...(opts.nodeArgs ?? []), opts.cli ?? CLI, 'run', '--config', file];
  const [cmd, ...pre] = opts.wrapper === undefined ? [process.execPath] : [...opts.wrapper, process.execPath];
  const child = spawn(cmd as string, [...pre, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  const rawLogs: string[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    rawLogs.push(line);
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      logs.push({ level: 0, msg: line });
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitForLog = (pred: (l: LogLine) => boolean, what: string, timeoutMs = 10_000) =>
    waitFor(() => {
      if (child.exitCode !== null && !logs.some(pred)) throw new Error(`daemon exited ${child.exitCode}; stderr: ${stderr}; logs: ${JSON.stringify(logs.slice(-5))}`);
      return logs.find(pred);
    }, what, timeoutMs);

  const ready = await waitForLog((l) => l.event === 'ready', 'the daemon to be ready', 20_000);
  const adminUrl = String(ready['admin']);
  return {
    child,
    logs,
    rawLogs,
    consumerUrl: String(ready['consumers']),
    adminUrl,
    brokerUrl: ready['broker'] === undefined ? undefined : String(ready['broker']),
    dataDir,
    configFile: file,
    metrics: async () => parseMetrics(await (await fetch(`${adminUrl}/metrics`)).text()),
    health: async () => {
      const res = await fetch(`${adminUrl}/healthz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    waitForLog,
    stop: (signal) => stop(child, exited, signal),
    exited,
  };
}

async function stop(child: ChildProcess, exited: Promise<number | null>, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  return exited;
}

export class Metrics {
  readonly samples: ReadonlyArray<{ name: string; labels: Record<string, string>; value: number }>;

  constructor(samples: Metrics['samples']) {
    this.samples = samples;
  }

  /** Sum of a metric over the samples whose labels match `where`. */
  sum(name: string, where: Record<string, string> = {}): number {
    return this.samples
      .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
      .reduce((a, s) => a + s.value, 0);
  }

  /** recovered + ingested - (acked + dropped + buffered + spooled + inflight): 0 when conserved. */
  imbalance(): number {
    const m = (n: string) => this.sum(n);
    return (
      m('spillway_records_recovered_total') +
      m('spillway_records_ingested_total') -
      (m('spillway_records_acked_total') + m('spillway_records_dropped_total') + m('spillway_buffer_records') + m('spillway_spool_records') + m('spillway_inflight_records'))
    );
  }
}

export function parseMetrics(text: string): Metrics {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k as string] = (v as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return new Metrics(samples);
}

export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const av = out[k];
    out[k] = isPlain(av) && isPlain(v) ? deepMerge(av, v) : v;
  }
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
