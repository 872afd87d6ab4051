/**
 * The status page's charts, drawn on the server as plain SVG from the
 * sample ring (samples.ts): no charting library, nothing fetched from
 * elsewhere, and a page that shows its charts in the first paint.
 *
 *   records per second   ingested, delivered, acked, dropped
 *   records held         buffered (memory), spooled (disk only), in flight
 *   fill                 fullest ring, memory budget, spool quota (0-100 %)
 *
 * The x axis ends now and covers the whole minutes since the first sample,
 * at most CHART_SPAN_MS (15 minutes).
 *
 * Every series is a <polyline data-series=NAME> whose points carry their
 * figures for tests and tools: `data-at` (wall-clock ms), `data-values`
 * (what is drawn: a rate, or a fill 0..1) and, for rates, `data-totals`
 * (the cumulative counter at each point, as /metrics gives it).
 * Only numbers and fixed labels go into the markup (names are never drawn),
 * so nothing here needs escaping.
 */
import { CHART_SPAN_MS, type Sample } from './samples.js';

const W = 640;
const H = 180;
const PAD = { left: 52, right: 12, top: 26, bottom: 22 };

interface Series {
  readonly name: string;
  readonly label: string;
  readonly color: string;
  readonly at: readonly number[];
  readonly values: readonly number[];
  readonly totals?: readonly number[];
  readonly dash?: string;
}

type Counter = 'ingested' | 'delivered' | 'acked' | 'dropped';
type Fill = 'ringFill' | 'memoryFill' | 'spoolFill';
type Held = 'buffered' | 'spooled' | 'inflight';

const RATES: ReadonlyArray<{ key: Counter; label: string; color: string; dash?: string }> = [
  { key: 'ingested', label: 'ingested', color: '#0969da' },
  // Dashed: while nothing is redelivered it lies on the acked line.
  { key: 'delivered', label: 'delivered', color: '#8250df', dash: '5 3' },
  { key: 'acked', label: 'acked', color: '#1a7f37' },
  { key: 'dropped', label: 'dropped', color: '#cf222e' },
];
const HELD: ReadonlyArray<{ key: Held; label: string; color: string }> = [
  { key: 'buffered', label: 'buffered', color: '#0969da' },
  { key: 'spooled', label: 'spooled', color: '#bf8700' },
  { key: 'inflight', label: 'in flight', color: '#1a7f37' },
];
const FILLS: ReadonlyArray<{ key: Fill; label: string; color: string }> = [
  { key: 'ringFill', label: 'fullest ring', color: '#bf8700' },
  { key: 'memoryFill', label: 'memory budget', color: '#0969da' },
  { key: 'spoolFill', label: 'spool quota', color: '#cf222e' },
];

/** The charts, as one HTML fragment of <figure>s. */
const GROUP_COLORS = ['#0969da', '#bf8700', '#1a7f37', '#8250df', '#cf222e', '#57606a'];

export function renderCharts(samples: readonly Sample[], now: number): string {
  const span = spanOf(samples, now);
  const rates: Series[] = RATES.map(({ key, label, color, dash }) => {
    const at: number[] = [];
    const values: number[] = [];
    const totals: number[] = [];
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1] as Sample;
      const b = samples[i] as Sample;
      const dt = (b.at - a.at) / 1_000;
      if (dt <= 0) continue;
      at.push(b.at);
      values.push(round(Math.max(0, b[key] - a[key]) / dt));
      totals.push(b[key]);
    }
    return { name: key, label, color, at, values, totals, ...(dash === undefined ? {} : { dash }) };
  });
  const fills: Series[] = FILLS.map(({ key, label, color }) => ({
    name: key,
    label,
    color,
    at: samples.map((s) => s.at),
    values: samples.map((s) => round(s[key])),
  }));
  const held: Series[] = HELD.map(({ key, label, color }) => ({ name: key, label, color, at: samples.map((s) => s.at), values: samples.map((s) => s[key]) }));
  // One series per group the samples know (group names are config keys: letters, digits, _ . -).
  const names = [...new Set(samples.flatMap((s) => Object.keys(s.backlog ?? {})))];
  const backlog: Series[] = names.map((name, i) => ({
    name: `backlog-${name}`,
    label: name,
    color: GROUP_COLORS[i % GROUP_COLORS.length] as string,
    at: samples.map((s) => s.at),
    values: samples.map((s) => s.backlog?.[name] ?? 0),
  }));
  return (
    chart('rates', 'Records per second', rates, now, span, niceMax(Math.max(1, ...rates.flatMap((s) => s.values))), (v) => compact(v) + '/s') +
    chart('held', 'Records held', held, now, span, niceMax(Math.max(1, ...held.flatMap((s) => s.values))), compact) +
    chart('fill', 'Fill', fills, now, span, 1, (v) => `${Math.round(v * 100)}%`) +
    chart('backlog', 'Backlog by group', backlog, now, span, niceMax(Math.max(1, ...backlog.flatMap((s) => s.values))), compact)
  );
}

