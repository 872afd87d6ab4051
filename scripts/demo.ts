/**
 * `npm run demo`: backpressure you can watch, with no hardware and nothing
 * else installed.
 *
 *   3 simulated sensors ──MQTT QoS 1, ~2000 msg/s──> spillway (embedded broker)
 *        ring per stream: 2000 records, whenFull: drop-oldest
 *   spillway ──credit 50 at a time──> a slow consumer that acks each batch
 *        after 100 ms (~500 records/s)
 *
 * The producer is four times faster than the consumer, so the rings fill and
 * the daemon drops the oldest records, counts every drop and says so in its
 * WARN log lines. The consumer never gets more than the credit it granted.
 * Once a second the demo prints the daemon's counters (from /metrics) and
 * the consumer's own view; at the end it checks the conservation identity
 * `ingested = acked + dropped + buffered + inflight` (docs/PROTOCOL.md).
 *
 * Usage: npm run demo [-- --seconds N]   (Ctrl-C stops early)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { SpillwayConsumer, type WireRecord } from '../daemon/client/consumer.js';

const SENSORS = ['temperature', 'humidity', 'pressure'] as const;
const PUBLISH_PER_SECOND = 2000; // all sensors together
const CREDIT_WINDOW = 50; // records the consumer lets the daemon send ahead
const ACK_DELAY_MS = 100; // "processing" time per batch: 50 / 0.1 s = 500 records/s
const RING_RECORDS = 2000; // per stream, so drops start within seconds
const CLI = fileURLToPath(new URL('../daemon/cli.js', import.meta.url));

interface DaemonUrls {
  readonly admin: string;
  readonly consumers: string;
  readonly broker: string;
}

// ── the daemon, as a child process ──────────────────────────────────────────

const LEVELS: Record<number, string> = { 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** One daemon JSON log line, compactly: level, event, message, the other fields. */
function formatLog(line: Record<string, unknown>): string {
  const { level, time, pid, hostname, msg, event, ...rest } = line;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `  [daemon ${LEVELS[Number(level)] ?? String(level)}] ${String(event ?? '')} ${String(msg ?? '')}  ${fields.join(' ')}`;
}

/** Starts the daemon, forwards its WARN+ lines, resolves with its URLs once it logs `ready`. */
function startDaemon(configFile: string): { child: ChildProcess; ready: Promise<DaemonUrls> } {
  // detached: its own process group, so a terminal Ctrl-C reaches only the demo,
  // which then stops the daemon with one SIGTERM.
  const child = spawn(process.execPath, [CLI, 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const ready = new Promise<DaemonUrls>((resolve, reject) => {
    let fatal = '';
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        console.log(`  [daemon] ${text}`); // not JSON: show it as it is
        return;
      }
      if (line['event'] === 'ready') resolve(line as unknown as DaemonUrls);
      if (Number(line['level']) >= 60) fatal = `${String(line['msg'])}: ${String(line['err'] ?? '')}`;
      if (Number(line['level']) >= 40) console.log(formatLog(line));
    });
    child.once('exit', (code) => reject(new Error(`the daemon exited with code ${code} before it was ready${fatal ? `\n  reason: ${fatal}` : ''}`)));
  });
  return { child, ready };
}

// ── the simulated sensors ───────────────────────────────────────────────────

/** Publishes JSON readings round-robin over the sensors at `perSecond`, QoS 1. */
function startSensors(brokerUrl: string, perSecond: number): { published: () => number; stop: () => Promise<void> } {
  const client = mqtt.connect(brokerUrl, { clientId: `spillway-demo-sensors-${process.pid}` });
  client.on('error', (err) => console.log(`  [sensors] MQTT error: ${err.message}`));
  const started = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    if (!client.connected) return;
    // Catch up to the target rate, so timer jitter does not slow the sensors down.
    const due = Math.min(Math.floor(((performance.now() - started) / 1000) * perSecond) - sent, perSecond / 10);
    for (let i = 0; i < due; i++, sent++) {
      const sensor = SENSORS[sent % SENSORS.length]!;
      const reading = { sensor, n: sent, value: Math.round(Math.random() * 1000) / 10, ts: Date.now() };
      client.publish(`sensors/${sensor}`, JSON.stringify(reading), { qos: 1 });
    }
  }, 10);
  return {
    published: () => sent,
    stop: async () => {
      clearInterval(timer);
      await client.endAsync();
    },
  };
}

// ── the slow consumer ───────────────────────────────────────────────────────

/** Grants CREDIT_WINDOW, acks each batch ACK_DELAY_MS after it arrives, and re-grants what it used. */
async function startSlowConsumer(url: string) {
  const consumer = new SpillwayConsumer({ url, name: 'demo-slow-consumer' });
  const pending = new Map<NodeJS.Timeout, readonly number[]>();
  const state = { delivered: 0, granted: 0, stopping: false };
  consumer.on('records', (records: WireRecord[]) => {
    state.delivered += records.length;
    const seqs = records.map((r) => r.seq);
    const timer = setTimeout(() => {
      pending.delete(timer);
      consumer.ack(seqs);
      if (!state.stopping) grant(seqs.length);
    }, ACK_DELAY_MS);
    pending.set(timer, seqs);
  });
  consumer.on('serverError', (e) => console.log(`  [consumer] daemon sent error ${e.code}: ${e.message}`));
  const grant = (n: number) => {
    state.granted += n;
    consumer.credit(n);
  };
  await consumer.connect();
  grant(CREDIT_WINDOW);
  return {
    state,
    /** Records the daemon may still send: credit granted minus records received. */
    outstanding: () => state.granted - state.delivered,
    /** Stops granting, acks what it holds at once, and disconnects. */
    stop: async () => {
      state.stopping = true;
      for (const [timer, seqs] of pending) {
        clearTimeout(timer);
        consumer.ack(seqs);
      }
      pending.clear();
      await sleep(200); // let the acks land before the close
      await consumer.close();
    },
  };
}

