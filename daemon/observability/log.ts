/**
 * The logger: pino JSON lines on stdout (journald keeps them). Writes are
 * synchronous: logs are rare by design (nothing per record above `debug`),
 * and a synchronous write is never lost at exit.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: 1, sync: true }),
  );
}
