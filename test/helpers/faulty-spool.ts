/**
 * Spool faults for the core's property models: the `skip`-th call into the
 * spool during one step fails, with the error SQLite really raises (full,
 * I/O, busy, corrupt). On the SQLite spool the fault comes from below it
 * (sqlite-faults.ts: the n-th statement, in the middle of a transaction
 * too); on the memory spool the call fails before it changes anything, as
 * SQLite rolls a failed transaction back, with the error the SQLite spool
 * raises for that code.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MemorySpool } from '../../daemon/spool/memory-spool.js';
import { SpoolError, SpoolFullError, type SpoolPort } from '../../daemon/spool/spool-port.js';
import { SqliteSpool } from '../../daemon/spool/sqlite-spool.js';
import { injectFault } from './sqlite-faults.js';
import { makeTempDirSync, removeTempDirSync } from './tmp.js';

export const FAULT_CODES = ['SQLITE_FULL', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_READ', 'SQLITE_BUSY', 'SQLITE_CORRUPT'] as const;
export type FaultCode = (typeof FAULT_CODES)[number];

/** Faults that fired since the last reset (a property run checks that it hit the core at all). */
export const faults = { fired: 0 };

export class FaultyMemorySpool extends MemorySpool {
  #armed: { code: FaultCode; skip: number } | undefined;

  arm(code: FaultCode, skip: number): () => void {
    this.#armed = { code, skip };
    return () => (this.#armed = undefined);
  }

  #call(what: string, writes: boolean): void {
    const a = this.#armed;
    if (a === undefined || a.skip-- > 0) return;
    this.#armed = undefined;
    faults.fired++;
    const message = `spool ${what} failed: ${a.code}`;
    throw writes && a.code === 'SQLITE_FULL' ? new SpoolFullError(message) : new SpoolError(message);
  }

  override write(...a: Parameters<MemorySpool['write']>) {
    this.#call('write', true);
    return super.write(...a);
  }
  override read(...a: Parameters<MemorySpool['read']>) {
    this.#call('read', false);
    return super.read(...a);
  }
  override readFor(...a: Parameters<MemorySpool['readFor']>) {
    this.#call('read', false);
    return super.readFor(...a);
  }
  override delete(...a: Parameters<MemorySpool['delete']>) {
    this.#call('delete', true);
    return super.delete(...a);
  }
  override deleteOldest(...a: Parameters<MemorySpool['deleteOldest']>) {
    this.#call('delete', true);
    return super.deleteOldest(...a);
  }
  override deleteBornBefore(...a: Parameters<MemorySpool['deleteBornBefore']>) {
    this.#call('delete', true);
    return super.deleteBornBefore(...a);
  }
  override release(...a: Parameters<MemorySpool['release']>) {
    this.#call('release', true);
    return super.release(...a);
  }
  override releaseOldest(...a: Parameters<MemorySpool['releaseOldest']>) {
    this.#call('release', true);
    return super.releaseOldest(...a);
  }
  override releaseBornBefore(...a: Parameters<MemorySpool['releaseBornBefore']>) {
    this.#call('release', true);
    return super.releaseBornBefore(...a);
  }
  override releaseGroups(...a: Parameters<MemorySpool['releaseGroups']>) {
    this.#call('release', true);
    return super.releaseGroups(...a);
  }
  override setAttempts(...a: Parameters<MemorySpool['setAttempts']>) {
    this.#call('attempts', true);
    return super.setAttempts(...a);
  }
  override setGroupAttempts(...a: Parameters<MemorySpool['setGroupAttempts']>) {
    this.#call('attempts', true);
    return super.setGroupAttempts(...a);
  }
}

/** Arms one fault on `spool` (a FaultyMemorySpool, or a SQLite spool from below); the function returned disarms it. */
export function armFault(spool: SpoolPort, code: FaultCode, skip: number): () => void {
  if (spool instanceof FaultyMemorySpool) return spool.arm(code, skip);
  const injector = injectFault({ code, sql: /./, skip });
  return () => {
    faults.fired += injector.fired;
    injector.restore();
  };
}

/** Runs `body` (a property run) and checks that more than `atLeast` spool faults fired in it: the faults reached the core. Callers scale it with their number of runs. */
export function expectFaultsFired(atLeast: number, body: () => void): void {
  faults.fired = 0;
  body();
  assert.ok(faults.fired > atLeast, `spool faults hit the core (${faults.fired} fired)`);
}

/** Gives `body` a maker of fresh SQLite spools in a temp directory (`name`), removed after. */
export function withSqliteSpools(name: string, body: (open: () => SqliteSpool) => void): void {
  const dir = makeTempDirSync(name);
  let n = 0;
  try {
    body(() => SqliteSpool.open({ file: join(dir, `spool-${n++}.db`), synchronous: 'normal' }).spool);
  } finally {
    removeTempDirSync(dir);
  }
}

/** What a `SickSpool` refuses while told to. */
export interface Sickness {
  /** Reads (a bad page). */
  unreadable: boolean;
  /** Deletes (a WAL that filled the disk). */
  refuseDeletes: boolean;
  /** Writes of rows. */
  refuseWrites: boolean;
  /** Releases of a removed group's bit from every row. */
  refuseReleases: boolean;
  /** Releases of a group's bit from the rows it is done with (several groups), as a delete is refused. */
  refuseRowReleases: boolean;
  /** Reads and writes of the group to bit map. */
  unreadableBits: boolean;
  refuseBits: boolean;
  /** False: room for a write is refused (below the reserve). */
  room: boolean;
}

/**
 * For exact examples: a memory spool that fails as a sick disk does, call
 * by call, while a flag says so (the property models use FaultyMemorySpool).
 * Counts the writes of the group to bit map it took.
 */
export class SickSpool extends MemorySpool implements Sickness {
  unreadable = false;
  refuseDeletes = false;
  refuseWrites = false;
  refuseReleases = false;
  refuseRowReleases = false;
  unreadableBits = false;
  refuseBits = false;
  room = true;
  bitWrites = 0;

  constructor(sickness: Partial<Sickness> = {}) {
    super();
    Object.assign(this, sickness);
  }

  override read(...a: Parameters<MemorySpool['read']>) {
    if (this.unreadable) throw new SpoolError('spool read failed: SQLITE_IOERR_READ');
    return super.read(...a);
  }
  override delete(...a: Parameters<MemorySpool['delete']>) {
    if (this.refuseDeletes) throw new SpoolError('spool delete failed: SQLITE_FULL');
    return super.delete(...a);
  }
  override write(...a: Parameters<MemorySpool['write']>) {
    if (this.refuseWrites) throw new SpoolError('spool write failed: SQLITE_FULL');
    return super.write(...a);
  }
  override release(...a: Parameters<MemorySpool['release']>) {
    if (this.refuseRowReleases) throw new SpoolError('spool release failed: SQLITE_FULL');
    return super.release(...a);
  }
  override releaseGroups(...a: Parameters<MemorySpool['releaseGroups']>) {
    if (this.refuseReleases) throw new SpoolError('spool write failed: SQLITE_BUSY');
    return super.releaseGroups(...a);
  }
  override groupBits() {
    if (this.unreadableBits) throw new SpoolError('spool read failed: SQLITE_IOERR_READ');
    return super.groupBits();
  }
  override setGroupBits(...a: Parameters<MemorySpool['setGroupBits']>) {
    if (this.refuseBits) throw new SpoolError('spool write failed: SQLITE_FULL');
    this.bitWrites++;
    return super.setGroupBits(...a);
  }
  override hasRoom() {
    return this.room && super.hasRoom();
  }
}
