/**
 * Runs SQLite WAL checkpoints on the spool in a worker thread, on a
 * connection of its own: a checkpoint fsyncs the database file, which on an
 * SD card can take tens of ms or more, and must not stall the event loop.
 * Messages in: the checkpoint mode ('PASSIVE' | 'TRUNCATE'). Out: the result
 * (`busy`, `log`, `checkpointed` as `PRAGMA wal_checkpoint` returns them), or
 * the error (a full disk: SQLITE_FULL; the next checkpoint tries again).
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { file } = workerData as { file: string };
const db = new Database(file);
// TRUNCATE waits for the writer (the daemon's connection) at most this long; PASSIVE never waits.
db.pragma('busy_timeout = 1000');

parentPort?.on('message', (mode: 'PASSIVE' | 'TRUNCATE') => {
  try {
    const [row] = db.pragma(`wal_checkpoint(${mode})`) as Array<{ busy: number; log: number; checkpointed: number }>;
    parentPort?.postMessage({ ok: true, busy: row?.busy ?? 0, log: row?.log ?? 0, checkpointed: row?.checkpointed ?? 0 });
  } catch (err) {
    parentPort?.postMessage({ ok: false, error: `${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}` });
  }
});
