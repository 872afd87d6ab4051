/**
 * Small shared pieces of the benchmarks: the payload, the clock, the median of trials,
 * number formatting, a process's RSS and CPU time, and the summary table. Nothing
 * here asserts a timing: benches report figures and ratios to a baseline
 * measured in the same run.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

export const MiB = 1024 * 1024;

/** Every bench moves 100-byte payloads. */
export const PAYLOAD_BYTES = 100;

/** A 100-byte ASCII payload (valid UTF-8, like most telemetry). */
export function payloadTemplate(): Buffer {
  return Buffer.alloc(PAYLOAD_BYTES, 'spillway-bench-');
}

/** One row of the summary table. */
export interface BenchLine {
  readonly bench: string;
  readonly measured: string;
  readonly baseline: string;
  /** measured / baseline, where the two are comparable. */
  readonly ratio?: number;
  readonly note: string;
}

export const now = (): number => performance.now();

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** 81234.5 -> "81.2k/s" */
export function fmtRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k/s`;
  return `${perSecond.toFixed(0)}/s`;
}

export function fmtMiB(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** Resident set now (`VmRSS`) or at its peak (`VmHWM`) of a live process, in bytes; Linux only. */
export async function rssBytes(pid: number, which: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${which}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (m === null) throw new Error(`no ${which} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

export function printTable(lines: readonly BenchLine[]): void {
  const header = ['bench', 'measured', 'baseline', 'ratio', 'note'];
  const rows = lines.map((l) => [l.bench, l.measured, l.baseline, l.ratio === undefined ? '-' : l.ratio.toFixed(3), l.note]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const fmt = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  console.log(fmt(header));
  console.log(fmt(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(fmt(r));
}

/** `n` distinct copies of the payload (a power of two, so `i & (n - 1)` cycles through them). */
export function distinctPayloads(n = 1_024): Buffer[] {
  const template = payloadTemplate();
  return Array.from({ length: n }, () => Buffer.from(template));
}

/** Milliseconds as "12.3 ms". */
export function fmtMs(ms: number): string {
  return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

/** Clock ticks per second of /proc/<pid>/stat times. */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in seconds. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // fields 14 and 15
}
