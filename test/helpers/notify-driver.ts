/**
 * Runs test/helpers/notify-child.ts as a real child process with the
 * environment systemd would give it, sends it commands and collects its log
 * lines.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Command, Reply } from './notify-child.js';
import { waitFor } from './wait.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'notify-child.js');

export interface NotifyChild {
  readonly child: ChildProcess;
  readonly logs: Array<Record<string, unknown>>;
  /** Sends a command and resolves with the child's reply once it is carried out. */
  send(cmd: Exclude<Command, { op: 'exit' }>): Promise<Reply>;
  /** Asks the child to flush and leave; resolves with its exit code. */
  exit(): Promise<number | null>;
}

export async function startNotifyChild(env: Record<string, string | undefined>): Promise<NotifyChild> {
  const base = { ...process.env };
  delete base['NOTIFY_SOCKET'];
  delete base['WATCHDOG_USEC'];
  delete base['WATCHDOG_PID'];
  const child = fork(CHILD, [], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const logs: Array<Record<string, unknown>> = [];
  const replies: Reply[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => logs.push(JSON.parse(line) as Record<string, unknown>));
  child.on('message', (m: Reply) => replies.push(m));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let asked = 0;
  return {
    child,
    logs,
    send: async (cmd) => {
      const n = ++asked;
      child.send(cmd);
      return waitFor(() => {
        if (child.exitCode !== null) throw new Error(`notify child exited ${child.exitCode}: ${stderr}`);
        return replies[n - 1];
      }, `the child to carry out ${cmd.op}`);
    },
    exit: async () => {
      if (child.connected) child.send({ op: 'exit' } satisfies Command);
      return exited;
    },
  };
}
