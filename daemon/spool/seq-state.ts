/**
 * Keeps `seq` unique for the life of the data directory, across restarts,
 * crashes and a quarantined spool: seqs are handed out from blocks reserved
 * in a small file (`seq.next`, written atomically: temp file, fsync, rename)
 * before any seq of the block is used. A crash wastes at most one block.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SpillwayError } from '../errors.js';

export const SEQ_BLOCK = 100_000;

export class SeqState {
  readonly #file: string;
  #reserved: number;

  private constructor(file: string, reserved: number) {
    this.#file = file;
    this.#reserved = reserved;
  }

  /** Reads the reservation; the first seq to use is the larger of it and `minNext`. */
  static load(dataDir: string): SeqState {
    const file = join(dataDir, 'seq.next');
    let reserved = 1;
    try {
      // Exactly what ensure() writes, newline included: a truncated file ("10000" of
      // "100001\n") would otherwise read as a smaller number and seqs would repeat.
      const text = readFileSync(file, 'utf8');
      const n = /^[1-9][0-9]*\n$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(n)) throw new SpillwayError('SEQ_STATE', `${file} holds ${JSON.stringify(text)}, not a positive integer and a newline (truncated or corrupt: seqs cannot safely go on)`);
      reserved = n;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err instanceof SpillwayError ? err : new SpillwayError('SEQ_STATE', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    return new SeqState(file, reserved);
  }

  /** The first seq not covered by a past reservation: a restart starts here (or above). */
  get reserved(): number {
    return this.#reserved;
  }

  /** Makes sure every seq below `next + SEQ_BLOCK` is reserved on disk. Call before handing out `next`. */
  ensure(next: number): void {
    if (next < this.#reserved) return;
    const upTo = next + SEQ_BLOCK;
    const tmp = `${this.#file}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, `${upTo}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.#file);
    this.#reserved = upTo;
  }
}
