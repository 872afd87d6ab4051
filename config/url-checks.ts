/**
 * The URLs the daemon connects to, checked beyond the schema's scheme
 * pattern, so a URL that `run` could never connect to is refused by
 * `check-config` too (exit 78) rather than retried forever:
 *
 *   sources.mqtt[].url      mqtt:// or mqtts://
 *   consumers.dial[].url    ws:// or wss://
 *   upstreams.mqtt[].url    mqtt:// or mqtts://
 *
 * Each must parse as a URL with a host, and a port, when given, from 1 to
 * 65535. Pure; values of the wrong type or scheme are left to the schema.
 */
import { formatPath, formatValue } from './describe-issue.js';
import { valueAt } from './schema-walk.js';

const URL_LISTS: ReadonlyArray<{ readonly path: readonly string[]; readonly scheme: RegExp }> = [
  { path: ['sources', 'mqtt'], scheme: /^mqtts?:\/\/./ },
  { path: ['consumers', 'dial'], scheme: /^wss?:\/\/./ },
  { path: ['upstreams', 'mqtt'], scheme: /^mqtts?:\/\/./ },
];

export function checkUrls(input: unknown): string[] {
  const problems: string[] = [];
  for (const { path, scheme } of URL_LISTS) {
    const list = valueAt(input, path);
    if (!Array.isArray(list)) continue;
    list.forEach((_entry: unknown, i) => {
      const url = valueAt(list, [i, 'url']);
      if (typeof url !== 'string' || !scheme.test(url)) return;
      const problem = urlProblem(url);
      if (problem !== undefined) problems.push(`${formatPath([...path, i, 'url'])}: ${formatValue(url)} is not allowed: ${problem}`);
    });
  }
  return problems;
}

/** What is wrong with a URL of the right scheme, or undefined. */
export function urlProblem(url: string): string | undefined {
  // The authority's port, read before parsing: WHATWG URL refuses an out-of-range port without saying so.
  const authority = /^[a-z]+:\/\/([^/?#]*)/i.exec(url)?.[1] ?? '';
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const port = /:([^:\]]*)$/.exec(hostPort)?.[1];
  if (port !== undefined && port !== '') {
    if (!/^\d+$/.test(port)) return `its port ${JSON.stringify(port)} is not a number: expected a port from 1 to 65535`;
    const n = Number(port);
    if (n < 1 || n > 65_535) return `its port ${n} is out of range: expected a port from 1 to 65535`;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'it does not parse as a URL: expected scheme://host[:port][/path]';
  }
  if (parsed.hostname === '') return 'it names no host: expected scheme://host[:port][/path]';
  return undefined;
}
