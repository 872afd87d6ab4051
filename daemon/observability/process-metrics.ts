/**
 * The process as the unit's `MemoryMax` and an operator see it, for
 * `/metrics`: resident memory, V8 heap used and total, memory outside the
 * heap (Buffers: payloads), CPU seconds, open file descriptors, and the
 * event-loop delay over a rolling window.
 *
 * The loop delay is read from `monitorEventLoopDelay` (200 ms resolution)
 * into windows of WINDOW_MS; the figures cover the last WINDOWS of them plus
 * the current one (about a minute). A scrape reads them and resets nothing,
 * so any number of scrapers see the same figures. The histogram's timer
 * runs only while the daemon has work (`busy`): an idle daemon wakes for
 * it five times a second otherwise, two thirds of its idle wakeups.
 */
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** One window of loop-delay figures, and how many the rolling window keeps. */
export const LOOP_WINDOW_MS = 10_000;
export const LOOP_WINDOWS = 6;

export interface LoopDelayFigures {
  /** Seconds: the longest stall, and the largest per-window 99th percentile, over the rolling window. */
  readonly maxSeconds: number;
  readonly p99Seconds: number;
  /** Seconds the figures cover. */
  readonly windowSeconds: number;
  /** The delay is being measured now (the daemon has work; see `busy`). */
  readonly measuring: boolean;
}

/** Event-loop delay over a rolling window of about LOOP_WINDOW_MS × LOOP_WINDOWS. */
export class LoopDelayWindow {
  readonly #hist: IntervalHistogram;
  readonly #windows: Array<{ max: number; p99: number }> = [];
  #timer: NodeJS.Timeout | undefined;
  #measuring = false;

  constructor(resolutionMs = 200) {
    this.#hist = monitorEventLoopDelay({ resolution: resolutionMs });
  }

  start(): void {
    this.busy(true);
    this.#timer = setInterval(() => this.#roll(), LOOP_WINDOW_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.busy(false);
  }

  /** Measures while the daemon has work (records held or moving); idle, the histogram's timer stops. */
  busy(yes: boolean): void {
    if (yes === this.#measuring) return;
    this.#measuring = yes;
    if (yes) this.#hist.enable();
    else this.#hist.disable();
  }

  figures(): LoopDelayFigures {
    // An empty histogram reports max 0 and percentiles 0 (count 0): no stall seen.
    const current = this.#hist.count > 0 ? { max: this.#hist.max, p99: this.#hist.percentile(99) } : { max: 0, p99: 0 };
    let max = current.max;
    let p99 = current.p99;
    for (const w of this.#windows) {
      max = Math.max(max, w.max);
      p99 = Math.max(p99, w.p99);
    }
    return { maxSeconds: max / 1e9, p99Seconds: p99 / 1e9, windowSeconds: ((this.#windows.length + 1) * LOOP_WINDOW_MS) / 1_000, measuring: this.#measuring };
  }

  #roll(): void {
    this.#windows.push(this.#hist.count > 0 ? { max: this.#hist.max, p99: this.#hist.percentile(99) } : { max: 0, p99: 0 });
    if (this.#windows.length > LOOP_WINDOWS) this.#windows.shift();
    this.#hist.reset();
  }
}

export interface ProcessFigures {
  readonly residentBytes: number;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  readonly externalBytes: number;
  readonly cpuSeconds: number;
  /** null where /proc/self/fd cannot be read (not Linux). */
  readonly openFds: number | null;
}

export function processFigures(): ProcessFigures {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    residentBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    heapTotalBytes: mem.heapTotal,
    externalBytes: mem.external,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    openFds: openFds(),
  };
}

function openFds(): number | null {
  try {
    // The listing itself holds one descriptor open on the directory while it reads.
    return Math.max(0, readdirSync('/proc/self/fd').length - 1);
  } catch {
    return null;
  }
}

/** The Prometheus lines for the process figures and the loop delay. */
export function renderProcessMetrics(out: string[], loop: LoopDelayFigures | undefined, p: ProcessFigures = processFigures()): void {
  const line = (name: string, type: string, help: string, value: number) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
  line('spillway_process_resident_memory_bytes', 'gauge', 'Resident set size of the daemon (what MemoryMax bounds).', p.residentBytes);
  line('spillway_process_heap_used_bytes', 'gauge', 'V8 heap in use.', p.heapUsedBytes);
  line('spillway_process_heap_total_bytes', 'gauge', 'V8 heap allocated (its limit is node --max-old-space-size).', p.heapTotalBytes);
  line('spillway_process_external_memory_bytes', 'gauge', 'Memory held outside the V8 heap by JavaScript objects (Buffers: payloads).', p.externalBytes);
  line('spillway_process_cpu_seconds_total', 'counter', 'User and system CPU time spent.', p.cpuSeconds);
  if (p.openFds !== null) line('spillway_process_open_fds', 'gauge', 'Open file descriptors.', p.openFds);
  if (loop !== undefined) {
    line('spillway_event_loop_delay_max_seconds', 'gauge', `Longest event-loop stall over the last ${LOOP_WINDOW_MS * LOOP_WINDOWS / 1_000}-${LOOP_WINDOW_MS * (LOOP_WINDOWS + 1) / 1_000} s (not reset by a scrape).`, loop.maxSeconds);
    line('spillway_event_loop_delay_p99_seconds', 'gauge', `Largest 99th percentile of event-loop delay of a ${LOOP_WINDOW_MS / 1_000} s window over the same span (not reset by a scrape).`, loop.p99Seconds);
    line('spillway_event_loop_delay_measuring', 'gauge', '1 while the loop delay is measured: records are held, or were ingested or acked in the last second (an idle daemon does not wake for it).', loop.measuring ? 1 : 0);
  }
}
