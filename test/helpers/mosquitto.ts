/**
 * A real Mosquitto broker on 127.0.0.1 for one test file. Fails loudly when
 * mosquitto is not installed (`.ci/run` installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const MOSQUITTO = process.env['MOSQUITTO'] ?? '/usr/sbin/mosquitto';

export interface Mosquitto {
  readonly port: number;
  readonly url: string;
  /** The broker's process id (benches read its CPU time and RSS). */
  readonly pid: number;
  stop(): Promise<void>;
}

export interface MosquittoOptions {
  /** A fixed port (to restart a broker where clients expect it); default: a free one. */
  readonly port?: number;
  /** Keep sessions and queued messages in this directory across restarts. */
  readonly persistenceDir?: string;
}

/** `extraConf` lines apply to the listener (TLS files, say). */
export async function startMosquitto(extraConf: string[] = [], opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-mosq-'));
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const conf = join(dir, 'mosquitto.conf');
    // Run as root (the tests are), keep root: else mosquitto drops to its own user and cannot read the test's files.
    const persistence = opts.persistenceDir === undefined ? ['persistence false'] : ['persistence true', `persistence_location ${opts.persistenceDir}/`, 'autosave_interval 1'];
    await writeFile(conf, [...(process.getuid?.() === 0 ? ['user root'] : []), ...persistence, 'max_queued_messages 0', `listener ${port} 127.0.0.1`, 'allow_anonymous true', ...extraConf, ''].join('\n'));
    const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    try {
      await waitFor(
        () =>
          Promise.race([
            spawnError.then((e) => {
              throw new Error(`cannot run ${MOSQUITTO} (install the mosquitto package): ${e.message}`);
            }),
            canConnect(port),
          ]),
        `mosquitto on port ${port}`,
        5_000,
      );
    } catch (err) {
      child.kill('SIGKILL');
      if (attempt < 3 && opts.port === undefined && !String(err).includes('cannot run')) continue;
      throw new Error(`${String(err)}\n${stderr}`);
    }
    return { port, url: `mqtt://127.0.0.1:${port}`, pid: child.pid as number, stop: () => stopChild(child) };
  }
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

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}
