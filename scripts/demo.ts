/**
 * `npm run demo`: backpressure you can watch, with no hardware and nothing
 * else installed. Simulated sensors publish QoS 1 to the daemon's embedded
 * MQTT broker, as fast as 200 unacknowledged messages allow (up to
 * 2000/s); a slow consumer takes ~500/s. Three phases, one daemon, the
 * stream policies changed between them by a config reload (SIGHUP):
 *
 *   1. block     full rings withhold the PUBACK, so the sensors' rate falls
 *                to the consumer's: backpressure reaches the sensor
 *   2. spill     the consumer goes away for a while: the rings fill and
 *                spill to the SQLite spool; it comes back faster and the
 *                spool replays, oldest first
 *   3. priority  a small memory budget and drop-oldest: records are dropped,
 *                least important first; the priority-0 alarm stream loses none
 *
 * Once a second a live line shows what the sensors got acknowledged, what
 * the daemon ingested and acked, what it holds and what it dropped; the
 * status page (http://127.0.0.1:7421/, charts sampled every second) shows
 * the same over time. At the end it checks the conservation identity
 * `recovered + ingested = acked + dropped + buffered + spooled + inflight`
 * (docs/PROTOCOL.md).
 *
 * Usage: npm run demo [-- --seconds N] [--broker-port P --consumer-port P --admin-port P]
 *   (N: the three phases together, default 45; the ports default to the
 *   daemon's 1883, 7420, 7421; Ctrl-C stops early)
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
import { EXIT_CONFIG } from '../daemon/errors.js';

/** Every tenth reading is an alarm (priority 0); the others are routine (priority 5). */
const SENSORS = ['temperature', 'humidity', 'pressure'] as const;
const ALARM = 'alarm';
const PUBLISH_PER_SECOND = 2000; // the most the sensors try, all together
const PUBLISH_WINDOW = 200; // QoS 1 messages a sensor client keeps unacknowledged at most
const CREDIT_WINDOW = 50; // records the consumer lets the daemon send ahead
const ACK_DELAY_MS = 100; // "processing" time per batch: 50 / 0.1 s = 500 records/s
const FAST_CREDIT = 2000; // the consumer once it is back in phase 2: acks at once

type Phase = 'block' | 'spill' | 'priority';
const PHASES: readonly Phase[] = ['block', 'spill', 'priority'];

/** The config of each phase: what a reload changes (all of it applies live). */
function configFor(phase: Phase, dataDir: string, ports: Ports): Record<string, unknown> {
  const base = {
    dataDir,
    sources: { embeddedBroker: { port: ports.broker } },
    consumers: { listen: { port: ports.consumers } },
    log: { level: 'info' },
    admin: { port: ports.admin, chartSampleSeconds: 1 },
    streams: { [`sensors/${ALARM}`]: { priority: 0 } },
  };
  switch (phase) {
    case 'block':
      return { ...base, streamDefaults: { priority: 5, capacityRecords: 500, whenFull: 'block' } };
    case 'spill':
      return { ...base, streamDefaults: { priority: 5, capacityRecords: 500, whenFull: 'spill' } };
    case 'priority':
      return { ...base, limits: { memoryBudgetBytes: 256 * 1024 }, streamDefaults: { priority: 5, capacityRecords: 10_000, whenFull: 'drop-oldest' } };
    default: {
      const never: never = phase;
      throw new Error(`unknown phase ${String(never)}`);
    }
  }
}
const CLI = fileURLToPath(new URL('../daemon/cli.js', import.meta.url));

/** The daemon's ports: its defaults unless the command line says otherwise. */
interface Ports {
  readonly broker: number;
  readonly consumers: number;
  readonly admin: number;
}

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

/**
 * Publishes JSON readings round-robin over the sensors, QoS 1, at most
 * `perSecond` and never more than PUBLISH_WINDOW unacknowledged: a broker
 * that withholds PUBACKs slows the sensors down, as a real device would be.
 */
function startSensors(brokerUrl: string, perSecond: number): { acked: () => number; stop: () => Promise<void> } {
  const client = mqtt.connect(brokerUrl, { clientId: `spillway-demo-sensors-${process.pid}` });
  client.on('error', (err) => console.log(`  [sensors] MQTT error: ${err.message}`));
  const started = performance.now();
  let sent = 0;
  let acked = 0;
  const timer = setInterval(() => {
    if (!client.connected) return;
    // Catch up to the target rate, so timer jitter does not slow the sensors down; the window may.
    const due = Math.min(Math.floor(((performance.now() - started) / 1000) * perSecond) - sent, perSecond / 10, PUBLISH_WINDOW - (sent - acked));
    for (let i = 0; i < due; i++, sent++) {
      const sensor = sent % 10 === 0 ? ALARM : SENSORS[sent % SENSORS.length]!;
      const reading = { sensor, n: sent, value: Math.round(Math.random() * 1000) / 10, ts: Date.now() };
      client.publish(`sensors/${sensor}`, JSON.stringify(reading), { qos: 1 }, () => acked++);
    }
  }, 10);
  return {
    acked: () => acked,
    stop: async () => {
      clearInterval(timer);
      await client.endAsync();
    },
  };
}

