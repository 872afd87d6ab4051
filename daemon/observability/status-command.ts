/**
 * `spillway status [--admin URL | --config FILE] [--json] [--timeout MS]`:
 * reads `GET /status` from a running daemon's admin port (--admin, else the
 * `admin` block of --config, else 127.0.0.1:7421) and prints a compact
 * summary, or with --json the status itself:
 *
 *   spillway ok · up 1h 0m · 2 streams · 1 consumer · 0 of 1 source down
 *   memory 7.3 KiB / 32.0 MiB (<0.1%) · spool 0 B / 1.0 GiB (0%) · in flight 6
 *   ingested 38 · acked 4 · dropped 3 (overflow 3) · recovered 0 · buffered 25 · spooled 0
 *
 *   STREAM         PRIO  WHEN FULL    RING FILL      RING  BUFFERED  SPOOLED  INGESTED  ACKED  DROPPED
 *   sensors/alarm     0  drop-newest         0%     0 / 5         0        0         8      4  3 (overflow 3)
 *   sensors/temp      1  spill              25%  25 / 100        25        0        30      0  0
 *
 *   CONSUMER  CREDIT  IN FLIGHT  SENT
 *   uplink         0          6    10
 *
 *   SOURCE  STATE  DETAIL
 *   mqtt    up     connected
 *
 * Exit status: 0 healthy; 1 degraded (the reasons are printed under the
 * first line); 69 (EX_UNAVAILABLE) the admin port cannot be reached or did
 * not answer a spillway status; 78 the --config file is invalid; 64 usage.
 * Names from the daemon (topics, consumers) are printed with control
 * characters escaped.
 */
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../../config/load.js';
import { DROP_REASONS } from '../core/record.js';
import { EXIT_CONFIG } from '../errors.js';
import { STATUS_VERSION, type Status } from './status.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:7421';
const EX_USAGE = 64;
const EX_UNAVAILABLE = 69;

export const STATUS_USAGE = `usage: spillway status [--admin URL | --config FILE] [--json] [--timeout MS]
  --admin URL     the daemon's admin port (default ${DEFAULT_ADMIN_URL})
  --config FILE   take the admin port from this config file instead
  --json          print the status as JSON
  --timeout MS    give up after this long (default 5000)
exit: 0 healthy, 1 degraded, 69 daemon unreachable, 78 invalid --config, 64 usage
`;

export interface StatusIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const processIo: StatusIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

