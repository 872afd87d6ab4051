/**
 * A child process that drives daemon/observability/sd-notify.ts as the daemon
 * would, one IPC command at a time, so the test sees real systemd-notify
 * processes send real datagrams from a process whose environment carries
 * NOTIFY_SOCKET and WATCHDOG_USEC. Log lines go to stdout as JSON.
 *
 * Commands (process.send from the parent), each answered with a Reply:
 *   ready | status <text> | burst <n> | watchdog | progressing <bool> | stopping | exit
 */
import { pino } from 'pino';
import { createSdNotify, type WatchdogHandle } from '../../daemon/observability/sd-notify.js';

export type Command =
  | { readonly op: 'ready'; readonly status?: string }
  | { readonly op: 'status'; readonly text: string }
  | { readonly op: 'burst'; readonly n: number }
  | { readonly op: 'watchdog' }
  | { readonly op: 'progressing'; readonly value: boolean }
  | { readonly op: 'stopping' }
  | { readonly op: 'exit' };

export interface Reply {
  readonly op: Command['op'];
  readonly enabled: boolean;
  readonly intervalMs: number | undefined;
  readonly sent: number;
  readonly failures: number;
}

const log = pino({ level: 'debug', base: null }, pino.destination({ fd: 1, sync: true }));
const notify = createSdNotify({ log });
let progressing = true;
let ticks = 0;
let handle: WatchdogHandle | undefined;

async function run(cmd: Command): Promise<void> {
  switch (cmd.op) {
    case 'ready':
      await notify.ready(cmd.status);
      break;
    case 'status':
      await notify.status(cmd.text);
      break;
    case 'burst': {
      const all: Array<Promise<void>> = [];
      for (let i = 1; i <= cmd.n; i++) all.push(notify.status(`burst ${i}`));
      await Promise.all(all);
      break;
    }
    case 'watchdog':
      handle = notify.startWatchdog({ progressing: () => progressing, status: () => `tick ${++ticks} progressing=${progressing}` });
      break;
    case 'progressing':
      progressing = cmd.value;
      break;
    case 'stopping':
      await notify.stopping();
      break;
    case 'exit':
      await notify.flush();
      process.disconnect?.();
      return;
    default: {
      const never: never = cmd;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
  const reply: Reply = { op: cmd.op, enabled: notify.enabled, intervalMs: handle?.intervalMs ?? notify.watchdogIntervalMs, sent: notify.sent, failures: notify.failures };
  process.send?.(reply);
}

// Commands run one after another, in the order sent.
let chain = Promise.resolve();
process.on('message', (cmd: Command) => {
  chain = chain.then(() => run(cmd));
});
