/**
 * The daemon's own listeners, checked together: two of them on one port
 * would refuse each other at start (EADDRINUSE, an exit systemd restarts
 * forever), so `check-config` and `run` refuse the config instead (78).
 *
 *   sources.embeddedBroker   host:port (when enabled)
 *   consumers.listen         host:port (when enabled)
 *   admin                    host:port (when enabled)
 *
 * Two clash, for sure, when their ports are equal (0, a port the system
 * picks, never clashes) and their hosts are the same (case and IPv6
 * brackets aside), or one is `0.0.0.0` and the other an IPv4 address, or
 * one is `::` (both families on Linux) and the other an address or
 * `localhost`. Anything less certain (`localhost` against `127.0.0.1`, which
 * depends on the resolver) is left to the start, which then exits 1. Pure:
 * it runs on the parsed config.
 */
import { isIP } from 'node:net';
import type { Config } from './schema.js';

/** A host as the listener takes it: lower case, without IPv6 brackets, `::` for every spelling of the IPv6 wildcard. */
function normal(host: string): string {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return isIP(h) === 6 && /^[0:]+$/.test(h) ? '::' : h;
}

function clash(a: string, b: string): boolean {
  if (a === b) return true;
  const covers = (w: string, o: string) => (w === '0.0.0.0' && isIP(o) === 4) || (w === '::' && (isIP(o) !== 0 || o === 'localhost'));
  return covers(a, b) || covers(b, a);
}

interface Listener {
  readonly key: string;
  /** As configured (for messages), and `normal`. */
  readonly shown: string;
  readonly host: string;
  readonly port: number;
}

export function checkListeners(config: Config): string[] {
  const listeners: Listener[] = [];
  const add = (key: string, l: { enabled: boolean; host: string; port: number }) => {
    if (l.enabled && l.port !== 0) listeners.push({ key, shown: isIP(l.host) === 6 ? `[${l.host}]` : l.host, host: normal(l.host), port: l.port });
  };
  add('sources.embeddedBroker', config.sources.embeddedBroker);
  add('consumers.listen', config.consumers.listen);
  add('admin', config.admin);
  const problems: string[] = [];
  for (const [i, b] of listeners.entries()) {
    const a = listeners.slice(0, i).find((l) => l.port === b.port && clash(l.host, b.host));
    if (a !== undefined) problems.push(`${b.key}.port: ${b.port} is not allowed: ${a.key} listens on ${a.shown}:${a.port} already; expected a port of its own`);
  }
  return problems;
}
