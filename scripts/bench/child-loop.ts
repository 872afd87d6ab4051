/**
 * The child side of the benches' load generators (publisher, serial writer):
 * each message from the parent is one job; the answer is how long it took.
 * A failed job ends the child with exit 1; the parent going away ends it.
 * `nextMessage` is the parent's side.
 */
import type { ChildProcess } from 'node:child_process';
import { now } from './stats.js';

export type FromChild = { type: 'ready' } | { type: 'done'; ms: number };

export function serveJobs<M>(name: string, job: (msg: M) => Promise<void>): void {
  const send = (msg: FromChild) => process.send?.(msg);
  process.on('message', (msg: M) => {
    const t0 = now();
    job(msg).then(
      () => send({ type: 'done', ms: now() - t0 }),
      (err: unknown) => {
        console.error(`${name}:`, err);
        process.exit(1);
      },
    );
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

/** The parent side: the next message of `type` from the child, or an error if it exits first. */
export function nextMessage(name: string, child: ChildProcess, type: FromChild['type']): Promise<FromChild> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${name} exited (${code}) before '${type}'`));
    const onMessage = (msg: FromChild) => {
      if (msg.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(msg);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
