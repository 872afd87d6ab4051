/**
 * What the spool owed, per stream, kept beside it in `<spool file>.owed` so
 * that a spool found damaged at the next start can say what it lost.
 *
 * Written at a clean stop (`clean: true`, fsynced: then it is exact: the
 * spool held precisely these records), right after open (`clean: false`: a
 * crash from now on leaves no clean record) and at each checkpoint round
 * (`clean: false`, not fsynced: as of that moment; records acked since are
 * gone on purpose, records spilled since are not in it). The file is
 * replaced atomically (temp file, rename); a file that cannot be parsed is
 * treated as absent.
 */
import { readFileSync } from 'node:fs';
import { writeAtomically } from './atomic-file.js';

export interface OwedStream {
  readonly stream: string;
  readonly records: number;
  /** The lowest and highest seq of the stream's records then on disk. */
  readonly minSeq: number;
  readonly maxSeq: number;
}

export interface OwedState {
  readonly clean: boolean;
  /** The spool's page size (a damaged header is rebuilt with it). */
  readonly pageSize: number;
  readonly streams: readonly OwedStream[];
}

export function owedFile(spoolFile: string): string {
  return `${spoolFile}.owed`;
}

export function readOwed(spoolFile: string): OwedState | undefined {
  let text: string;
  try {
    text = readFileSync(owedFile(spoolFile), 'utf8');
  } catch {
    return undefined; // absent (first start) or unreadable: nothing is known
  }
  try {
    const v = JSON.parse(text) as OwedState;
    if (typeof v.clean !== 'boolean' || !Number.isSafeInteger(v.pageSize) || !Array.isArray(v.streams)) return undefined;
    const ok = v.streams.every((s) => typeof s.stream === 'string' && [s.records, s.minSeq, s.maxSeq].every((n) => Number.isSafeInteger(n) && n >= 0));
    return ok ? v : undefined;
  } catch {
    return undefined; // torn by a power loss: nothing is known
  }
}

/** Replaces the state file; `durable`: fsync the file before the rename and the directory after it. */
export function writeOwed(spoolFile: string, state: OwedState, durable: boolean): void {
  const file = owedFile(spoolFile);
  writeAtomically(file, `${JSON.stringify(state)}\n`, durable);
}
