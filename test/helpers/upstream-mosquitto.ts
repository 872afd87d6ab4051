/**
 * A real Mosquitto broker that can be stopped and started again on the same
 * port (a broker restart), optionally with persistence so that a persistent
 * subscriber's session and queued messages survive it. Fails loudly when
 * mosquitto is not installed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopChild } from './mosquitto.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const MOSQUITTO = process.env['MOSQUITTO'] ?? '/usr/sbin/mosquitto';

export interface RestartableMosquitto {
  readonly port: number;
  readonly url: string;
  /** Stops the broker (SIGTERM: with persistence it saves its state). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

export interface MosquittoOptions {
  /** Keep sessions and queued messages across a restart. */
  readonly persistence?: boolean;
  readonly extraConf?: readonly string[];
}

export async function startRestartableMosquitto(opts: MosquittoOptions = {}): Promise<RestartableMosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-upmosq-'));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 0'];
  lines.push(...(opts.persistence === true ? ['persistence true', `persistence_location ${dir}/`] : ['persistence false']));
  await writeFile(conf, [...lines, ...(opts.extraConf ?? []), ''].join('\n'));
  let child: ChildProcess | undefined;

  const start = async () => {
    const c = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    let stderr = '';
    c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    let spawnError: Error | undefined;
    c.once('error', (err) => (spawnError = err));
    try {
      await waitFor(
        async () => {
          if (spawnError !== undefined) throw new Error(`cannot run ${MOSQUITTO} (install the mosquitto package): ${spawnError.message}`);
          if (c.exitCode !== null) throw new Error(`mosquitto exited with ${c.exitCode}: ${stderr}`);
          return canConnect(port);
        },
        `mosquitto on port ${port}`,
        10_000,
      );
    } catch (err) {
      await stopChild(c, 'SIGKILL');
      throw err;
    }
  };
  await start();
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    start,
    stop: async () => {
      if (child !== undefined) await stopChild(child);
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
