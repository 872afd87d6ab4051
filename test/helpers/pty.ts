/**
 * A serial cable for tests: socat joins two pseudo-terminals and links them
 * at two paths in a temp dir. The source under test opens `device`; the test
 * writes into `peer`. Stopping socat is an unplug (the device side reads
 * EIO and socat removes the links); starting it again on the same links is
 * the adapter coming back. Fails loudly when socat is not installed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { stopChild } from './mosquitto.js';
import { waitFor } from './wait.js';
import { makeTempDir } from './tmp.js';

const SOCAT = process.env['SOCAT'] ?? '/usr/bin/socat';

export interface PtyLinks {
  /** The temp dir holding both links; remove it with `removePtyDir`. */
  readonly dir: string;
  /** Opened by the source under test. */
  readonly device: string;
  /** Opened by the test to write (and read) the other end. */
  readonly peer: string;
}

export interface Socat {
  readonly links: PtyLinks;
  readonly child: ChildProcess;
  /** Unplug: stops socat and waits until it exited and both links are gone. */
  stop(): Promise<void>;
}

/** Two link paths in a fresh temp dir. */
export async function ptyLinks(): Promise<PtyLinks> {
  const dir = await makeTempDir('pty');
  return { dir, device: join(dir, 'device'), peer: join(dir, 'peer') };
}

export async function removePtyDir(links: PtyLinks): Promise<void> {
  await rm(links.dir, { recursive: true, force: true });
}

export async function startSocat(links: PtyLinks): Promise<Socat> {
  if (!existsSync(SOCAT)) throw new Error(`socat not found at ${SOCAT}: install the socat package (or set SOCAT)`);
  await removeLinks(links);
  const child = spawn(SOCAT, ['-d', '-d', `pty,raw,echo=0,link=${links.device}`, `pty,raw,echo=0,link=${links.peer}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  try {
    await waitFor(
      () => {
        if (spawnError !== undefined) throw new Error(`cannot run ${SOCAT}: ${spawnError.message}`);
        if (child.exitCode !== null) throw new Error(`socat exited with ${child.exitCode}: ${stderr}`);
        return existsSync(links.device) && existsSync(links.peer);
      },
      `socat links ${links.device} and ${links.peer}`,
      5_000,
    );
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    throw err;
  }
  return {
    links,
    child,
    stop: async () => {
      await stopChild(child);
      // socat removes its links on SIGTERM; this covers a socat that died another way.
      await removeLinks(links);
    },
  };
}

async function removeLinks(links: PtyLinks): Promise<void> {
  await rm(links.device, { force: true });
  await rm(links.peer, { force: true });
}

/** Opens the peer end as a raw port; resolves once it is open. */
export async function openPeer(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return port;
}

/** Writes and resolves once the bytes were handed to the OS. */
export function writeAll(port: SerialPort, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    port.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

export function closePeer(port: SerialPort): Promise<void> {
  if (!port.isOpen) return Promise.resolve();
  return new Promise((resolve, reject) => port.close((err) => (err ? reject(err) : resolve())));
}