// ── the slow consumer ───────────────────────────────────────────────────────

/**
 * `slow`: grants CREDIT_WINDOW and acks each batch ACK_DELAY_MS after it
 * arrives, re-granting what it used. `away`: disconnected. `fast`: back,
 * with FAST_CREDIT and acking at once.
 */
async function startConsumer(url: string) {
  const state = { delivered: 0, mode: 'slow' as 'slow' | 'away' | 'fast', stopping: false };
  const pending = new Map<NodeJS.Timeout, readonly number[]>();
  let consumer: SpillwayConsumer | undefined;
  const connect = async (credit: number) => {
    const c = new SpillwayConsumer({ url, name: 'demo-consumer' });
    c.on('records', (records: WireRecord[]) => {
      state.delivered += records.length;
      const seqs = records.map((r) => r.seq);
      if (state.mode === 'fast') return c.ackAndCredit(seqs);
      const timer = setTimeout(() => {
        pending.delete(timer);
        c.ack(seqs);
        if (!state.stopping && state.mode === 'slow') c.credit(seqs.length);
      }, ACK_DELAY_MS);
      pending.set(timer, seqs);
    });
    c.on('serverError', (e) => console.log(`  [consumer] daemon sent error ${e.code}: ${e.message}`));
    await c.connect();
    c.credit(credit);
    consumer = c;
  };
  /** Acks what it holds at once. */
  const flush = () => {
    for (const [timer, seqs] of pending) {
      clearTimeout(timer);
      consumer?.ack(seqs);
    }
    pending.clear();
  };
  await connect(CREDIT_WINDOW);
  return {
    state,
    /** Goes away: what it held and did not ack is redelivered later (attempt + 1). */
    leave: async () => {
      state.mode = 'away';
      for (const timer of pending.keys()) clearTimeout(timer);
      pending.clear();
      await consumer?.close();
      consumer = undefined;
    },
    comeBackFast: async () => {
      state.mode = 'fast';
      await connect(FAST_CREDIT);
    },
    /** Reconnects with CREDIT_WINDOW (the fast connection's credit goes with it). */
    slowAgain: async () => {
      await consumer?.close();
      state.mode = 'slow';
      await connect(CREDIT_WINDOW);
    },
    /** Stops granting, acks what it holds, and disconnects. */
    stop: async () => {
      state.stopping = true;
      flush();
      await sleep(200); // let the acks land before the close
      await consumer?.close();
    },
  };
}

// ── metrics ─────────────────────────────────────────────────────────────────

/** Scrapes /metrics and sums each metric over its labels. */
async function scrape(adminUrl: string): Promise<{ sums: Map<string, number>; alarmDropped: number }> {
  const res = await fetch(new URL('/metrics', adminUrl));
  if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
  const sums = new Map<string, number>();
  let alarmDropped = 0;
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith(`spillway_records_dropped_total{stream="sensors/${ALARM}"`)) alarmDropped += Number(line.slice(line.lastIndexOf(' ') + 1));
    const name = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(line)?.[0];
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (name !== undefined && Number.isFinite(value)) sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return { sums, alarmDropped };
}

function figures(m: Map<string, number>, alarmDropped = 0) {
  const get = (name: string) => m.get(`spillway_${name}`) ?? 0;
  return {
    alarmDropped,
    recovered: get('records_recovered_total'),
    ingested: get('records_ingested_total'),
    acked: get('records_acked_total'),
    dropped: get('records_dropped_total'),
    buffered: get('buffer_records'),
    spooled: get('spool_records'),
    inflight: get('inflight_records'),
  };
}

const col = (n: number | string) => String(n).padStart(11);

