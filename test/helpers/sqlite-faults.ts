/**
 * Faults from below the SQLite spool: the n-th execution of a chosen
 * statement throws the very error better-sqlite3 raises when SQLite fails
 * (`SqliteError` with SQLite's extended code: SQLITE_FULL, SQLITE_IOERR_WRITE,
 * SQLITE_BUSY, SQLITE_CORRUPT...). The spool under test keeps its own error
 * mapping and its own transactions: when the fault hits in the middle of a
 * transaction, better-sqlite3 rolls it back exactly as after a real failure.
 *
 * Statements are matched by their SQL text, so the injector needs no access
 * to the spool's private connection. One injector at a time (it patches the
 * shared Statement prototype); `restore()` undoes it.
 */
import Database from 'better-sqlite3';

type Method = 'run' | 'all' | 'get';

export interface Fault {
  /** SQLite's (extended) result code, e.g. 'SQLITE_IOERR_WRITE'. */
  readonly code: string;
  /** Which statements fail: a regex on their SQL text ('COMMIT', 'INSERT INTO records', ...). */
  readonly sql: RegExp;
  /** The first `skip` matching executions succeed; the next one fails. */
  readonly skip?: number;
}

/** The messages SQLite gives for these codes (sqlite3ErrStr). */
const MESSAGES: Readonly<Record<string, string>> = {
  SQLITE_FULL: 'database or disk is full',
  SQLITE_IOERR: 'disk I/O error',
  SQLITE_IOERR_WRITE: 'disk I/O error',
  SQLITE_IOERR_FSYNC: 'disk I/O error',
  SQLITE_BUSY: 'database is locked',
  SQLITE_CORRUPT: 'database disk image is malformed',
  SQLITE_READONLY: 'attempt to write a readonly database',
};

export interface Injector {
  /** How many times the fault fired. */
  readonly fired: number;
  restore(): void;
}

const probe = new Database(':memory:');
const statementPrototype = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<Method, (...args: unknown[]) => unknown>;
probe.close();

/** Arms one fault; it fires once, then the statements behave again. */
export function injectFault(fault: Fault): Injector {
  const originals = new Map<Method, (...args: unknown[]) => unknown>();
  let seen = 0;
  let fired = 0;
  for (const method of ['run', 'all', 'get'] as const) {
    const original = statementPrototype[method];
    originals.set(method, original);
    statementPrototype[method] = function (this: { source: string }, ...args: unknown[]) {
      if (fired === 0 && fault.sql.test(this.source) && seen++ >= (fault.skip ?? 0)) {
        fired++;
        throw new Database.SqliteError(MESSAGES[fault.code] ?? fault.code, fault.code);
      }
      return original.apply(this, args);
    };
  }
  return {
    get fired() {
      return fired;
    },
    restore() {
      for (const [method, original] of originals) statementPrototype[method] = original;
    },
  };
}
