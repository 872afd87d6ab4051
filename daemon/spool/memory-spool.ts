/**
 * A spool in memory: the reference implementation of `SpoolPort`, used by
 * the property tests of the core and checked against the SQLite spool by the
 * shared contract suite. Not for production (it is not durable).
 */
import { lastSeq, SPOOL_ROW_OVERHEAD_BYTES, SpoolError, SpoolFullError, type Deleted, type DeletedOldest, type Released, type ReleasedOldest, type SpoolPort, type StoredRecord, type StreamSummary } from './spool-port.js';

export class MemorySpool implements SpoolPort {
  readonly #streams = new Map<string, StoredRecord[]>();
  #groupBits: ReadonlyMap<string, number> = new Map([['default', 0]]);
  /** Several groups: attempts (and failed ones) by `${seq}:${bit}`. */
  readonly #attempts = new Map<string, { readonly attempt: number; readonly failures: number }>();
  /** When set, writes (and deletes, which write too) fail as on a full disk. */
  full = false;

  write(records: readonly StoredRecord[], deletes: readonly number[] = []): void {
    if (this.full) throw new SpoolFullError('memory spool marked full');
    if (deletes.length > 0) this.#deleteSeqs(deletes);
    for (let r of records) {
      let list = this.#streams.get(r.stream);
      if (list === undefined) this.#streams.set(r.stream, (list = []));
      const { groupAttempts, ...row } = r;
      for (const a of groupAttempts ?? []) this.#attempts.set(`${r.seq}:${a.bit}`, { attempt: a.attempt, failures: a.failures });
      r = { ...row, failures: r.failures ?? 0, owers: r.owers ?? 1 };
      if (list.length > 0 && (list[list.length - 1] as StoredRecord).seq > r.seq) {
        list.push(r);
        list.sort((a, b) => a.seq - b.seq);
      } else list.push(r);
    }
  }

  read(stream: string, afterSeq: number, uptoSeq: number, limit: number): StoredRecord[] {
    return this.#range(stream, afterSeq, uptoSeq).slice(0, limit);
  }

