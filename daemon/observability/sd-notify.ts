/**
 * sd_notify(3) for the `Type=notify` unit (systemd/spillway.service): READY=1,
 * WATCHDOG=1, STATUS=, STOPPING=1. Without NOTIFY_SOCKET (not under systemd,
 * a test, `npm start`) every call does nothing, as zigbee2mqtt's
 * lib/util/sd-notify.ts.
 *
 * How a message is sent. NOTIFY_SOCKET names a unix *datagram* socket and
 * Node has none (`net` is stream-only, `dgram` is UDP-only). zigbee2mqtt uses
 * a native addon (unix-dgram): one more thing to compile on the Pi and to
 * break on a Node upgrade. We run systemd-notify(1) instead. It ships in the
 * systemd package, so it is there wherever NOTIFY_SOCKET can be set, and it
 * knows every socket form systemd hands out (a path, an abstract `@name`).
 *   - It sends its `KEY=VALUE` arguments as one datagram.
 *   - Unprivileged (User=spillway) it sends under its own PID; it claims its
 *     parent's PID only with CAP_SYS_ADMIN. So the unit needs
 *     NotifyAccess=all. We pass no --pid: node is already the main PID
 *     (ExecStart runs it directly), and MAINPID= would only restate that.
 *   - Without --no-block it then waits (BARRIER=1, at most 5 s) until PID 1
 *     has read the message. The sender is therefore still alive, in the
 *     unit's cgroup, when PID 1 looks it up: the race systemd-notify(1) warns
 *     about for NotifyAccess=all cannot happen.
 * What it costs: one short-lived process (~15 ms, ~1 MB) per message, and
 * messages are few: READY, one per watchdog tick (WATCHDOG=1 and STATUS=
 * together, every WatchdogSec/2), STOPPING. Never one per record. At most
 * one sender runs at a time. What is asked meanwhile is merged into the next
 * message: one value per key, the latest wins, the latest key is last (PID 1
 * reads READY/STOPPING last-wins), so a burst of calls costs one process more.
 * Rejected: python3 or socat one-shots (not on every Pi image, and they cost
 * the same), and a long-lived helper process (one more thing to supervise,
 * for a message every 15 s).
 *
 * Failures (no binary, a socket that refuses, a sender killed at the
 * timeout) are counted and logged at ERROR when they start: without
 * READY=1 or WATCHDOG=1, systemd kills the service. Never thrown: every
 * method returns a promise that resolves once its message is sent or failed.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Logger } from 'pino';

/** Where Debian and Raspberry Pi OS put systemd-notify (merged /usr, or not). */
export const NOTIFY_COMMANDS = ['/usr/bin/systemd-notify', '/bin/systemd-notify'] as const;
/** Our kill deadline for one sender: above systemd-notify's own 5 s barrier timeout. */
const DEFAULT_SEND_TIMEOUT_MS = 10_000;
/** STATUS= is one line; systemctl status shows the start of it. */
const MAX_STATUS_CHARS = 240;
/** What is kept of a failed sender's stderr, for the log. */
const MAX_STDERR_CHARS = 500;
/** The STATUS= period when systemd expects no watchdog (no WatchdogSec=). */
const STATUS_ONLY_INTERVAL_MS = 30_000;

export type NotifyLog = Pick<Logger, 'error' | 'warn' | 'debug'>;

export interface SdNotifyContext {
  readonly log: NotifyLog;
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are read; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Our PID, compared with WATCHDOG_PID; default process.pid. */
  readonly pid?: number;
  /** The systemd-notify binary; default the first of NOTIFY_COMMANDS that is executable. */
  readonly command?: string;
  /** A sender still running after this is killed and counted as failed. */
  readonly sendTimeoutMs?: number;
}

export interface WatchdogOptions {
  /**
   * True while the pipeline moves records or is idle by design; WATCHDOG=1 is
   * withheld while it is false, and systemd restarts the service WatchdogSec
   * after the last ping. Called once per tick, before `status`.
   */
  readonly progressing: () => boolean;
  /** The STATUS= text sent on the same tick (buffer, spool, consumer figures). */
  readonly status?: () => string;
  /** Default: WATCHDOG_USEC / 2, or 30 s of STATUS= alone without a watchdog. */
  readonly intervalMs?: number;
}