// ── metrics ─────────────────────────────────────────────────────────────────

/** Scrapes /metrics and sums each metric over its labels. */
async function scrape(adminUrl: string): Promise<Map<string, number>> {
  const res = await fetch(new URL('/metrics', adminUrl));
  if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
  const sums = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(line)?.[0];
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (name !== undefined && Number.isFinite(value)) sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return sums;
}

function figures(m: Map<string, number>) {
  const get = (name: string) => m.get(`spillway_${name}`) ?? 0;
  return {
    recovered: get('records_recovered_total'),
    ingested: get('records_ingested_total'),
    acked: get('records_acked_total'),
    dropped: get('records_dropped_total'),
    buffered: get('buffer_records'),
    spooled: get('spool_records'),
    inflight: get('inflight_records'),
  };
}

const col = (n: number | string) => String(n).padStart(10);

// ── main ────────────────────────────────────────────────────────────────────

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' } } });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) {
    console.error(`--seconds: ${values.seconds} is not a positive number of seconds`);
    return 64;
  }

  const dir = await mkdtemp(join(tmpdir(), 'spillway-demo-'));
  const configFile = join(dir, 'config.json'); // JSON is valid YAML
  // level info: the `ready` line is an info line; the demo shows only WARN and above.
  const config = { dataDir: join(dir, 'data'), log: { level: 'info' }, streamDefaults: { capacityRecords: RING_RECORDS, whenFull: 'drop-oldest' } };
  await writeFile(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });

  const { child, ready } = startDaemon(configFile);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.once('exit', () => child.exitCode === null && child.kill('SIGKILL')); // never leave it behind
  const stop = new AbortController(); // Ctrl-C or the deadline
  const onSigint = () => stop.abort();
  process.once('SIGINT', onSigint);
  try {
    let urls: DaemonUrls;
    try {
      urls = await ready;
    } catch (err) {
      console.error(`spillway demo: ${(err as Error).message}`);
      console.error('  Is another spillway (or an MQTT broker) using 127.0.0.1:1883, :7420 or :7421? Stop it and run the demo again.');
      return 1;
    }
    console.log(`spillway is up: broker ${urls.broker}, consumers ${urls.consumers}, admin ${urls.admin}`);
    console.log(`${SENSORS.length} sensors publish ${PUBLISH_PER_SECOND}/s; the consumer takes ~${(CREDIT_WINDOW * 1000) / ACK_DELAY_MS}/s; each ring holds ${RING_RECORDS} records.`);
    console.log(`Running for ${seconds} s (Ctrl-C to stop early).\n`);

    const consumer = await startSlowConsumer(urls.consumers);
    const sensors = startSensors(urls.broker, PUBLISH_PER_SECOND);
    const deadline = setTimeout(() => stop.abort(), seconds * 1000);

    console.log(`${'t'.padStart(4)} ${['ingested', 'delivered', 'acked', 'buffered', 'dropped', 'inflight', 'credit'].map(col).join('')}`);
    const t0 = performance.now();
    while (!stop.signal.aborted) {
      await sleep(1000, undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) break;
      if (child.exitCode !== null) throw new Error(`the daemon exited unexpectedly (code ${child.exitCode}); see its log lines above`);
      const f = figures(await scrape(urls.admin));
      const t = `${Math.round((performance.now() - t0) / 1000)}s`.padStart(4);
      console.log(`${t} ${[f.ingested, consumer.state.delivered, f.acked, f.buffered, f.dropped, f.inflight, consumer.outstanding()].map(col).join('')}`);
    }
    clearTimeout(deadline);
    process.removeListener('SIGINT', onSigint);

    // Quiesce first, so the last scrape balances to the record: sensors stop,
    // the broker's last messages arrive, the consumer acks what it holds and leaves.
    console.log('\nstopping: sensors, then the consumer, then the daemon (SIGTERM)');
    await sensors.stop();
    await sleep(500);
    await consumer.stop();
    const f = figures(await scrape(urls.admin));
    child.kill('SIGTERM');
    const code = await exited;

    const right = f.acked + f.dropped + f.buffered + f.spooled + f.inflight;
    const left = f.recovered + f.ingested;
    const extra = f.recovered + f.spooled > 0 ? ` (recovered ${f.recovered}, spooled ${f.spooled})` : '';
    console.log(
      `\nsummary: ingested ${f.ingested} = acked ${f.acked} + dropped ${f.dropped} + buffered ${f.buffered} + inflight ${f.inflight}` +
        `${extra}  ${left === right ? 'balances' : `DOES NOT BALANCE (${left} != ${right})`}`,
    );
    console.log(`the sensors published ${sensors.published()}, the consumer received ${consumer.state.delivered}; the daemon exited with code ${code}.`);
    if (f.buffered > 0) console.log(`(the ${f.buffered} records still buffered went to the spool at exit, for the next start; this demo then removes its temporary data directory.)`);
    return left === right && code === 0 ? 0 : 1;
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`spillway demo: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
