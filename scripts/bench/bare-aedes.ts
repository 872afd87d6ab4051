/**
 * The baseline broker of the embedded-broker bench: aedes 1.2 with its
 * defaults on a loopback port, in its own process (as the daemon is), and
 * nothing else. `startBareAedes()` forks this file and resolves once it listens.
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import { nextMessage, serveJobs } from './child-loop.js';

export interface BareAedes {
  readonly pid: number;
  stop(): void;
}

export async function startBareAedes(port: number): Promise<BareAedes> {
  const child = fork(fileURLToPath(import.meta.url), [String(port)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await nextMessage('bare aedes', child, 'ready');
  return { pid: child.pid as number, stop: () => child.kill() };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(Number(process.argv[2]), '127.0.0.1', () => resolve()));
  serveJobs<never>('bare aedes', () => Promise.resolve());
}