export interface WatchdogHandle {
  /** The tick period, or undefined when notifications are off. */
  readonly intervalMs: number | undefined;
  stop(): void;
}

/**
 * sd_watchdog_enabled(3): half of WATCHDOG_USEC in ms (the period systemd
 * recommends), or undefined when no watchdog is expected of this process.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env['WATCHDOG_USEC']);
  if (!Number.isSafeInteger(usec) || usec <= 0) return undefined;
  const forPid = env['WATCHDOG_PID'];
  if (forPid !== undefined && forPid !== '' && Number(forPid) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2_000));
}

export function createSdNotify(ctx: SdNotifyContext): SdNotify {
  return new SdNotify(ctx);
}

export class SdNotify {
  /** False without NOTIFY_SOCKET: every method then does nothing. */
  readonly enabled: boolean;
  /** WATCHDOG_USEC / 2 in ms, when systemd expects pings from this process. */
  readonly watchdogIntervalMs: number | undefined;
  readonly #socket: string;
  readonly #command: string;
  readonly #log: NotifyLog;
  readonly #timeoutMs: number;
  /** The next message. Bounded: one entry per key (READY, STATUS, WATCHDOG, STOPPING). */
  #pending = new Map<string, string>();
  #waiters: Array<() => void> = [];
  #busy = false;
  #sent = 0;
  #failures = 0;
  #failing = false;
  readonly #watchdogs = new Set<WatchdogHandle>();

  constructor(ctx: SdNotifyContext) {
    const env = ctx.env ?? process.env;
    this.#socket = env['NOTIFY_SOCKET'] ?? '';
    this.enabled = this.#socket !== '';
    this.watchdogIntervalMs = this.enabled ? watchdogIntervalMs(env, ctx.pid ?? process.pid) : undefined;
    this.#log = ctx.log;
    this.#timeoutMs = ctx.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
    this.#command = ctx.command ?? (this.enabled ? findCommand() : NOTIFY_COMMANDS[0]);
  }

  /** Messages PID 1 took (the sender exited 0). */
  get sent(): number {
    return this.#sent;
  }

  /** Messages that could not be sent. */
  get failures(): number {
    return this.#failures;
  }

  /** Start-up is complete: `Type=notify` leaves "activating". */
  ready(status?: string): Promise<void> {
    return this.#send(status === undefined ? [['READY', '1']] : [['READY', '1'], ['STATUS', oneLine(status)]]);
  }

  /** One watchdog ping. `startWatchdog` sends them on a timer. */
  watchdog(): Promise<void> {
    return this.#send([['WATCHDOG', '1']]);
  }

  /** The free-form line `systemctl status spillway` shows. */
  status(text: string): Promise<void> {
    return this.#send([['STATUS', oneLine(text)]]);
  }

  /** Shutdown has begun; also stops every watchdog timer (systemd stops watching too). */
  stopping(status = 'stopping: draining in-flight records'): Promise<void> {
    for (const w of [...this.#watchdogs]) w.stop();
    return this.#send([['STOPPING', '1'], ['STATUS', oneLine(status)]]);
  }

  /** Resolves when everything asked so far has been sent or has failed. */
  flush(): Promise<void> {
    if (!this.#busy) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Every `intervalMs` (and once now): asks `progressing()`, sends WATCHDOG=1
   * if it is true and systemd expects a watchdog, and STATUS= from `status()`,
   * in one message. Start it after `ready()`: systemd arms the watchdog when
   * start-up completes.
   */
  startWatchdog(opts: WatchdogOptions): WatchdogHandle {
    if (!this.enabled) return { intervalMs: undefined, stop: () => undefined };
    const feeds = opts.intervalMs !== undefined || this.watchdogIntervalMs !== undefined;
    const every = opts.intervalMs ?? this.watchdogIntervalMs ?? STATUS_ONLY_INTERVAL_MS;
    let withheld = false;
    const tick = () => {
      const ok = this.#ask('progressing', opts.progressing, false);
      const fields: Array<[string, string]> = [];
      if (feeds && ok) fields.push(['WATCHDOG', '1']);
      // A ping still queued from an earlier tick does not go out with this tick's verdict.
      else this.#pending.delete('WATCHDOG');
      if (opts.status !== undefined) fields.push(['STATUS', oneLine(this.#ask('status', opts.status, 'status unavailable'))]);
      if (fields.length > 0) void this.#send(fields);
      if (feeds && ok === withheld) {
        withheld = !ok;
        if (withheld) this.#log.error({ event: 'watchdog_withheld', intervalMs: every }, 'pipeline not progressing: watchdog ping withheld; systemd restarts the service after WatchdogSec');
        else this.#log.warn({ event: 'watchdog_resumed' }, 'pipeline progressing again: watchdog pings resumed');
      }
    };
    const timer = setInterval(tick, every);
    timer.unref();
    const handle: WatchdogHandle = {
      intervalMs: every,
      stop: () => {
        clearInterval(timer);
        this.#watchdogs.delete(handle);
      },
    };
    this.#watchdogs.add(handle);
    tick();
    return handle;
  }

  // ── internals ──────────────────────────────────────────────────────────

  /** A caller's callback that throws is a bug: logged, and the fallback used (no ping). */
  #ask<T>(what: string, fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (err) {
      this.#log.error({ event: 'watchdog_callback_failed', callback: what, err: String(err) }, `watchdog ${what}() threw`);
      return fallback;
    }
  }

  #send(fields: ReadonlyArray<readonly [string, string]>): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    for (const [key, value] of fields) {
      this.#pending.delete(key);
      this.#pending.set(key, value);
    }
    const done = new Promise<void>((resolve) => this.#waiters.push(resolve));
    if (!this.#busy) void this.#drain();
    return done;
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    while (this.#pending.size > 0) {
      const args = [...this.#pending].map(([k, v]) => `${k}=${v}`);
      const waiters = this.#waiters;
      this.#pending = new Map();
      this.#waiters = [];
      await this.#run(args);
      for (const resolve of waiters) resolve();
    }
    this.#busy = false;
    const late = this.#waiters;
    this.#waiters = [];
    for (const resolve of late) resolve();
  }

  /** One systemd-notify process; resolves when it is gone, never rejects. */
  #run(args: readonly string[]): Promise<void> {
    return new Promise((resolve) => {
      let stderr = '';
      let settled = false;
      const settle = (problem: string | undefined) => {
        if (settled) return;
        settled = true;
        if (problem === undefined) this.#succeeded();
        else this.#failed(args, problem);
        resolve();
      };
      const child = spawn(this.#command, args, {
        env: { NOTIFY_SOCKET: this.#socket },
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: this.#timeoutMs,
        killSignal: 'SIGKILL',
      });
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (chunk: string) => {
        if (stderr.length < MAX_STDERR_CHARS) stderr = (stderr + chunk).slice(0, MAX_STDERR_CHARS);
      });
      child.once('error', (err) => settle(`${this.#command}: ${err.message}`));
      child.once('close', (code, signal) => {
        if (code === 0) settle(undefined);
        else if (signal !== null) settle(`${this.#command} killed by ${signal} (timeout ${this.#timeoutMs} ms)`);
        else settle(`${this.#command} exited ${code}: ${stderr.trim()}`);
      });
    });
  }

  #succeeded(): void {
    this.#sent++;
    if (!this.#failing) return;
    this.#failing = false;
    this.#log.warn({ event: 'sd_notify_recovered', failures: this.#failures }, 'notifying systemd works again');
  }

  #failed(args: readonly string[], problem: string): void {
    this.#failures++;
    const fields = { event: 'sd_notify_failed', message: args.join(' '), problem, failures: this.#failures };
    if (this.#failing) {
      this.#log.debug(fields, 'could not notify systemd');
      return;
    }
    this.#failing = true;
    this.#log.error(fields, 'could not notify systemd: without READY=1 and WATCHDOG=1 it will stop the service');
  }
}

function findCommand(): string {
  for (const candidate of NOTIFY_COMMANDS) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return candidate; // present; let the spawn report why it fails
    }
  }
  return NOTIFY_COMMANDS[0]; // missing: the first send reports ENOENT, at ERROR
}

/** STATUS= must stay one line: a newline would start another KEY=VALUE. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, MAX_STATUS_CHARS);
}
