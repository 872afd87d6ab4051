/**
 * The status page served at `/` on the admin port: one self-contained HTML
 * document (no external assets, no libraries) that polls `status` (relative
 * to the page, so a reverse-proxy prefix works) every second and shows the
 * same as `spillway status`: health and reasons, totals against the memory
 * budget and the spool quota, a row per stream (ring fill, backlog, drops by
 * reason, ingested and acked, with rates computed between two polls), the
 * consumers and the sources.
 *
 * Stream, consumer and source names are data (MQTT topics, consumer
 * `hello`s): the script only ever sets `textContent`, never HTML, and the
 * page is served with a Content-Security-Policy that allows exactly its own
 * inline script and style (by hash) and fetches to its own origin.
 * Every value cell carries `data-field` and its raw number in `data-value`.
 *
 * Rendered on the server enough that the first paint is the real page: the
 * charts (charts.ts, plain SVG from the daemon's sample ring) are in the
 * HTML, and so is the status at the moment of the request (a JSON block the
 * script renders before its first poll). The script then polls `status`
 * every second and `charts` (the same SVG fragment) every chart interval,
 * parsed with DOMParser into inert nodes: no script runs from either.
 */
import { createHash } from 'node:crypto';

/** Milliseconds between two polls. */
export const STATUS_POLL_MS = 1_000;

