/**
 * Runs SQLite WAL checkpoints on the spool in a worker thread, on a
 * connection of its own: a checkpoint fsyncs the database file, which on an
 * SD card can take tens of ms or more, and must not stall the event loop.
 * Messages in: the checkpoint mode ('PASSIVE' | 'TRUNCATE'). Out: the result.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { file } = workerData as { file: string };
const db = new Database(file);
db.pragma('busy_timeout = 5000');

parentPort?.on('message', (mode: 'PASSIVE' | 'TRUNCATE') => {
  try {
    const [row] = db.pragma(`wal_checkpoint(${mode})`) as Array<{ busy: number; log: number; checkpointed: number }>;
    parentPort?.postMessage({ ok: true, busy: row?.busy ?? 0, log: row?.log ?? 0, checkpointed: row?.checkpointed ?? 0 });
  } catch (err) {
    parentPort?.postMessage({ ok: false, error: (err as Error).message });
  }
});
