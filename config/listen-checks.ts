/**
 * The daemon's own listeners, checked together: two of them on one port
 * would refuse each other at start (EADDRINUSE, an exit systemd restarts
 * forever), so `check-config` and `run` refuse the config instead (78).
 *
 *   sources.embeddedBroker   host:port (when enabled)
 *   consumers.listen         host:port (when enabled)
 *   admin                    host:port (when enabled)
 *
 * Two clash when their ports are equal (0, a port the system picks, never
 * clashes) and their hosts are the same address, or either is a wildcard
 * (0.0.0.0, ::) that takes the port on every address. `localhost` counts
 * as 127.0.0.1. Pure: it runs on the parsed config.
 */
import type { Config } from './schema.js';

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

interface Listener {
  readonly key: string;
  readonly host: string;
  readonly port: number;
}

export function checkListeners(config: Config): string[] {
  const listeners: Listener[] = [];
  const add = (key: string, l: { enabled: boolean; host: string; port: number }) => {
    if (l.enabled && l.port !== 0) listeners.push({ key, host: l.host === 'localhost' ? '127.0.0.1' : l.host, port: l.port });
  };
  add('sources.embeddedBroker', config.sources.embeddedBroker);
  add('consumers.listen', config.consumers.listen);
  add('admin', config.admin);
  const problems: string[] = [];
  for (const [i, b] of listeners.entries()) {
    const a = listeners.slice(0, i).find((l) => l.port === b.port && (l.host === b.host || WILDCARDS.has(l.host) || WILDCARDS.has(b.host)));
    if (a !== undefined) problems.push(`${b.key}.port: ${b.port} is not allowed: ${a.key} listens on ${a.host}:${a.port} already; expected a port of its own`);
  }
  return problems;
}
