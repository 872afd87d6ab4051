/**
 * What a power loss can take, checked where it is decided: in the order of
 * the system calls.
 *
 *  - Durable mode, `spool.synchronous: full`, a QoS 1 sensor publishing
 *    through a real Mosquitto: the daemon runs under strace, and for every
 *    record the trace must show, in this order, the PUBLISH read from the
 *    broker, the record's bytes written to the WAL, an fsync/fdatasync of
 *    the WAL, and only then the PUBACK written back. The seq reservation
 *    (`seq.next`) is fsynced before its rename and its directory after it,
 *    before the first record is written. (`mqttPort` picks the sockets to
 *    read: for the embedded broker, pass its port, and the same checks hold
 *    on the sensor's connection.)
 *  - SeqState across a torn write of `seq.next`.
 */
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SpillwayError } from '../daemon/errors.js';
import { SEQ_BLOCK, SeqState } from '../daemon/spool/seq-state.js';
import { startDaemon, testConfig } from './helpers/daemon.js';
import { startMosquitto } from './helpers/mosquitto.js';
import { publishAll } from './helpers/publisher.js';
import { readTrace, straceWrapper, type MqttPacket, type TraceEvent } from './helpers/strace.js';
import { waitFor } from './helpers/wait.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'spillway-power-'));
  dirs.push(d);
  return d;
};

/** The node process strace started (signals go to it: strace holds fatal signals back while it traces). */
function tracee(stracePid: number): number {
  const kids = readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  assert.equal(kids.length, 1, 'strace runs one child');
  return kids[0] as number;
}

/** After a failure: the traced daemon and strace both go (killing strace alone leaves the daemon running, and the suite waiting). */
function killTraced(stracePid: number, exitCode: number | null): void {
  if (exitCode !== null) return;
  try {
    process.kill(tracee(stracePid), 'SIGKILL');
  } catch {
    // already gone
  }
  process.kill(stracePid, 'SIGKILL');
}

/** Sockets with `port` at either end. */
const onPort = (port: number) => (fd: string) => fd.startsWith('TCP:[') && (fd.includes(`:${port}->`) || fd.endsWith(`:${port}]`));

/**
 * For every PUBLISH read on an MQTT socket: the first WAL write holding its payload after it,
 * the first WAL sync after that, the PUBACK of its packet id after the PUBLISH. Returns one line per record.
 */
function ackOrder(events: readonly TraceEvent[], isWal: (fd: string) => boolean): Array<{ payload: string; read: number; walWrite?: number; walSync?: number; puback?: number }> {
  const out = [];
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as TraceEvent;
    if (e.kind !== 'mqtt-in') continue;
    for (const p of e.packets) {
      if (p.type !== 3 || p.id === undefined || p.payload === undefined) continue;
      const payload = p.payload;
      const line: { payload: string; read: number; walWrite?: number; walSync?: number; puback?: number } = { payload: payload.toString(), read: e.t };
      let j = i;
      for (; j < events.length; j++) {
        const w = events[j] as TraceEvent;
        if (w.kind === 'file-write' && isWal(w.fd) && w.data.includes(payload)) {
          line.walWrite = w.t;
          break;
        }
      }
      for (; j < events.length; j++) {
        const s = events[j] as TraceEvent;
        if (s.kind === 'sync' && isWal(s.fd)) {
          line.walSync = s.t;
          break;
        }
      }
      for (let k = i; k < events.length; k++) {
        const a = events[k] as TraceEvent;
        if (a.kind === 'mqtt-out' && a.fd === e.fd && a.packets.some((q: MqttPacket) => q.type === 4 && q.id === p.id)) {
          line.puback = a.t;
          break;
        }
      }
      out.push(line);
    }
  }
  return out;
}