/** The time the x axis covers: since the first sample, at least a minute, at most CHART_SPAN_MS. */
function spanOf(samples: readonly Sample[], now: number): number {
  const first = samples[0]?.at ?? now;
  const minutes = Math.ceil((now - first) / 60_000);
  return Math.min(CHART_SPAN_MS, Math.max(1, minutes) * 60_000);
}

function chart(id: string, title: string, series: readonly Series[], now: number, span: number, yMax: number, yLabel: (v: number) => string): string {
  const x0 = now - span;
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + (Math.max(0, t - x0) / span) * iw;
  const y = (v: number) => PAD.top + ih - (Math.min(v, yMax) / yMax) * ih;
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#8c959f" stroke-opacity="0.3"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${f(y(v) + 4)}" text-anchor="end">${yLabel(v)}</text>`);
  }
  for (let q = 4; q >= 0; q--) {
    const ago = (span * q) / 4;
    const label = q === 0 ? 'now' : ago >= 60_000 && ago % 60_000 === 0 ? `−${ago / 60_000} min` : `−${Math.round(ago / 1_000)} s`;
    parts.push(`<text x="${f(x(now - ago))}" y="${H - 6}" text-anchor="${q === 4 ? 'start' : q === 0 ? 'end' : 'middle'}">${label}</text>`);
  }
  let lx = PAD.left;
  for (const s of series) {
    parts.push(`<rect x="${lx}" y="8" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="17">${s.label}</text>`);
    lx += 24 + s.label.length * 7;
    const points = s.at.map((t, i) => `${f(x(t))},${f(y(s.values[i] ?? 0))}`).join(' ');
    const totals = s.totals === undefined ? '' : ` data-totals="${s.totals.join(' ')}"`;
    parts.push(`<polyline data-series="${s.name}" data-at="${s.at.join(' ')}" data-values="${s.values.join(' ')}"${totals} points="${points}" fill="none" stroke="${s.color}" stroke-width="1.6" stroke-linejoin="round"${s.dash === undefined ? '' : ` stroke-dasharray="${s.dash}"`}/>`);
  }
  const empty = series.every((s) => s.at.length === 0) ? `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">collecting the first samples…</text>` : '';
  return (
    `<figure class="chart" id="chart-${id}"><figcaption>${title} <span class="muted">last ${span / 60_000} min</span></figcaption>` +
    `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${title}" font-size="11" font-family="system-ui, sans-serif" fill="currentColor">` +
    parts.join('') +
    empty +
    `</svg></figure>`
  );
}

/** 1, 2 or 5 times a power of ten, at least `v`. */
export function niceMax(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function compact(v: number): string {
  return v >= 1e6 ? `${+(v / 1e6).toFixed(1)}M` : v >= 1e3 ? `${+(v / 1e3).toFixed(1)}k` : `${+v.toFixed(1)}`;
}

function round(v: number): number {
  return Math.round(v * 1_000) / 1_000;
}

function f(v: number): string {
  return v.toFixed(1);
}