  deleteOldest(stream: string, afterSeq: number, uptoSeq: number, n: number): DeletedOldest {
    this.#failIfFull();
    const hit = this.#range(stream, afterSeq, uptoSeq).slice(0, Math.max(0, n));
    return { ...this.#remove(stream, new Set(hit)), last: lastSeq(hit, afterSeq) };
  }

  deleteBornBefore(stream: string, afterSeq: number, uptoSeq: number, bornBefore: number): Deleted {
    this.#failIfFull();
    return this.#remove(stream, new Set(this.#range(stream, afterSeq, uptoSeq).filter((r) => r.born < bornBefore)));
  }

  delete(seqs: readonly number[]): void {
    this.#failIfFull();
    this.#deleteSeqs(seqs);
  }

  #deleteSeqs(seqs: readonly number[]): void {
    const gone = new Set(seqs);
    for (const [name, list] of this.#streams) this.#streams.set(name, list.filter((r) => !gone.has(r.seq)));
    this.#forgetAttempts(gone);
  }

  /** Rows deleted take their group delivery counts along. */
  #forgetAttempts(seqs: ReadonlySet<number>): void {
    for (const key of [...this.#attempts.keys()]) if (seqs.has(Number(key.split(':')[0]))) this.#attempts.delete(key);
  }

  setAttempts(records: ReadonlyArray<{ readonly seq: number; readonly attempt: number; readonly failures?: number }>): void {
    this.#failIfFull();
    const by = new Map(records.map((r) => [r.seq, r]));
    for (const [name, list] of this.#streams)
      this.#streams.set(
        name,
        list.map((r) => {
          const u = by.get(r.seq);
          return u === undefined ? r : { ...r, attempt: u.attempt, failures: u.failures ?? 0 };
        }),
      );
  }

  summary(): StreamSummary[] {
    const out: StreamSummary[] = [];
    for (const [stream, list] of this.#streams) {
      if (list.length === 0) continue;
      out.push({ stream, records: list.length, payloadBytes: list.reduce((a, r) => a + r.payload.length, 0), maxSeq: (list[list.length - 1] as StoredRecord).seq });
    }
    return out;
  }

  hasRoom(): boolean {
    return !this.full;
  }

  sizeOnDisk(): number {
    let bytes = 0;
    for (const list of this.#streams.values()) for (const r of list) bytes += r.payload.length + SPOOL_ROW_OVERHEAD_BYTES;
    return bytes;
  }

  readFor(stream: string, afterSeq: number, uptoSeq: number, limit: number, bit: number): StoredRecord[] {
    return this.#range(stream, afterSeq, uptoSeq)
      .filter((r) => owers(r) & bit)
      .slice(0, limit)
      .map((r) => ({ ...r, ...this.#attempts.get(`${r.seq}:${bit}`) }));
  }

  setGroupAttempts(records: ReadonlyArray<{ readonly seq: number; readonly bit: number; readonly attempt: number; readonly failures?: number }>): void {
    this.#failIfFull();
    for (const r of records) this.#attempts.set(`${r.seq}:${r.bit}`, { attempt: r.attempt, failures: r.failures ?? 0 });
  }

  releaseOldest(stream: string, afterSeq: number, uptoSeq: number, n: number, bit: number): ReleasedOldest {
    this.#failIfFull();
    const hit = this.#owed(stream, afterSeq, uptoSeq, bit).slice(0, Math.max(0, n));
    return { ...this.#release(stream, hit, bit), last: lastSeq(hit, afterSeq) };
  }

  releaseBornBefore(stream: string, afterSeq: number, uptoSeq: number, bornBefore: number, bit: number): Released {
    this.#failIfFull();
    return this.#release(stream, this.#owed(stream, afterSeq, uptoSeq, bit).filter((r) => r.born < bornBefore), bit);
  }

  #owed(stream: string, afterSeq: number, uptoSeq: number, bit: number): StoredRecord[] {
    return this.#range(stream, afterSeq, uptoSeq).filter((r) => owers(r) & bit);
  }

  release(seqs: readonly number[], bit: number): Deleted {
    this.#failIfFull();
    const wanted = new Set(seqs);
    let records = 0;
    let payloadBytes = 0;
    for (const [name, list] of this.#streams) {
      const hit = list.filter((r) => wanted.has(r.seq) && owers(r) & bit);
      const freed = this.#release(name, hit, bit).freed;
      records += freed.records;
      payloadBytes += freed.payloadBytes;
    }
    return { records, payloadBytes };
  }

  releaseGroups(mask: number): Released {
    this.#failIfFull();
    let records = 0;
    let payloadBytes = 0;
    let freedRecords = 0;
    let freedBytes = 0;
    for (const [name, list] of this.#streams) {
      const r = this.#release(name, list.filter((x) => owers(x) & mask), mask);
      records += r.records;
      payloadBytes += r.payloadBytes;
      freedRecords += r.freed.records;
      freedBytes += r.freed.payloadBytes;
    }
    return { records, payloadBytes, freed: { records: freedRecords, payloadBytes: freedBytes } };
  }

  summaryFor(bit: number): StreamSummary[] {
    const out: StreamSummary[] = [];
    for (const [stream, all] of this.#streams) {
      const list = all.filter((r) => owers(r) & bit);
      if (list.length === 0) continue;
      out.push({ stream, records: list.length, payloadBytes: list.reduce((a, r) => a + r.payload.length, 0), maxSeq: (list[list.length - 1] as StoredRecord).seq });
    }
    return out;
  }

  groupBits(): ReadonlyMap<string, number> {
    return this.#groupBits;
  }

  setGroupBits(bits: ReadonlyMap<string, number>): void {
    this.#failIfFull();
    this.#groupBits = new Map(bits);
  }

  /** Clears `mask` on the rows `hit` of a stream; deletes the rows nobody owes any more. */
  #release(stream: string, hit: readonly StoredRecord[], mask: number): Released {
    const list = this.#streams.get(stream) ?? [];
    const set = new Set(hit);
    let payloadBytes = 0;
    let freedRecords = 0;
    let freedBytes = 0;
    const kept: StoredRecord[] = [];
    for (const r of list) {
      if (!set.has(r)) {
        kept.push(r);
        continue;
      }
      payloadBytes += r.payload.length;
      for (let b = 1; b < 2 ** 31; b *= 2) if (mask & b) this.#attempts.delete(`${r.seq}:${b}`);
      const left = owers(r) & ~mask;
      if (left !== 0) kept.push({ ...r, owers: left });
      else {
        freedRecords++;
        freedBytes += r.payload.length;
      }
    }
    this.#streams.set(stream, kept);
    return { records: hit.length, payloadBytes, freed: { records: freedRecords, payloadBytes: freedBytes } };
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
    this.#forgetAttempts(new Set([...victims].map((r) => r.seq)));
    let payloadBytes = 0;
    for (const r of victims) payloadBytes += r.payload.length;
    return { records: victims.size, payloadBytes };
  }
}

function owers(r: StoredRecord): number {
  return r.owers ?? 1;
}
