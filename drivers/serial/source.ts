/**
 * A serial port source: reads one port through serialport, cuts its bytes
 * into frames (drivers/serial/framing) and offers each frame as a record of
 * the port's stream.
 *
 *   opening ──ok──► open ──'close' / 'error' (unplug)──┐
 *     ▲   └──failed──┐                                   │
 *     └── backoff timer (capped, jittered) ◄─────────────┘
 *
 * A missing device never fails the daemon: `start` resolves either way, the
 * health says why the port is down, and the source reopens it after a capped
 * exponential backoff with jitter (`reconnect`), reset by a successful open.
 *
 * Backpressure (the `block` policy): when ingest answers `blocked` the frame
 * was not taken. The source keeps it, with the frames behind it from the same
 * read, pauses the port, and offers them again, oldest first, on `resume()`;
 * it reads on only once all are taken (the daemon calls `resume()` when the
 * stream has room). Held frames come from one read, so they total at most
 * READ_BUFFER_BYTES plus one partial frame; the paused port stream reads
 * ahead at most READ_BUFFER_BYTES more; the rest waits in the kernel and the
 * device (which RTS/CTS, with `rtscts`, stops).
 */
import { existsSync } from 'node:fs';
// The package's ESM entry has no types beside it; its CommonJS entry does.
import type { BindingInterface } from '@serialport/bindings-interface' with { 'resolution-mode': 'require' };
import type { SerialPortStream } from '@serialport/stream';
import type { Driver, DriverContext, SourceHealth } from '../driver.js';
import { backoffDelay } from '../../daemon/backoff.js';
import { streamOf, type SerialPortConfig } from './config.js';
import { createFramer } from './framing/create-framer.js';
import type { Framer } from './framing/framer.js';
import { LogBudget } from './log-budget.js';

/** The port stream's read size and buffer (its highWaterMark). */
export const READ_BUFFER_BYTES = 16 * 1024;
/** How often an open port checks that its device node still exists. */
const DEVICE_CHECK_MS = 1_000;

/** Rejects the source adds to the framers' reasons. */
export const SOURCE_REJECT_REASONS = [
  /** A partial frame dropped because the port closed (unplug) or the source stopped. */
  'truncated',
  /** A frame held back by `blocked` and still refused when the source stopped. */
  'held_at_stop',
  /** A frame above the daemon's maxPayloadBytes. */
  'oversized',
  /** The daemon refused a new stream (limits.maxStreams). */
  'too_many_streams',
] as const;

/**
 * The serial stream and its native binding, imported on the first open: a
 * daemon without serial sources (the default config) never loads them
 * (several MiB of RSS, the addon included).
 */
type SerialPortModules = readonly [typeof import('@serialport/stream'), typeof import('@serialport/bindings-cpp')];
let serialPortModules: Promise<SerialPortModules> | undefined;

function loadSerialPort(): Promise<SerialPortModules> {
  serialPortModules ??= Promise.all([import('@serialport/stream'), import('@serialport/bindings-cpp')]);
  return serialPortModules;
}

export interface SerialSourceDeps {
  /**
   * The hardware, as node-serialport injects it: the platform binding by
   * default, `@serialport/binding-mock` in tests (one contract suite runs on
   * both, test/serial-contract.test.ts).
   */
  readonly binding?: BindingInterface;
  /** Whether the device node is there (the open port's unplug check); default: it exists on disk. */
  readonly deviceExists?: (path: string) => boolean;
  /** Random number in [0, 1) for the backoff jitter. */
  readonly random?: () => number;
  /** Clock for the log rate limit (ms). */
  readonly now?: () => number;
}

export class SerialSource implements Driver {
  readonly name: string;
  readonly #cfg: SerialPortConfig;
  readonly #stream: string;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #binding: BindingInterface | undefined;
  readonly #deviceExists: (path: string) => boolean;
  readonly #rejectLog = new LogBudget({ perWindow: 10, windowMs: 10_000 });
  #ctx: DriverContext | undefined;
  #framer: Framer | undefined;
  #port: SerialPortStream | undefined;
  #opening: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #stopped = false;
  #pausedByCaller = false;
  /** Frames refused with `blocked`, oldest first; offered again on resume. */
  readonly #held: Buffer[] = [];
  #up = false;
  #detail = 'not started';
  #lastOpenError: string | undefined;

  constructor(cfg: SerialPortConfig, deps: SerialSourceDeps = {}) {
    this.name = cfg.name;
    this.#cfg = cfg;
    this.#stream = streamOf(cfg);
    this.#random = deps.random ?? Math.random;
    this.#now = deps.now ?? Date.now;
    this.#binding = deps.binding;
    this.#deviceExists = deps.deviceExists ?? existsSync;
  }