describe('power loss: what the system calls show', () => {
  it('durable + synchronous full: no PUBACK before the WAL sync that covers its record; seq.next renamed with fsyncs around it', async () => {
    const mosquitto = await startMosquitto();
    const dir = tmp();
    const prefix = join(dir, 'trace');
    const N = 40;
    const config = testConfig({
      durability: 'durable',
      spool: { synchronous: 'full' },
      sources: { mqtt: [{ url: mosquitto.url, subscriptions: [{ topic: 'power/#', qos: 1 }] }] },
    });
    const daemon = await startDaemon(config, { wrapper: straceWrapper(prefix), dataDir: join(dir, 'var') });
    try {
      const payloads = Array.from({ length: N }, (_, i) => `power-record-${i}-${process.pid}`);
      await publishAll(mosquitto.url, payloads.map((payload, i) => ({ topic: `power/${i % 3}`, payload })));
      await waitFor(async () => (await daemon.metrics()).sum('spillway_records_ingested_total') === N || undefined, `${N} ingested`, 20_000);
      process.kill(tracee(daemon.child.pid as number), 'SIGTERM');
      assert.equal(await daemon.exited, 0, 'strace exits with the daemon\'s code');

      const events = readTrace(prefix, onPort(mosquitto.port));
      const isWal = (fd: string) => fd.endsWith('/spool.db-wal');
      const lines = ackOrder(events, isWal);
      assert.deepEqual(lines.map((l) => l.payload).sort(), [...payloads].sort(), 'every record read once from the broker');
      for (const l of lines) {
        assert.ok(l.walWrite !== undefined, `${l.payload}: written to the WAL`);
        assert.ok(l.walSync !== undefined, `${l.payload}: a WAL sync after its write`);
        assert.ok(l.puback !== undefined, `${l.payload}: PUBACKed`);
        assert.ok(l.read < l.walWrite && l.walWrite < l.walSync && l.walSync < l.puback, `${l.payload}: read ${l.read} < WAL write ${l.walWrite} < WAL sync ${l.walSync} < PUBACK ${l.puback}`);
      }

      // seq.next: temp file fsynced, renamed, then the directory fsynced, before any record reached the WAL.
      const dataDir = daemon.dataDir;
      const rename = events.findIndex((e) => e.kind === 'rename' && e.to === join(dataDir, 'seq.next'));
      assert.ok(rename >= 0, 'seq.next renamed into place');
      const before = events.slice(0, rename).filter((e) => e.kind === 'sync').map((e) => (e.kind === 'sync' ? e.fd : ''));
      assert.equal(before[before.length - 1], join(dataDir, 'seq.next.tmp'), 'the temp file fsynced right before the rename');
      const dirSync = events.findIndex((e, i) => i > rename && e.kind === 'sync' && e.fd === dataDir);
      assert.ok(dirSync > rename, 'the directory fsynced after the rename');
      const firstRecord = Math.min(...lines.map((l) => l.walWrite as number));
      assert.ok((events[dirSync] as TraceEvent).t < firstRecord, 'before the first record was written');
    } finally {
      killTraced(daemon.child.pid as number, daemon.child.exitCode);
      await mosquitto.stop();
    }
  });
});

describe('power loss on the embedded broker: what the system calls show', () => {
  it('durable + synchronous full: the embedded broker PUBACKs a sensor only after the WAL sync that covers its record', async () => {
    const dir = tmp();
    const prefix = join(dir, 'trace');
    const N = 40;
    const config = testConfig({ durability: 'durable', spool: { synchronous: 'full' }, sources: { embeddedBroker: { enabled: true, port: 0 } } });
    const daemon = await startDaemon(config, { wrapper: straceWrapper(prefix), dataDir: join(dir, 'var') });
    try {
      const brokerUrl = daemon.brokerUrl as string;
      const payloads = Array.from({ length: N }, (_, i) => `embedded-power-${i}-${process.pid}`);
      await publishAll(brokerUrl, payloads.map((payload, i) => ({ topic: `sensors/power${i % 3}`, payload })));
      await waitFor(async () => (await daemon.metrics()).sum('spillway_records_ingested_total') === N || undefined, `${N} ingested`, 20_000);
      process.kill(tracee(daemon.child.pid as number), 'SIGTERM');
      assert.equal(await daemon.exited, 0, "strace exits with the daemon's code");

      const lines = ackOrder(readTrace(prefix, onPort(Number(new URL(brokerUrl).port))), (fd) => fd.endsWith('/spool.db-wal'));
      assert.deepEqual(lines.map((l) => l.payload).sort(), [...payloads].sort(), 'every record read once from the sensor');
      for (const l of lines) {
        assert.ok(l.walWrite !== undefined && l.walSync !== undefined && l.puback !== undefined, `${l.payload}: written, synced, PUBACKed`);
        assert.ok(l.read < l.walWrite && l.walWrite < l.walSync && l.walSync < l.puback, `${l.payload}: read ${l.read} < WAL write ${l.walWrite} < WAL sync ${l.walSync} < PUBACK ${l.puback}`);
      }
    } finally {
      killTraced(daemon.child.pid as number, daemon.child.exitCode);
    }
  });
});

describe('SeqState across a torn write of seq.next', () => {
  it('a half-written temp file beside an intact seq.next: the old reservation holds, the next one replaces the temp', () => {
    const dir = tmp();
    const a = SeqState.load(dir);
    a.ensure(1);
    assert.equal(readFileSync(join(dir, 'seq.next'), 'utf8'), `${1 + SEQ_BLOCK}\n`);
    // Power lost while the next reservation was being written: the temp file holds part of it.
    writeFileSync(join(dir, 'seq.next.tmp'), '2000');
    const b = SeqState.load(dir);
    assert.equal(b.reserved, 1 + SEQ_BLOCK, 'the last reservation that was renamed into place');
    b.ensure(b.reserved);
    assert.equal(SeqState.load(dir).reserved, 1 + 2 * SEQ_BLOCK);
  });

  it('a seq.next that is empty or torn: refuses to start rather than hand out seqs again', () => {
    for (const content of ['', '10000', '1e5x', '-3\n']) {
      const dir = tmp();
      writeFileSync(join(dir, 'seq.next'), content);
      // '10000' without its newline may be the head of a longer number: refused too (seq-state.ts).
      assert.throws(() => SeqState.load(dir), (err: unknown) => err instanceof SpillwayError && err.code === 'SEQ_STATE' && /not a positive integer/.test(err.message));
    }
  });
});
