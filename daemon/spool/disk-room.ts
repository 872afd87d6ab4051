/**
 * The disk reserve: a spool write is refused (SpoolFullError) while the
 * file system holding the spool has less than `reserveBytes` free.
 * Deletes and checkpoints are not held to it: they need room in the WAL
 * and the database, and without a reserve a full disk is a deadlock (the
 * WAL cannot be checkpointed because the database cannot grow, deletes
 * fail because the WAL cannot grow: the fault suite's 8.3 MB WAL beside a
 * 4 KiB database).
 *
 * The free space is a statfs call (~5 µs), made again only after writes
 * that may have taken a quarter of the room above the reserve (at most
 * 256 KiB), counted high: twice the payload plus two pages a commit (a
 * one-row commit still writes a 4 KiB page to the WAL).
 */
import { statfsSync } from 'node:fs';
import { SpoolFullError } from './spool-port.js';

/** Free disk space below which spool writes are refused. */
export const DISK_RESERVE_BYTES = 1024 * 1024;
/** What a commit may add to the WAL beyond its payload (two frames of 4 KiB pages). */
const PER_COMMIT_BYTES = 8 * 1024 + 48;
const MAX_BETWEEN_LOOKS_BYTES = 256 * 1024;

/** Free bytes of the file system holding `dir` (statfs; a test passes its own). */
export type FreeSpace = (dir: string) => number;

const statfsFree: FreeSpace = (dir) => {
  const fs = statfsSync(dir);
  return fs.bavail * fs.bsize;
};

export class DiskRoom {
  readonly #dir: string;
  readonly #reserveBytes: number;
  readonly #free: FreeSpace;
  /** Disk the writes since the last look may have taken (an estimate, high). */
  #used = 0;
  /** `#used` at which the free space is looked at again. */
  #lookAt = 0;

  constructor(dir: string, reserveBytes: number, free: FreeSpace = statfsFree) {
    this.#dir = dir;
    this.#reserveBytes = reserveBytes;
    this.#free = free;
  }

  /** The file system has more than the reserve free now (a statfs call); false when it cannot be seen. */
  hasRoom(): boolean {
    if (this.#reserveBytes <= 0) return true;
    try {
      return this.#free(this.#dir) >= this.#reserveBytes;
    } catch {
      return false;
    }
  }

  /** Throws SpoolFullError when a write of `payloadBytes` in one commit must be refused. */
  beforeWrite(payloadBytes: number): void {
    if (this.#reserveBytes <= 0) return;
    this.#used += 2 * payloadBytes + PER_COMMIT_BYTES;
    if (this.#used < this.#lookAt) return;
    let free: number;
    try {
      free = this.#free(this.#dir);
    } catch (err) {
      throw new SpoolFullError(`cannot see the free space of ${this.#dir}: ${(err as Error).message}`, { cause: err });
    }
    this.#used = 0;
    if (free < this.#reserveBytes) {
      this.#lookAt = 0; // look again at the next write
      throw new SpoolFullError(`disk nearly full: ${free} bytes free, below the reserve of ${this.#reserveBytes} kept for deletes and checkpoints`);
    }
    this.#lookAt = Math.min(MAX_BETWEEN_LOOKS_BYTES, Math.floor((free - this.#reserveBytes) / 4));
  }
}
