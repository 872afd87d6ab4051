/**
 * The logger: pino JSON lines on stdout (journald keeps them). Writes are
 * synchronous: logs are rare by design (nothing per record above `debug`),
 * and a synchronous write is never lost at exit. A `url` field is written
 * without its user name and password, whoever logs it.
 */
import { pino, type Logger } from 'pino';
import { shownUrl } from './uplink.js';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { log: (o) => (typeof o['url'] === 'string' && o['url'].includes('@') ? { ...o, url: shownUrl(o['url']) } : o) },
    },
    pino.destination({ fd: 1, sync: true }),
  );
}
