/**
 * A daemon child's own event-loop delay, as loop-delay-preload.ts records it
 * (one line per window): the file to pass, and a summary of the windows
 * within a time range (max, and p99 from the windows' distributions merged
 * by their sample counts).
 */
import { readFile } from 'node:fs/promises';

export const LOOP_DELAY_FILE_ENV = 'SPILLWAY_BENCH_LOOP_DELAY_FILE';
/** How often the preload writes a window. */
export const LOOP_WINDOW_MS = 500;

/** The `--import` flag that loads the preload into a daemon child. */
export function loopDelayNodeArgs(): string[] {
  return ['--import', new URL('./loop-delay-preload.js', import.meta.url).href];
}

export interface LoopDelayWindow {
  /** Date.now() when the window was written. */
  readonly at: number;
  /** Delays sampled in the window. */
  readonly count: number;
  readonly maxMs: number;
  /** [percentile, ms] pairs, ascending: the window's distribution. */
  readonly percentiles: ReadonlyArray<readonly [number, number]>;
}

export interface LoopDelay {
  readonly windows: number;
  readonly maxMs: number;
  readonly p99Ms: number;
}

export async function readLoopDelay(file: string): Promise<LoopDelayWindow[]> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LoopDelayWindow);
}

/** Windows written in [from, to] (Date.now() values); undefined when there are none. */
export function summarize(all: readonly LoopDelayWindow[], from: number, to: number): LoopDelay | undefined {
  const ws = all.filter((w) => w.at >= from && w.at <= to);
  if (ws.length === 0) return undefined;
  return { windows: ws.length, maxMs: Math.max(...ws.map((w) => w.maxMs)), p99Ms: mergedPercentile(ws, 99) };
}

/** The smallest delay at or below which `p` % of all samples of the windows fall. */
function mergedPercentile(ws: readonly LoopDelayWindow[], p: number): number {
  const total = ws.reduce((a, w) => a + w.count, 0);
  // Share of a window's samples at or below `ms`, from its percentile points.
  const below = (w: LoopDelayWindow, ms: number) => {
    let share = 0;
    for (const [pct, v] of w.percentiles) if (v <= ms) share = pct / 100;
    return share;
  };
  const candidates = [...new Set(ws.flatMap((w) => w.percentiles.map(([, v]) => v)))].sort((a, b) => a - b);
  for (const ms of candidates) {
    if (ws.reduce((a, w) => a + w.count * below(w, ms), 0) >= (p / 100) * total) return ms;
  }
  return Math.max(...ws.map((w) => w.maxMs));
}