// ── main ────────────────────────────────────────────────────────────────────

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '45' },
      'broker-port': { type: 'string', default: '1883' },
      'consumer-port': { type: 'string', default: '7420' },
      'admin-port': { type: 'string', default: '7421' },
    },
  });
  const seconds = Number(values.seconds);
  if (!(seconds >= 9)) {
    console.error(`--seconds: ${values.seconds} is too short: expected at least 9 (three phases of 3 s)`);
    return 64;
  }
  // Checked by the daemon's own config schema: a bad port stops it before it is ready, and its error is shown.
  const ports: Ports = { broker: Number(values['broker-port']), consumers: Number(values['consumer-port']), admin: Number(values['admin-port']) };
  const phaseMs = (seconds * 1000) / PHASES.length;

  const dir = await mkdtemp(join(tmpdir(), 'spillway-demo-'));
  const configFile = join(dir, 'config.json'); // JSON is valid YAML
  const dataDir = join(dir, 'data');
  const writeConfig = (phase: Phase) => writeFile(configFile, JSON.stringify(configFor(phase, dataDir, ports), null, 2), { mode: 0o600 });
  await writeConfig('block');

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
      // The daemon refused its config and said why: the ports were never tried.
      if (child.exitCode !== EXIT_CONFIG) console.error(`  Is another spillway (or an MQTT broker) using 127.0.0.1:${ports.broker}, :${ports.consumers} or :${ports.admin}? Stop it, or pick other ports (--broker-port, --consumer-port, --admin-port).`);
      return 1;
    }
    console.log(`spillway is up: broker ${urls.broker}, consumers ${urls.consumers}`);
    console.log(`watch it: ${urls.admin}/ (charts, one sample a second)`);
    console.log(`The sensors try ${PUBLISH_PER_SECOND}/s (at most ${PUBLISH_WINDOW} unacknowledged); the consumer takes ~${(CREDIT_WINDOW * 1000) / ACK_DELAY_MS}/s.`);
    console.log(`Three phases of ${Math.round(phaseMs / 1000)} s (Ctrl-C to stop early).\n`);

    const consumer = await startConsumer(urls.consumers);
    const sensors = startSensors(urls.broker, PUBLISH_PER_SECOND);
    const deadline = setTimeout(() => stop.abort(), seconds * 1000);
    const header = `${'t'.padStart(4)} ${'phase'.padEnd(9)}${['sensors/s', 'ingest/s', 'acked/s', 'buffered', 'spooled', 'dropped', 'alarm drop'].map(col).join('')}  consumer`;
    const notes: Record<Phase, string> = {
      block: 'rings of 500, whenFull: block: a full ring withholds the PUBACK, so the sensors slow to the consumer\'s pace',
      spill: 'whenFull: spill; the consumer leaves for a while (records spill to the spool), then comes back fast (the spool replays)',
      priority: 'memory budget 256 KiB, whenFull: drop-oldest: the least important records are dropped; the priority-0 alarms are not',
    };
    const t0 = performance.now();
    let phase: Phase = 'block';
    let last = { at: t0, sensors: 0, ingested: 0, acked: 0 };
    console.log(`── phase 1, block: ${notes.block}\n${header}`);
    while (!stop.signal.aborted) {
      await sleep(1000, undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) break;
      if (child.exitCode !== null) throw new Error(`the daemon exited unexpectedly (code ${child.exitCode}); see its log lines above`);
      const now = performance.now();
      const elapsed = now - t0;
      const due = PHASES[Math.min(PHASES.length - 1, Math.floor(elapsed / phaseMs))] as Phase;
      if (due !== phase) {
        phase = due;
        await writeConfig(phase);
        child.kill('SIGHUP'); // applies live: rings, spool and in-flight records are kept
        if (phase === 'priority') await consumer.slowAgain();
        console.log(`── phase ${PHASES.indexOf(phase) + 1}, ${phase}: ${notes[phase]}\n${header}`);
      }
      // Phase 2: slow for its first fifth, away for the next two fifths, then back fast.
      const inPhase = (elapsed % phaseMs) / phaseMs;
      if (phase === 'spill' && consumer.state.mode === 'slow' && inPhase >= 0.2 && inPhase < 0.6) await consumer.leave();
      if (phase === 'spill' && consumer.state.mode === 'away' && inPhase >= 0.6) await consumer.comeBackFast();
      const { sums, alarmDropped } = await scrape(urls.admin);
      const f = figures(sums, alarmDropped);
      const dt = (now - last.at) / 1000;
      const rate = (a: number, b: number) => Math.round((a - b) / dt);
      const t = `${Math.round(elapsed / 1000)}s`.padStart(4);
      console.log(
        `${t} ${phase.padEnd(9)}${[rate(sensors.acked(), last.sensors), rate(f.ingested, last.ingested), rate(f.acked, last.acked), f.buffered, f.spooled, f.dropped, f.alarmDropped].map(col).join('')}  ${consumer.state.mode}`,
      );
      last = { at: now, sensors: sensors.acked(), ingested: f.ingested, acked: f.acked };
    }
    clearTimeout(deadline);
    process.removeListener('SIGINT', onSigint);

    // Quiesce first, so the last scrape balances to the record: sensors stop,
    // the broker's last messages arrive, the consumer acks what it holds and leaves.
    console.log('\nstopping: sensors, then the consumer, then the daemon (SIGTERM)');
    await sensors.stop();
    await sleep(500);
    await consumer.stop();
    const scraped = await scrape(urls.admin);
    const f = figures(scraped.sums, scraped.alarmDropped);
    child.kill('SIGTERM');
    const code = await exited;

    const right = f.acked + f.dropped + f.buffered + f.spooled + f.inflight;
    const left = f.recovered + f.ingested;
    console.log(
      `\nsummary: recovered ${f.recovered} + ingested ${f.ingested} = acked ${f.acked} + dropped ${f.dropped} + buffered ${f.buffered} + spooled ${f.spooled} + inflight ${f.inflight}` +
        `  ${left === right ? 'balances' : `DOES NOT BALANCE (${left} != ${right})`}; alarms dropped: ${f.alarmDropped}`,
    );
    console.log(`the sensors got ${sensors.acked()} PUBACKs, the consumer received ${consumer.state.delivered}; the daemon exited with code ${code}.`);
    if (f.buffered + f.spooled > 0) console.log(`(the ${f.buffered + f.spooled} records still owed were kept in the spool at exit, for the next start; this demo then removes its temporary data directory.)`);
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