const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --bar: #0969da; --muted: #6e7781; --line: #d0d7de80; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2rem; }
h1 { font-size: 1.2rem; margin: 0 0 .4rem; display: flex; gap: .6rem; align-items: center; }
h2 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
#status { padding: .1rem .5rem; border-radius: .3rem; color: #fff; background: var(--muted); }
#status.ok { background: var(--ok); } #status.degraded { background: var(--bad); }
#updated, .muted { color: var(--muted); font-weight: normal; font-size: .85rem; }
#error { color: var(--bad); } #reasons { color: var(--bad); margin: .2rem 0; padding-left: 1.2rem; }
.totals { display: flex; flex-wrap: wrap; gap: .4rem 1.4rem; }
.totals div span { display: block; font-size: 1.1rem; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .15rem .6rem; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; max-width: 28rem; overflow: hidden; text-overflow: ellipsis; }
.bar { display: inline-block; width: 5rem; height: .5rem; background: var(--line); vertical-align: middle; margin-right: .3rem; }
.bar i { display: block; height: 100%; background: var(--bar); }
#charts { display: flex; flex-wrap: wrap; gap: .6rem 1.4rem; }
figure.chart { margin: .6rem 0 0; } figure.chart figcaption { font-weight: 600; margin-bottom: .2rem; }
figure.chart svg { max-width: 100%; height: auto; }
td.down { color: var(--bad); } td.up { color: var(--ok); } th.l, td.l { text-align: left; }
`;

const SCRIPT = `
"use strict";
const POLL_MS = ${STATUS_POLL_MS};
const CHART_MS = Number(document.body.dataset.chartMs) || 5000;
const REASONS = ["overflow", "spool_full", "expired", "poison"];
const $ = (id) => document.getElementById(id);
const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 1 }));
const pct = (f) => (f === null || f === undefined ? "–" : f > 0 && f < 0.001 ? "<0.1%" : (f * 100).toFixed(f < 0.1 && f > 0 ? 1 : 0) + "%");
function bytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; let v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(1)) + " " + u[i];
}
function duration(ms) {
  const m = Math.floor(ms / 60000); const h = Math.floor(m / 60);
  return h >= 24 ? Math.floor(h / 24) + "d " + (h % 24) + "h" : h > 0 ? h + "h " + (m % 60) + "m" : m > 0 ? m + "m " + Math.floor(ms / 1000) % 60 + "s" : Math.floor(ms / 1000) + "s";
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function bar(cell, fill) {
  const b = el("span", "bar"); const i = el("i");
  i.style.width = Math.max(0, Math.min(100, (fill || 0) * 100)).toFixed(1) + "%";
  b.appendChild(i); cell.appendChild(b);
}
/** Fills a <td data-field> with text, its raw value in data-value. */
function put(td, field, value, text) {
  td.dataset.field = field;
  td.dataset.value = value === null || value === undefined ? "" : String(value);
  td.textContent = text === undefined ? fmt(value) : text;
  return td;
}
/** The previous status, for rates: (count now - count then) / time between the two. */
let prev = null;
function rate(at, now, before, key) {
  if (!before || !prev || at <= prev.at) return null;
  return Math.max(0, ((now[key] - before[key]) * 1000) / (at - prev.at));
}
/** Keeps one <tr> per key in a tbody, in the given order; returns its cells. */
function rows(tbody, items, keyOf, attr, width) {
  const old = new Map();
  for (const tr of Array.from(tbody.rows)) old.set(tr.getAttribute(attr), tr);
  const out = [];
  items.forEach((item, i) => {
    const key = keyOf(item);
    let tr = old.get(key);
    old.delete(key);
    if (!tr) { tr = document.createElement("tr"); tr.setAttribute(attr, key); for (let c = 0; c < width; c++) tr.appendChild(el("td")); }
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
    out.push(Array.from(tr.cells));
  });
  for (const tr of old.values()) tr.remove();
  return out;
}
function render(s) {
  const st = $("status"); st.textContent = s.status; st.className = s.status;
  $("updated").textContent = "updated " + new Date(s.at).toLocaleTimeString() + (s.uptimeMs === null ? "" : " · up " + duration(s.uptimeMs));
  const reasons = $("reasons"); reasons.replaceChildren(...s.reasons.map((r) => el("li", "", r)));
  const t = s.totals;
  for (const k of ["ingested", "acked", "dropped", "buffered", "spooled", "inflight", "consumers", "streams", "recovered"]) put($("t-" + k), k, t[k]);
  put($("t-memory"), "memory", t.heldBytes, bytes(t.heldBytes) + " / " + bytes(t.memoryBudgetBytes) + " (" + pct(t.memoryFill) + ")");
  put($("t-spool"), "spool", t.spoolBytes, bytes(t.spoolBytes) + " / " + bytes(t.spoolQuotaBytes) + " (" + pct(t.spoolFill) + ")");
  const before = new Map(prev ? prev.streams.map((x) => [x.name, x]) : []);
  rows($("streams"), s.streams, (x) => x.name, "data-stream", 12).forEach((c, i) => {
    const x = s.streams[i]; const b = before.get(x.name);
    c[0].textContent = x.name; c[0].title = x.name;
    put(c[1], "priority", x.priority);
    put(c[2], "whenFull", x.whenFull, x.whenFull); c[2].className = "l";
    put(c[3], "fill", x.fill, ""); bar(c[3], x.fill); c[3].appendChild(document.createTextNode(pct(x.fill)));
    put(c[4], "ring", x.ringRecords, fmt(x.ringRecords) + " / " + fmt(x.capacityRecords));
    put(c[5], "buffered", x.buffered);
    put(c[6], "spooled", x.spooled);
    put(c[7], "ingested", x.ingested);
    put(c[8], "acked", x.acked);
    const rin = rate(s.at, x, b, "ingested"); const rack = rate(s.at, x, b, "acked");
    put(c[9], "ingestRate", rin, fmt(rin) + "/s");
    put(c[10], "ackRate", rack, fmt(rack) + "/s");
    const by = REASONS.filter((r) => x.dropped[r] > 0).map((r) => r + " " + fmt(x.dropped[r]));
    put(c[11], "dropped", x.droppedTotal, by.length ? fmt(x.droppedTotal) + " (" + by.join(", ") + ")" : "0");
  });
  $("omitted").textContent = s.streamsOmitted > 0 ? "(" + fmt(s.streamsOmitted) + " more streams not shown)" : "";
  rows($("consumers"), s.consumers, (x) => String(x.id), "data-consumer", 5).forEach((c, i) => {
    const x = s.consumers[i];
    c[0].textContent = x.name;
    put(c[1], "credit", x.credit); put(c[2], "inflight", x.inflight); put(c[3], "sent", x.sent); put(c[4], "granted", x.granted);
  });
  rows($("groups"), s.groups || [], (x) => x.name, "data-group", 7).forEach((c, i) => {
    const x = s.groups[i];
    c[0].textContent = x.name;
    put(c[1], "consumers", x.consumers); put(c[2], "backlog", x.backlog); put(c[3], "inflight", x.inflight);
    put(c[4], "ingested", x.ingested); put(c[5], "acked", x.acked); put(c[6], "dropped", x.dropped);
  });
  rows($("uplinks"), s.uplinks || [], (x) => x.kind + " " + x.name, "data-uplink", 7).forEach((c, i) => {
    const x = s.uplinks[i];
    c[0].textContent = x.name;
    put(c[1], "kind", x.kind, x.kind); c[1].className = "l";
    put(c[2], "state", x.connected ? "up" : "down", x.connected ? "up" : "down"); c[2].className = "l " + (x.connected ? "up" : "down");
    put(c[3], "window", x.inflight, fmt(x.inflight) + " / " + fmt(x.window));
    put(c[4], "lastAck", x.lastAckAt, x.lastAckAt === null ? "never" : duration(Math.max(0, s.at - x.lastAckAt)) + " ago");
    put(c[5], "reconnects", x.reconnects);
    put(c[6], "detail", x.detail, x.detail); c[6].className = "l";
  });
  rows($("sources"), s.sources, (x) => x.name, "data-source", 3).forEach((c, i) => {
    const x = s.sources[i];
    c[0].textContent = x.name;
    put(c[1], "state", x.state, x.state); c[1].className = "l " + x.state;
    put(c[2], "detail", x.detail, x.detail); c[2].className = "l";
  });
  prev = s;
}
async function poll() {
  if (document.visibilityState !== "hidden") {
    try {
      const res = await fetch("status", { cache: "no-store", headers: { accept: "application/json" } });
      if (!res.ok && res.status !== 503) throw new Error("HTTP " + res.status);
      const s = await res.json();
      if (s.version !== 1) throw new Error("not a spillway status (version " + s.version + ")");
      render(s);
      $("error").textContent = "";
    } catch (err) {
      $("error").textContent = "cannot read status: " + (err && err.message ? err.message : String(err)) + " (showing the last one)";
    }
  }
  setTimeout(poll, POLL_MS);
}
async function pollCharts() {
  if (document.visibilityState !== "hidden") {
    try {
      const res = await fetch("charts", { cache: "no-store" });
      if (res.ok) {
        const doc = new DOMParser().parseFromString(await res.text(), "text/html");
        $("charts").replaceChildren(...Array.from(doc.body.childNodes).map((n) => document.importNode(n, true)));
      }
    } catch (err) {
      $("error").textContent = "cannot read charts: " + (err && err.message ? err.message : String(err));
    }
  }
  setTimeout(pollCharts, CHART_MS);
}
const first = $("initial-status");
const rendered = Boolean(first && first.textContent);
if (rendered) render(JSON.parse(first.textContent));
setTimeout(poll, rendered ? POLL_MS : 0);
setTimeout(pollCharts, CHART_MS);
`;

const BODY = `
<h1>spillway <span id="status">…</span> <span id="updated"></span></h1>
<div id="error"></div>
<ul id="reasons"></ul>
<div class="totals">
  <div>ingested<span id="t-ingested"></span></div><div>acked<span id="t-acked"></span></div>
  <div>dropped<span id="t-dropped"></span></div><div>buffered<span id="t-buffered"></span></div>
  <div>spooled<span id="t-spooled"></span></div><div>in flight<span id="t-inflight"></span></div>
  <div>memory<span id="t-memory"></span></div><div>spool<span id="t-spool"></span></div>
  <div>consumers<span id="t-consumers"></span></div><div>streams<span id="t-streams"></span></div>
  <div>recovered<span id="t-recovered"></span></div>
</div>
<section id="charts">%CHARTS%</section>
<h2>Streams <span id="omitted" class="muted"></span></h2>
<table><thead><tr><th>stream</th><th>prio</th><th class="l">when full</th><th>ring fill</th><th>ring</th><th>buffered</th><th>spooled</th><th>ingested</th><th>acked</th><th>in/s</th><th>acked/s</th><th>dropped</th></tr></thead><tbody id="streams"></tbody></table>
<h2>Consumers</h2>
<table><thead><tr><th>consumer</th><th>credit</th><th>in flight</th><th>sent</th><th>granted</th></tr></thead><tbody id="consumers"></tbody></table>
<h2>Groups</h2>
<table><thead><tr><th>group</th><th>consumers</th><th>backlog</th><th>in flight</th><th>ingested</th><th>acked</th><th>dropped</th></tr></thead><tbody id="groups"></tbody></table>
<h2>Uplinks</h2>
<table><thead><tr><th>uplink</th><th class="l">kind</th><th class="l">state</th><th>in flight / window</th><th>last ack</th><th>reconnects</th><th class="l">detail</th></tr></thead><tbody id="uplinks"></tbody></table>
<h2>Sources</h2>
<table><thead><tr><th>source</th><th class="l">state</th><th class="l">detail</th></tr></thead><tbody id="sources"></tbody></table>
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>spillway status</title>
<style>${STYLE}</style>
</head>
<body data-chart-ms="%CHART_MS%">${BODY}<script type="application/json" id="initial-status">%STATUS%</script><script>${SCRIPT}</script>
</body>
</html>
`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** Allows the page's own inline script and style, fetches to its origin, and nothing else. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface PageInputs {
  /** The charts fragment (charts.ts). */
  readonly charts: string;
  /** The status now, rendered before the first poll. */
  readonly status: unknown;
  /** How often the page refetches the charts. */
  readonly chartIntervalMs: number;
}

export function renderStatusPage(inputs?: PageInputs): string {
  if (inputs === undefined) return PAGE.replace('%CHARTS%', '').replace('%CHART_MS%', '5000').replace('%STATUS%', '');
  // `<` escaped: a stream name holding "</script>" cannot end the JSON block.
  const status = JSON.stringify(inputs.status).replace(/</g, '\\u003c');
  return PAGE.replace('%CHART_MS%', String(inputs.chartIntervalMs)).replace('%CHARTS%', () => inputs.charts).replace('%STATUS%', () => status);
}

/** The headers to serve the page with. */
export function statusPageHeaders(): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': STATUS_PAGE_CSP,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
  };
}
