/**
 * The load of the serial bench: a process writing 100-byte lines (plus
 * '\n') into the peer end of a pty pair (test/helpers/pty.ts) as fast as
 * the pty takes them, CHUNK_LINES lines per write, each write awaited.
 * The bare reader and the daemon are fed by the same writer code, so their
 * rates compare.
 *
 * `startSerialWriter()` forks this file; they talk over the IPC channel:
 *   child  -> { type: 'ready' }             the peer end is open
 *   parent -> { type: 'write', n }          write n lines
 *   child  -> { type: 'done', ms }          the last one was handed to the OS
 * The peer stays open until the parent stops the child: closing it would
 * end socat and lose what the other end has not read yet.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SerialPort } from 'serialport';
import { openPeer, writeAll } from '../../test/helpers/pty.js';
import { nextMessage, serveJobs } from './child-loop.js';
import { payloadTemplate } from './stats.js';

const CHUNK_LINES = 160;

type ToChild = { type: 'write'; n: number };

export interface SerialWriter {
  /** Writes n lines; resolves with how long writing took, in ms. */
  write(n: number): Promise<number>;
  stop(): void;
}

export async function startSerialWriter(peer: string): Promise<SerialWriter> {
  const child = fork(fileURLToPath(import.meta.url), [peer], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await nextMessage('serial writer', child, 'ready');
  return {
    write: async (n) => {
      const done = nextMessage('serial writer', child, 'done');
      child.send({ type: 'write', n } satisfies ToChild);
      const msg = await done;
      return msg.type === 'done' ? msg.ms : 0;
    },
    stop: () => child.kill(),
  };
}


async function write(port: SerialPort, n: number): Promise<void> {
  const line = Buffer.concat([payloadTemplate(), Buffer.from('\n')]);
  const chunk = Buffer.concat(Array.from({ length: CHUNK_LINES }, () => line));
  for (let done = 0; done < n; done += CHUNK_LINES) {
    const lines = Math.min(CHUNK_LINES, n - done);
    await writeAll(port, lines === CHUNK_LINES ? chunk : chunk.subarray(0, lines * line.length));
  }
}

async function child(peer: string): Promise<void> {
  const port = await openPeer(peer);
  serveJobs<ToChild>('serial writer', (msg) => write(port, msg.n));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const peer = process.argv[2];
  if (peer === undefined) throw new Error('usage: serial-writer.js PEER_PATH');
  await child(peer);
}