export async function runStatus(argv: readonly string[], io: StatusIo = processIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { admin: { type: 'string', short: 'a' }, config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    io.stderr(`spillway status: ${(err as Error).message}\n${STATUS_USAGE}`);
    return EX_USAGE;
  }
  if (values.help === true) {
    io.stdout(STATUS_USAGE);
    return 0;
  }
  const timeoutMs = values.timeout === undefined ? 5_000 : Number(values.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    io.stderr(`spillway status: --timeout ${JSON.stringify(values.timeout)} is not allowed: expected a positive integer (ms)\n`);
    return EX_USAGE;
  }
  let admin = values.admin ?? DEFAULT_ADMIN_URL;
  if (values.admin === undefined && values.config !== undefined) {
    try {
      const config = await loadConfigFile(values.config);
      admin = adminUrl(config.admin.host, config.admin.port);
    } catch (err) {
      io.stderr(`spillway status: ${values.config}: ${(err as Error).message}\n`);
      return EXIT_CONFIG;
    }
  }
  let url: URL;
  try {
    url = new URL('status', admin.endsWith('/') ? admin : `${admin}/`);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('expected an http:// or https:// URL');
  } catch (err) {
    io.stderr(`spillway status: --admin ${JSON.stringify(admin)} is not allowed: ${(err as Error).message}\n`);
    return EX_USAGE;
  }

  let status: Status;
  try {
    const res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    if (!res.ok && res.status !== 503) throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
    const parsed: unknown = JSON.parse(body);
    if (!isStatus(parsed)) throw new Error('the answer is not a spillway status (is --admin the admin port?)');
    status = parsed;
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    io.stderr(`spillway status: cannot read ${url.href}: ${why}\n`);
    return EX_UNAVAILABLE;
  }
  io.stdout(values.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  return status.healthy ? 0 : 1;
}

/** Where to reach an admin port that listens on `host`: a wildcard address is reached on loopback. */
export function adminUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

function isStatus(v: unknown): v is Status {
  if (v === null || typeof v !== 'object') return false;
  const s = v as Record<string, unknown>;
  return s['version'] === STATUS_VERSION && typeof s['healthy'] === 'boolean' && typeof s['totals'] === 'object' && s['totals'] !== null && Array.isArray(s['streams']) && Array.isArray(s['consumers']) && Array.isArray(s['sources']) && Array.isArray(s['reasons']);
}

/** The human summary: three lines of totals, then tables of streams, consumers, uplinks and sources. */
export function formatStatus(s: Status): string {
  const t = s.totals;
  const down = s.sources.filter((x) => x.state === 'down').length;
  const lines: string[] = [];
  lines.push(
    [
      `spillway ${s.status}`,
      ...(s.uptimeMs === null ? [] : [`up ${duration(s.uptimeMs)}`]),
      plural(t.streams, 'stream'),
      plural(t.consumers, 'consumer'),
      `${down} of ${plural(s.sources.length, 'source')} down`,
    ].join(' · '),
  );
  for (const r of s.reasons) lines.push(`  ! ${clean(r)}`);
  lines.push(`memory ${bytes(t.heldBytes)} / ${bytes(t.memoryBudgetBytes)} (${pct(t.memoryFill)}) · spool ${bytes(t.spoolBytes)} / ${bytes(t.spoolQuotaBytes)} (${pct(t.spoolFill)}) · in flight ${num(t.inflight)}`);
  lines.push(`ingested ${num(t.ingested)} · acked ${num(t.acked)} · dropped ${dropped(t.dropped, t.droppedByReason)} · recovered ${num(t.recovered)} · buffered ${num(t.buffered)} · spooled ${num(t.spooled)}`);
  if (s.streams.length > 0) {
    lines.push('');
    lines.push(
      ...table(
        ['STREAM', 'PRIO', 'WHEN FULL', 'RING FILL', 'RING', 'BUFFERED', 'SPOOLED', 'INGESTED', 'ACKED', 'DROPPED'],
        s.streams.map((x) => [name(x.name), String(x.priority), x.whenFull, pct(x.fill), `${num(x.ringRecords)} / ${num(x.capacityRecords)}`, num(x.buffered), num(x.spooled), num(x.ingested), num(x.acked), dropped(x.droppedTotal, x.dropped)]),
        [false, true, false, true, true, true, true, true, true, false],
      ),
    );
    if (s.streamsOmitted > 0) lines.push(`(${num(s.streamsOmitted)} more streams not shown)`);
  }
  if (s.consumers.length > 0) {
    lines.push('');
    lines.push(...table(['CONSUMER', 'CREDIT', 'IN FLIGHT', 'SENT'], s.consumers.map((c) => [name(c.name), num(c.credit), num(c.inflight), num(c.sent)]), [false, true, true, true]));
  }
  const groups = s.groups ?? [];
  if (groups.length > 1 || groups.some((g) => g.name !== 'default')) {
    lines.push('');
    lines.push(
      ...table(
        ['GROUP', 'CONSUMERS', 'BACKLOG', 'IN FLIGHT', 'INGESTED', 'ACKED', 'DROPPED'],
        groups.map((g) => [name(g.name), num(g.consumers), num(g.backlog), num(g.inflight), num(g.ingested), num(g.acked), dropped(g.dropped, g.droppedByReason)]),
        [false, true, true, true, true, true, false],
      ),
    );
  }
  const uplinks = s.uplinks ?? [];
  if (uplinks.length > 0) {
    lines.push('');
    lines.push(
      ...table(
        ['UPLINK', 'KIND', 'STATE', 'IN FLIGHT', 'LAST ACK', 'RECONNECTS', 'DETAIL'],
        uplinks.map((u) => [name(u.name), u.kind, u.connected ? 'up' : 'down', `${num(u.inflight)} / ${num(u.window)}`, u.lastAckAt === null ? 'never' : `${duration(Math.max(0, s.at - u.lastAckAt))} ago`, num(u.reconnects), clean(u.detail)]),
        [false, false, false, true, true, true, false],
      ),
    );
  }
  if (s.sources.length > 0) {
    lines.push('');
    lines.push(...table(['SOURCE', 'STATE', 'DETAIL'], s.sources.map((x) => [name(x.name), x.state, clean(x.detail)]), [false, false, false]));
  }
  return `${lines.join('\n')}\n`;
}

function table(head: readonly string[], rows: readonly (readonly string[])[], right: readonly boolean[]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (right[i] === true ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

function dropped(total: number, by: Readonly<Record<string, number>>): string {
  const parts = DROP_REASONS.filter((r) => (by[r] ?? 0) > 0).map((r) => `${r} ${num(by[r] ?? 0)}`);
  return parts.length === 0 ? num(total) : `${num(total)} (${parts.join(', ')})`;
}

/** A name from the daemon, safe for a terminal and at most 40 columns. */
function name(s: string): string {
  const c = clean(s);
  return c.length <= 40 ? c : `${c.slice(0, 39)}…`;
}

function clean(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function num(n: number): string {
  return n.toLocaleString('en-US');
}

function plural(n: number, word: string): string {
  return `${num(n)} ${word}${n === 1 ? '' : 's'}`;
}

function pct(f: number | null): string {
  if (f === null) return '–';
  if (f > 0 && f < 0.001) return '<0.1%';
  return `${f > 0 && f < 0.1 ? (f * 100).toFixed(1) : Math.round(f * 100)}%`;
}

function bytes(n: number | null): string {
  if (n === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}
