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
// TRUNCATE waits for the writer (the daemon's connection: a commit, at most an fsync) and then for
// readers at most this long; PASSIVE never waits. While it waits for readers it holds the write
// lock, so the daemon's next spool write waits too, on the event loop: a reader that holds a
// snapshot (an operator's sqlite3 shell, a backup) stalled the daemon 1.2 s a round at 1,000 ms.
// The round that gives up is retried (wal-guard.ts), and the quota refuses what the WAL has no room for.
db.pragma('busy_timeout = 100');

parentPort?.on('message', (mode: 'PASSIVE' | 'TRUNCATE') => {
  try {
    const [row] = db.pragma(`wal_checkpoint(${mode})`) as Array<{ busy: number; log: number; checkpointed: number }>;
    parentPort?.postMessage({ ok: true, busy: row?.busy ?? 0, log: row?.log ?? 0, checkpointed: row?.checkpointed ?? 0 });
  } catch (err) {
    parentPort?.postMessage({ ok: false, error: `${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}` });
  }
});