  async start(ctx: DriverContext): Promise<void> {
    this.#ctx = ctx;
    this.#framer = createFramer(this.#cfg.framing, {
      onFrame: (frame) => this.#onFrame(frame),
      onReject: (reason) => this.#reject(reason),
    });
    this.#detail = 'opening';
    this.#opening = this.#open();
    await this.#opening;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#opening;
    const port = this.#port;
    this.#port = undefined;
    this.#up = false;
    this.#detail = 'stopped';
    if (port !== undefined) await this.#close(port);
    if ((this.#framer?.reset() ?? 0) > 0) this.#reject('truncated');
    this.#stopHeld();
  }

  health(): SourceHealth {
    return { name: this.name, up: this.#up, detail: this.#detail };
  }

  /** Stops reading the port until `resume()`. */
  pause(): void {
    this.#pausedByCaller = true;
    this.#port?.pause();
    this.#describeOpen();
  }

  /** Offers held frames again, oldest first; reads on once all are taken. */
  resume(): void {
    this.#pausedByCaller = false;
    this.#offerHeld();
    if (this.#held.length === 0) this.#port?.resume();
    this.#describeOpen();
  }

  /** Input bytes the framer holds, waiting for the rest of a frame (at most maxFrameBytes). */
  get bufferedBytes(): number {
    return this.#framer?.bufferedBytes ?? 0;
  }

  /** Frames refused with `blocked` and held for `resume()`. */
  get heldFrames(): number {
    return this.#held.length;
  }

  // ── the port ───────────────────────────────────────────────────────────

  async #open(): Promise<void> {
    const cfg = this.#cfg;
    const [{ SerialPortStream }, { autoDetect }] = await loadSerialPort();
    let port: SerialPortStream;
    try {
      port = new SerialPortStream({
        binding: this.#binding ?? autoDetect(),
        path: cfg.path,
        baudRate: cfg.baudRate,
        dataBits: cfg.dataBits,
        parity: cfg.parity,
        stopBits: cfg.stopBits,
        rtscts: cfg.rtscts,
        autoOpen: false,
        highWaterMark: READ_BUFFER_BYTES,
      });
    } catch (err) {
      this.#openFailed(err as Error);
      return;
    }
    // Without an 'error' listener an emitted error would crash the daemon.
    port.on('error', (err) => this.#portError(port, err));
    const err = await new Promise<Error | null>((resolve) => port.open(resolve));
    if (err !== null) {
      this.#openFailed(err);
      return;
    }
    if (this.#stopped) {
      await this.#close(port);
      return;
    }
    this.#opened(port);
  }

  #opened(port: SerialPortStream): void {
    const ctx = this.#ctx as DriverContext;
    this.#port = port;
    this.#attempt = 0;
    this.#lastOpenError = undefined;
    this.#up = true;
    // Paused before the 'data' listener: a paused stream stays paused when one is added.
    if (this.#pausedByCaller || this.#held.length > 0) port.pause();
    port.on('data', (chunk: Buffer) => this.#framer?.push(chunk));
    port.on('close', (err: Error | null) => this.#closed(port, err));
    this.#watchDevice(port);
    this.#describeOpen();
    ctx.log.info({ event: 'source_up', source: this.name, path: this.#cfg.path }, 'serial port open');
  }

  /**
   * Some USB serial drivers (and a pty whose other end went away) do not
   * report an unplug on the open descriptor at once: while open, check once
   * a second that the device node is still there, and close the port if not.
   */
  #watchDevice(port: SerialPortStream): void {
    const timer = setInterval(() => {
      if (this.#port !== port) return clearInterval(timer);
      if (this.#deviceExists(this.#cfg.path)) return;
      clearInterval(timer);
      port.close(() => undefined);
      this.#closed(port, new Error(`${this.#cfg.path} is gone`));
    }, DEVICE_CHECK_MS);
    timer.unref();
  }

  #openFailed(err: Error): void {
    const ctx = this.#ctx as DriverContext;
    this.#up = false;
    const delay = this.#scheduleReopen();
    this.#detail = `cannot open ${this.#cfg.path}: ${err.message}; retrying in ${delay} ms`;
    // WARN when the reason changes, DEBUG while it stays the same: a missing device does not flood the log.
    const level = err.message === this.#lastOpenError ? 'debug' : 'warn';
    this.#lastOpenError = err.message;
    ctx.log[level]({ event: 'source_degraded', path: this.#cfg.path, err: err.message, retryMs: delay }, 'serial port cannot open; retrying');
  }

  #closed(port: SerialPortStream, err: Error | null): void {
    if (this.#port !== port) return; // closed by stop()
    const ctx = this.#ctx as DriverContext;
    this.#port = undefined;
    this.#up = false;
    if ((this.#framer?.reset() ?? 0) > 0) this.#reject('truncated');
    const why = err?.message ?? 'port closed';
    const delay = this.#scheduleReopen();
    this.#detail = `disconnected (${why}); retrying in ${delay} ms`;
    ctx.log.warn({ event: 'source_down', source: this.name, path: this.#cfg.path, err: why, retryMs: delay }, 'serial port closed; reopening');
  }

  #portError(port: SerialPortStream, err: Error): void {
    const ctx = this.#ctx as DriverContext;
    ctx.log.warn({ event: 'source_error', path: this.#cfg.path, err: err.message }, 'serial port error');
    // An error that left the port closed without a 'close' event is an unplug too.
    if (this.#port === port && !port.isOpen && !port.closing) this.#closed(port, err);
  }

  /** Returns the delay; no timer after stop, and never two timers. */
  #scheduleReopen(): number {
    const delay = backoffDelay(this.#attempt++, this.#cfg.reconnect, this.#random());
    if (this.#stopped || this.#timer !== undefined) return delay;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#opening = this.#open();
    }, delay);
    return delay;
  }

  #close(port: SerialPortStream): Promise<void> {
    if (!port.isOpen) return Promise.resolve();
    return new Promise((resolve) =>
      port.close((err) => {
        if (err) this.#ctx?.log.debug({ source: this.name, err: err.message }, 'serial port close failed');
        resolve();
      }),
    );
  }

  #describeOpen(): void {
    if (this.#port === undefined) return;
    if (this.#held.length > 0) this.#detail = `open; blocked: ${this.#held.length} frames held until resume`;
    else this.#detail = this.#pausedByCaller ? 'open; paused' : 'open';
  }

  // ── frames ─────────────────────────────────────────────────────────────

  #onFrame(frame: Buffer): void {
    // Behind a held frame, keep order: hold this one too.
    if (this.#held.length > 0 || !this.#offer(frame)) {
      if (this.#held.length === 0) {
        this.#port?.pause();
        this.#ctx?.log.debug({ event: 'source_blocked', source: this.name, stream: this.#stream }, 'stream full; serial port paused');
      }
      this.#held.push(frame);
      this.#describeOpen();
    }
  }

  /** Offers a frame; false when the stream refused it for now (`blocked`). */
  #offer(frame: Buffer): boolean {
    const ctx = this.#ctx as DriverContext;
    if (frame.length > ctx.maxPayloadBytes) {
      this.#reject('oversized');
      return true;
    }
    const outcome = ctx.ingest(this.#stream, frame, this.#cfg.priority);
    switch (outcome) {
      case 'blocked':
        return false;
      case 'accepted':
      case 'dropped':
      case 'rejected': // counted by the daemon
        return true;
      default: {
        const unknown: never = outcome;
        throw new Error(`unknown ingest outcome ${String(unknown)}`);
      }
    }
  }

  #offerHeld(): void {
    let taken = 0;
    while (taken < this.#held.length && this.#offer(this.#held[taken] as Buffer)) taken++;
    this.#held.splice(0, taken);
  }

  /** At stop: one last offer, then what is still refused is counted and logged as lost. */
  #stopHeld(): void {
    if (this.#held.length === 0) return;
    this.#offerHeld();
    const lost = this.#held.length;
    if (lost === 0) return;
    this.#held.length = 0;
    const ctx = this.#ctx as DriverContext;
    for (let i = 0; i < lost; i++) ctx.reject('held_at_stop');
    ctx.log.error({ event: 'input_lost', source: this.name, stream: this.#stream, frames: lost }, 'serial frames held by a blocked stream were lost at stop');
  }

  #reject(reason: string): void {
    const ctx = this.#ctx as DriverContext;
    ctx.reject(reason);
    const decision = this.#rejectLog.take(this.#now());
    if (decision.log) ctx.log.debug({ event: 'input_rejected', source: this.name, reason, suppressed: decision.suppressed }, 'serial input rejected');
  }
}

export function createSerialSource(cfg: SerialPortConfig, deps: SerialSourceDeps = {}): SerialSource {
  return new SerialSource(cfg, deps);
}
