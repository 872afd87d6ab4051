/**
 * Keeps `seq` unique for the life of the data directory, across restarts,
 * crashes, power loss and a quarantined spool: seqs are handed out from
 * blocks reserved in a small file (`seq.next`) before any seq of the block
 * is used. The file is replaced so that a power loss leaves the old or the
 * new reservation, never less: the new content is written to a temp file
 * and fsynced, renamed over `seq.next`, and the directory is fsynced so the
 * rename itself is on disk before a seq of the new block is handed out.
 * A crash wastes at most one block.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SpillwayError } from '../errors.js';
import { writeAtomically } from './atomic-file.js';

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
    writeAtomically(this.#file, `${upTo}\n`, true);
    this.#reserved = upTo;
  }
}
