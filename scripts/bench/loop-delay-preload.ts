/**
 * Preloaded into a daemon child (`node --import`, see loop-delay.ts) to
 * measure the daemon's own event-loop delay, which the daemon does not
 * expose. With SPILLWAY_BENCH_LOOP_DELAY_FILE set, the main thread runs
 * `monitorEventLoopDelay({ resolution: 1 })` and every LOOP_WINDOW_MS appends one
 * JSON line (a `LoopDelayWindow`) to that file, then starts a fresh
 * histogram. A window that holds a stall is written late, when the loop
 * runs again; its delays are still counted. Without the variable, or in a
 * worker thread, it does nothing.
 */
import { appendFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import { LOOP_DELAY_FILE_ENV, LOOP_WINDOW_MS, type LoopDelayWindow } from './loop-delay.js';

const file = process.env[LOOP_DELAY_FILE_ENV];
if (file !== undefined && isMainThread) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  setInterval(() => {
    if (h.count === 0) return;
    const w: LoopDelayWindow = { at: Date.now(), count: h.count, maxMs: h.max / 1e6, percentiles: [...h.percentiles].map(([p, ns]) => [p, ns / 1e6] as const) };
    appendFileSync(file, `${JSON.stringify(w)}\n`);
    h.reset();
  }, LOOP_WINDOW_MS).unref();
}
