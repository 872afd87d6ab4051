/**
 * A spool in memory: the reference implementation of `SpoolPort`, used by
 * the property tests of the core and checked against the SQLite spool by the
 * shared contract suite. Not for production (it is not durable).
 */
import { SPOOL_ROW_OVERHEAD_BYTES, SpoolError, SpoolFullError, type Deleted, type SpoolPort, type StoredRecord, type StreamSummary } from './spool-port.js';

export class MemorySpool implements SpoolPort {
  readonly #streams = new Map<string, StoredRecord[]>();
  /** When set, writes (and deletes, which write too) fail as on a full disk. */
  full = false;

  write(records: readonly StoredRecord[]): void {
    if (this.full) throw new SpoolFullError('memory spool marked full');
    for (const r of records) {
      let list = this.#streams.get(r.stream);
      if (list === undefined) this.#streams.set(r.stream, (list = []));
      if (list.length > 0 && (list[list.length - 1] as StoredRecord).seq > r.seq) {
        list.push(r);
        list.sort((a, b) => a.seq - b.seq);
      } else list.push(r);
    }
  }

  read(stream: string, afterSeq: number, uptoSeq: number, limit: number): StoredRecord[] {
    return this.#range(stream, afterSeq, uptoSeq).slice(0, limit);
  }

  deleteOldest(stream: string, afterSeq: number, uptoSeq: number, n: number): Deleted {
    this.#failIfFull();
    return this.#remove(stream, new Set(this.#range(stream, afterSeq, uptoSeq).slice(0, n)));
  }

  deleteBornBefore(stream: string, afterSeq: number, uptoSeq: number, bornBefore: number): Deleted {
    this.#failIfFull();
    return this.#remove(stream, new Set(this.#range(stream, afterSeq, uptoSeq).filter((r) => r.born < bornBefore)));
  }

  delete(seqs: readonly number[]): void {
    this.#failIfFull();
    const gone = new Set(seqs);
    for (const [name, list] of this.#streams) this.#streams.set(name, list.filter((r) => !gone.has(r.seq)));
  }

  setAttempts(records: ReadonlyArray<{ readonly seq: number; readonly attempt: number }>): void {
    this.#failIfFull();
    const by = new Map(records.map((r) => [r.seq, r.attempt]));
    for (const [name, list] of this.#streams) this.#streams.set(name, list.map((r) => (by.has(r.seq) ? { ...r, attempt: by.get(r.seq) as number } : r)));
  }

  summary(): StreamSummary[] {
    const out: StreamSummary[] = [];
    for (const [stream, list] of this.#streams) {
      if (list.length === 0) continue;
      out.push({ stream, records: list.length, payloadBytes: list.reduce((a, r) => a + r.payload.length, 0), maxSeq: (list[list.length - 1] as StoredRecord).seq });
    }
    return out;
  }

  sizeOnDisk(): number {
    let bytes = 0;
    for (const list of this.#streams.values()) for (const r of list) bytes += r.payload.length + SPOOL_ROW_OVERHEAD_BYTES;
    return bytes;
  }

  #failIfFull(): void {
    if (this.full) throw new SpoolError('memory spool marked full');
  }

  #range(stream: string, afterSeq: number, uptoSeq: number): StoredRecord[] {
    return (this.#streams.get(stream) ?? []).filter((r) => r.seq > afterSeq && r.seq <= uptoSeq);
  }

  #remove(stream: string, victims: Set<StoredRecord>): Deleted {
    const list = this.#streams.get(stream) ?? [];
    this.#streams.set(stream, list.filter((r) => !victims.has(r)));
    let payloadBytes = 0;
    for (const r of victims) payloadBytes += r.payload.length;
    return { records: victims.size, payloadBytes };
  }
}
