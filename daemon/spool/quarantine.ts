/**
 * What a quarantine reports: the rows salvaged from the moved file
 * (salvage.ts) against what the spool owed (owed-state.ts), per stream.
 */
import type { OwedState } from './owed-state.js';
import { salvage } from './salvage.js';
import type { StoredRecord } from './spool-port.js';

/** A corrupt file moved aside, and what could be saved from it. */
export interface Quarantined {
  readonly path: string;
  readonly reason: string;
  /** Records read back from the moved file into the fresh spool. */
  readonly salvaged: number;
  /**
   * Records owed that could not be read, per stream (only streams that lost some).
   * Exact when `owedFrom` is 'clean-stop'; from 'checkpoint' an upper bound (records
   * acked after that checkpoint count as lost); from 'unknown' empty: nothing says
   * what was owed, and `unreadableSeqs` is the only bound.
   */
  readonly lost: ReadonlyArray<{ readonly stream: string; readonly records: number }>;
  readonly owedFrom: 'clean-stop' | 'checkpoint' | 'unknown';
  /** Seqs in the ranges that could not be read (an upper bound on the rows lost); null: up to the end of the table. */
  readonly unreadableSeqs: number | null;
  /** Set when nothing at all could be read (the schema or the table root is gone). */
  readonly salvageError?: string;
}

/** Salvages `path` into `keep` and says what was lost of what `owed` lists. */
export function salvageReport(path: string, reason: string, owed: OwedState | undefined, keep: (rows: StoredRecord[]) => void): Quarantined & { readonly groupBits?: ReadonlyMap<string, number> } {
  const r = salvage(path, owed?.pageSize ?? 4096, keep);
  const lost: Array<{ stream: string; records: number }> = [];
  for (const o of owed?.streams ?? []) {
    // Only seqs the state covered count against it: rows spilled after it was written are extra.
    const saved = (r.salvaged.get(o.stream) ?? []).filter((seq) => seq >= o.minSeq && seq <= o.maxSeq).length;
    if (o.records > saved) lost.push({ stream: o.stream, records: o.records - saved });
  }
  const unbounded = r.unreadable.some((u) => u.upto >= Number.MAX_SAFE_INTEGER);
  return {
    path,
    reason,
    salvaged: r.rows,
    lost,
    owedFrom: owed === undefined ? 'unknown' : owed.clean ? 'clean-stop' : 'checkpoint',
    unreadableSeqs: unbounded ? null : r.unreadable.reduce((a, u) => a + u.upto - u.after, 0),
    ...(r.error === undefined ? {} : { salvageError: r.error }),
    ...(r.groupBits === undefined ? {} : { groupBits: r.groupBits }),
  };
}
